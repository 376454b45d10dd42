# shellcheck shell=bash
# Shared by the guest-side test bed scripts. Facts go to /run/vflag-testbed until /results (9p) is up.
RUNDIR=/run/vflag-testbed
mkdir -p "$RUNDIR"
# CLOCK_BOOTTIME in microseconds, rounded DOWN (10 ms resolution): equal to CLOCK_MONOTONIC on a
# guest that never suspends, so comparable with systemd's *TimestampMonotonic properties.
uptime_us() { local up _; read -r up _ < /proc/uptime; echo "$(( ${up%.*} * 1000000 + 10#${up#*.} * 10000 ))"; }
pfs() { cat /etc/vflag-testbed/pfs 2>/dev/null; }
devlink_handle() { # netdev -> bus/device, as vflag derives it
    local d=/sys/class/net/$1/device
    [ -e "$d/subsystem" ] || return 1
    echo "$(basename "$(readlink -f "$d/subsystem")")/$(basename "$(readlink -f "$d")")"
}
eswitch_mode() {
    local h; h=$(devlink_handle "$1") || { echo none; return; }
    devlink dev eswitch show "$h" 2>/dev/null | sed -n 's/.* mode \([a-z]*\).*/\1/p' | grep . || echo none
}
# One line of key=value facts about a PF, read straight from sysfs (+ devlink for the mode).
# Builtins only in the loops: under TCG every fork costs.
pf_facts() {
    local pf=$1 n=/sys/class/net/$1 sw="" reps=0 r s p vfs="" v drv numvfs="none" master=""
    [ -d "$n" ] || { echo "pf=$pf present=no"; return; }
    read -r sw < "$n/phys_switch_id" 2>/dev/null
    if [ -n "$sw" ]; then
        for r in /sys/class/net/*; do
            s=""; p=""
            read -r s < "$r/phys_switch_id" 2>/dev/null
            [ "$s" = "$sw" ] || continue
            read -r p < "$r/phys_port_name" 2>/dev/null
            [[ "$p" =~ ^(c[0-9]+)?pf[0-9]+vf[0-9]+$ ]] && reps=$((reps + 1))
        done
    fi
    for v in "$n"/device/virtfn*; do
        [ -e "$v" ] || continue
        drv=$(readlink "$v/driver" 2>/dev/null); drv=${drv##*/}
        p=$(readlink "$v"); p=${p##*/}
        vfs="$vfs${vfs:+,}$p:${drv:-none}"
    done
    read -r numvfs < "$n/device/sriov_numvfs" 2>/dev/null
    [ -e "$n/master" ] && { master=$(readlink "$n/master"); master=${master##*/}; }
    echo "pf=$pf present=yes numvfs=${numvfs:-none} eswitch=$(eswitch_mode "$pf") reps=$reps" \
         "master=$master vfs=${vfs:-none}"
}
