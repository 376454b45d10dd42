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
pf_facts() {
    local pf=$1 n=/sys/class/net/$1 sw reps=0 r vfs="" v drv
    [ -d "$n" ] || { echo "pf=$pf present=no"; return; }
    sw=$(cat "$n/phys_switch_id" 2>/dev/null || true)
    if [ -n "$sw" ]; then
        for r in /sys/class/net/*; do
            [ "$(cat "$r/phys_switch_id" 2>/dev/null)" = "$sw" ] || continue
            [[ "$(cat "$r/phys_port_name" 2>/dev/null)" =~ ^(c[0-9]+)?pf[0-9]+vf[0-9]+$ ]] && reps=$((reps + 1))
        done
    fi
    for v in "$n"/device/virtfn*; do
        [ -e "$v" ] || continue
        drv=$(basename "$(readlink "$v/driver" 2>/dev/null)" 2>/dev/null); drv=${drv:-none}
        vfs="$vfs${vfs:+,}$(basename "$(readlink -f "$v")"):$drv"
    done
    echo "pf=$pf present=yes numvfs=$(cat "$n/device/sriov_numvfs" 2>/dev/null || echo none)" \
         "eswitch=$(eswitch_mode "$pf") reps=$reps" \
         "master=$(basename "$(readlink "$n/master" 2>/dev/null)" 2>/dev/null || true)" \
         "vfs=${vfs:-none}"
}
