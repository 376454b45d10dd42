#!/bin/bash
# The harness's own stand-in for vflag's stages (the seed scripts' steps, per PF, in shell), used
# only by the selftest scenario to show that the checks PASS when the state is right.
#   selftest-stage.sh setup PF | rebind PF      (environment: VFS, PF_CH, REP_CH)
set -eu
. /usr/lib/vflag-testbed/common.sh
op=$1 pf=$2
VFS=${VFS:-8} PF_CH=${PF_CH:-4} REP_CH=${REP_CH:-2}
n=/sys/class/net/$pf
reps() { local sw s p r; read -r sw < "$n/phys_switch_id"
    for r in /sys/class/net/*; do s=""; p=""
        read -r s < "$r/phys_switch_id" 2>/dev/null || true; [ "$s" = "$sw" ] || continue
        read -r p < "$r/phys_port_name" 2>/dev/null || true
        [[ "$p" =~ ^pf[0-9]+vf[0-9]+$ ]] && echo "${r##*/}"; done; return 0; }
case $op in
setup)
    [ -e "$n/master" ] && { echo "$pf is enslaved already"; exit 1; }
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
    ;;
esac
