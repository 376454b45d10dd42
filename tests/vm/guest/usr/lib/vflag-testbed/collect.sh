#!/bin/bash
# Runs once the boot has settled: write the facts the host-side assertions read into /results
# (9p share), run the scenario's guest actions (if any) and collect again, then power off at once.
. /usr/lib/vflag-testbed/common.sh
R=/results
settle=$(cat /etc/vflag-testbed/settle-timeout 2>/dev/null || echo 90)
state=$(timeout "$settle" systemctl is-system-running --wait 2>&1); src=$?

if ! mountpoint -q "$R"; then mount "$R" || { echo "vflag-testbed: /results not mounted"; }; fi

facts() { # facts DIR  (few forks: under TCG every process costs)
    local D=$1 n units
    mkdir -p "$D/net"
    uptime_us > "$D/at_us"
    systemctl is-system-running > "$D/system-state" 2>&1
    systemctl list-jobs --no-pager > "$D/jobs.txt" 2>&1
    systemctl --failed --no-pager --plain > "$D/failed.txt" 2>&1
    units=$( { cat /etc/vflag-testbed/units 2>/dev/null
               systemctl list-units --all --plain --no-legend --no-pager 'vflag*' 'docker*' 'network*' \
                   'NetworkManager*' 'systemd-networkd*' 'openvswitch*' 'ovs*' | awk '{ print $1 }'
             } | sort -u)
    # one process for all units; blocks are separated by blank lines, each has Id=
    systemctl show --no-pager $units > "$D/units.show" 2>&1
    systemctl status --no-pager -l --lines=30 'vflag*' > "$D/status.txt" 2>&1
    ip -j -d link show > "$D/ip-link.json" 2>&1
    ip -d link show > "$D/ip-link.txt" 2>&1
    ip -j addr show > "$D/ip-addr.json" 2>&1
    # one JSON document a line, one line per devlink instance (iproute2 6.1 wants a handle)
    for h in $(devlink dev show 2>/dev/null); do
        devlink -j dev eswitch show "$h" 2>&1; echo
    done > "$D/devlink-eswitch.jsonl"
    devlink -j port show > "$D/devlink-port.json" 2>&1
    for n in /sys/class/net/*; do
        n=${n##*/}; [ "$n" = lo ] && continue
        ethtool -k "$n" > "$D/net/$n.features" 2>&1
        ethtool -l "$n" > "$D/net/$n.channels" 2>&1
    done
    for pf in $(pfs); do pf_facts "$pf"; done > "$D/pfs.txt"
    for b in /proc/net/bonding/*; do [ -e "$b" ] && cp "$b" "$D/bonding-${b##*/}.txt"; done
    # a phase of a shared boot: its part of the journal (JCURSOR: where it began)
    journalctl -b ${JCURSOR:+--after-cursor="$JCURSOR"} -o json --no-pager > "$D/journal.json" 2>/dev/null
    journalctl -b ${JCURSOR:+--after-cursor="$JCURSOR"} -o short-monotonic --no-pager > "$D/journal.txt" 2>&1
}

generator_listing() {
    local d f
    for d in /run/systemd/generator /run/systemd/generator.early /run/systemd/generator.late; do
        echo "### ls -lR $d"; ls -lR "$d" 2>&1; done
    for f in $(grep -rl vflag /run/systemd/generator* 2>/dev/null); do echo "### $f"; cat "$f"; done
}

# The scenario's actions (fault/hotplug/benchmark scenarios): each runs once, output and rc kept
# in $1/actions/, then facts again in $1/after/.
run_actions() {
    local out=$1 a name
    if [ -d /etc/vflag-testbed/actions.d ] && [ -n "$(ls /etc/vflag-testbed/actions.d)" ]; then
        mkdir -p "$out/actions"
        for a in /etc/vflag-testbed/actions.d/*; do
            name=${a##*/}
            timeout "$(cat /etc/vflag-testbed/action-timeout 2>/dev/null || echo 60)" "$a" \
                > "$out/actions/$name.out" 2>&1; echo $? > "$out/actions/$name.rc"
        done
        cp "$RUNDIR"/* "$out/actions/" 2>/dev/null
        facts "$out/after"
    fi
}

step() { echo "vflag-testbed: $* at $(uptime_us)us"; }
step "boot settled: $state"

# A shared boot (tests/vm/README.md "Phases"): the phases, one after the other, instead.
if [ -s /var/lib/vflag-testbed/phases.list ]; then
    . /usr/lib/vflag-testbed/phases.sh
    run_phases
    uptime_us > "$R/DONE"
    sync
    echo "vflag-testbed: phases done, powering off"
    echo o > /proc/sysrq-trigger
    exit 0
fi

mkdir -p "$R/boot"
{ echo "is_system_running=$state rc=$src"; echo "kernel=$(uname -r)"; echo "cmdline=$(cat /proc/cmdline)"; } > "$R/boot/meta"
generator_listing > "$R/boot/generator.txt"
step "generator listing done"
cp "$RUNDIR"/* "$R/boot/" 2>/dev/null
facts "$R/boot"
step "boot facts collected"
run_actions "$R"

uptime_us > "$R/DONE"
sync
echo "vflag-testbed: facts collected, powering off"
echo o > /proc/sysrq-trigger
