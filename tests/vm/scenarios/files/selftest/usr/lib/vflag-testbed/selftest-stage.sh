#!/bin/bash
# The harness's own stand-in for vflag's stages (the seed scripts' steps, per PF, in shell), used
# only by the selftest scenario to show that the checks PASS when the state is right.
#   selftest-stage.sh setup PF | rebind PF
# Settings: /etc/vflag-testbed/selftest.env (VFS, PF_CH, REP_CH, ESWITCH=switchdev|legacy).
set -eu
. /usr/lib/vflag-testbed/common.sh
op=$1 pf=$2
VFS=8 PF_CH=4 REP_CH=2 ESWITCH=switchdev
[ -r /etc/vflag-testbed/selftest.env ] && . /etc/vflag-testbed/selftest.env
n=/sys/class/net/$pf
reps() { local sw s p r; read -r sw < "$n/phys_switch_id"
    for r in /sys/class/net/*; do s=""; p=""
        read -r s < "$r/phys_switch_id" 2>/dev/null || true; [ "$s" = "$sw" ] || continue
        read -r p < "$r/phys_port_name" 2>/dev/null || true
        [[ "$p" =~ ^pf[0-9]+vf[0-9]+$ ]] && echo "${r##*/}"; done; return 0; }
case $op in
setup)
    [ -e "$n/master" ] && { echo "$pf is enslaved already"; exit 1; }
    if [ "$ESWITCH" = legacy ]; then     # PCI VFs: create them unbound, remember nothing else
        echo 0 > "$n/device/sriov_drivers_autoprobe"
        echo "$VFS" > "$n/device/sriov_numvfs"
        for i in $(seq 1 100); do [ -e "$n/device/virtfn$((VFS - 1))" ] && break; sleep 0.1; done
        systemd-notify --status="$VFS VFs, unbound, legacy"
        exit 0
    fi
    echo "$VFS" > "$n/device/sriov_numvfs"
    h=$(devlink_handle "$pf")
    [ "$(eswitch_mode "$pf")" = switchdev ] || devlink dev eswitch set "$h" mode switchdev
    ethtool -K "$pf" hw-tc-offload on
    ethtool -L "$pf" combined "$PF_CH"
    for i in $(seq 1 200); do   # representors appear as ethN, udev renames them: wait for both
        r=$(reps); c=$(echo "$r" | grep -c . || true)
        [ "$c" -ge "$VFS" ] && ! echo "$r" | grep -q '^eth' && udevadm settle -t 5 && break
        sleep 0.1
    done
    for r in $(reps); do ethtool -K "$r" hw-tc-offload on; ethtool -L "$r" combined "$REP_CH"; done
    systemd-notify --status="$VFS VFs, switchdev, offload on, $(reps | grep -c .) representors"
    ;;
rebind)
    [ -e "$n/master" ] || { echo "$pf is not enslaved"; exit 1; }
    echo "$pf in $(basename "$(readlink "$n/master")")"
    if [ "$ESWITCH" = legacy ]; then
        echo 1 > "$n/device/sriov_drivers_autoprobe"
        for v in "$n"/device/virtfn*; do
            a=$(basename "$(readlink -f "$v")")
            [ -e "$v/driver" ] || echo "$a" > /sys/bus/pci/drivers_probe
            for i in $(seq 1 100); do [ -d "$v/net" ] && [ -n "$(ls "$v/net")" ] && break; sleep 0.1; done
            echo "$a -> $(basename "$(readlink "$v/driver")") $(ls "$v/net")"
        done
        udevadm settle -t 10
    fi
    ;;
esac
