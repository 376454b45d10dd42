# shellcheck shell=bash
# Phases of a shared boot (sourced by collect.sh; tests/vm/README.md "Phases"). The boot itself
# has no devices, no network stack and no vflag configuration; each phase then
#   1. tears down what the previous phase left: stops vflag's units, the network stacks, Open
#      vSwitch, docker and the network targets; deletes bonds, the OVS datapath and every
#      netdevsim device (so VFs, representors and eSwitch modes go with them); SR-IOV of PCI
#      PFs back to 0 VFs; restores /etc/{vflag,sysconfig,NetworkManager,systemd,udev,...} as
#      the boot had them; empties /run/vflag and the test bed's probes; reset-failed;
#   2. marks its start (uptime; the host ignores journal lines and times before it);
#   3. puts its own files in place (the tree the runner staged for it), daemon-reload (the
#      generator runs on its configuration, as at boot);
#   4. starts its devices and the test bed probes, then multi-user.target: systemd starts
#      what is wanted and not running (generated vflag@/vflag-rebind@ units, the network
#      stack, network-online.target, docker) in the boot's order;
#   5. waits (bounded by its settle) until no job is left, collects facts, runs its actions,
#      collects again, writes DONE.
# What a phase cannot show: anything of the boot itself (kernel command line, the generator
# and device units during early boot, network-pre.target ordering against a boot-time udev
# coldplug). Such scenarios stay separate boots.

PHASES=/var/lib/vflag-testbed/phases
SNAP=/run/vflag-testbed-boot-etc
# Directories a phase may change that vflag, udev and the network stacks read.
ETC_DIRS="vflag sysconfig NetworkManager systemd udev openvswitch modprobe.d vflag-testbed"

snapshot_etc() { # once, before the first phase: /etc as the boot had it
    local d
    mkdir -p "$SNAP"
    for d in $ETC_DIRS; do
        [ -e "/etc/$d" ] && cp -a "/etc/$d" "$SNAP/$d"
    done
    return 0
}

restore_etc() {
    local d
    for d in $ETC_DIRS; do
        rm -rf "/etc/$d"
        [ -e "$SNAP/$d" ] && cp -a "$SNAP/$d" "/etc/$d"
    done
    return 0
}

t() { echo "teardown: $* at $(uptime_us)us"; }

teardown() {
    local u units b d f
    t begin
    units=$(systemctl list-units --all --plain --no-legend --no-pager 'vflag@*' 'vflag-rebind@*' \
        'vflag-hotplug@*' 'vflag-ovs-offload.*' 'selftest-*' | awk '{ print $1 }')
    systemctl stop docker.service $units NetworkManager-wait-online.service NetworkManager-dispatcher.service \
        NetworkManager.service systemd-networkd-wait-online.service systemd-networkd.service \
        systemd-networkd.socket openvswitch-switch.service ovs-vswitchd.service ovsdb-server.service \
        network-online.target network.target network-pre.target vflag-testbed-watch.service \
        vflag-testbed-probe-pre.service vflag-testbed-links.service vflag-testbed-devices.service
    t units stopped
    for b in $(cat /sys/class/net/bonding_masters 2>/dev/null); do ip link del "$b"; done
    [ -e /sys/class/net/ovs-system ] && ovs-dpctl del-dp ovs-system
    for d in /sys/bus/netdevsim/devices/netdevsim*; do
        [ -e "$d" ] && echo "${d##*netdevsim}" > /sys/bus/netdevsim/del_device
    done
    for f in /sys/class/net/*/device/sriov_numvfs; do
        [ -e "$f" ] && [ "$(cat "$f")" != 0 ] && echo 0 > "$f"
    done
    udevadm settle -t 30
    # netdevsim's options (the ConnectX model's parameters) come from the phase's modprobe.d:
    # unloaded here, devices.sh loads it again with the next phase's options
    modprobe -r netdevsim 2>/dev/null || true
    t devices deleted, udev settled
    restore_etc
    t /etc restored
    udevadm control --reload
    rm -rf /run/vflag /run/openvswitch
    rm -f "$RUNDIR"/*
    systemctl reset-failed
    ip -br link
    t end
}

# wait until systemd has no job left, at most until $1 (uptime seconds)
wait_jobs() {
    local until=$1 now _
    while :; do
        [ -z "$(systemctl list-jobs --no-legend --no-pager 2>/dev/null | grep -v '^No jobs')" ] && return 0
        read -r now _ < /proc/uptime
        [ "${now%.*}" -ge "$until" ] && return 1
        sleep 0.5
    done
}

run_phase() { # run_phase NAME
    local name=$1 out=$R/phases/$1 start settle now _ state
    mkdir -p "$out"
    uptime_us > "$out/begin_us"
    step "phase $name: teardown"
    teardown > "$out/reset.log" 2>&1
    journalctl --sync
    JCURSOR=$(journalctl -b -n 1 -o export --no-pager | sed -n 's/^__CURSOR=//p')
    start=$(uptime_us)
    echo "$start" > "$out/start_us"
    step "phase $name: begins"
    cp -a "$PHASES/$name/." / >> "$out/reset.log" 2>&1
    systemctl daemon-reload >> "$out/reset.log" 2>&1
    settle=$(cat /etc/vflag-testbed/settle-timeout 2>/dev/null || echo 110)
    read -r now _ < /proc/uptime
    timeout "$settle" systemctl start vflag-testbed-devices.service vflag-testbed-links.service \
        vflag-testbed-watch.service vflag-testbed-probe-pre.service multi-user.target >> "$out/reset.log" 2>&1
    wait_jobs $(( ${now%.*} + settle ))
    state=$(systemctl is-system-running 2>&1)
    step "phase $name: settled: $state"
    mkdir -p "$out/boot"
    echo "is_system_running=$state" > "$out/boot/meta"
    generator_listing > "$out/boot/generator.txt"
    cp "$RUNDIR"/* "$out/boot/" 2>/dev/null
    facts "$out/boot"
    run_actions "$out"
    uptime_us > "$out/DONE"
    sync
    step "phase $name: done"
}

run_phases() {
    local p
    snapshot_etc
    for p in $(cat "$PHASES.list"); do run_phase "$p"; done
}
