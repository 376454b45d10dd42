#!/bin/bash
# Watch rtnetlink link events; the first time a PF gains a master, record when (uptime, rounded
# down) and snapshot every PF's state at that moment.
. /usr/lib/vflag-testbed/common.sh
PFS=$(pfs)
echo "watching $PFS from $(uptime_us)us"
ip -o monitor link | while read -r line; do
    for pf in $PFS; do
        [ -e "$RUNDIR/enslaved-$pf" ] && continue
        case "$line" in
        *": $pf:"*" master "*|*": $pf@"*" master "*)
            t=$(uptime_us)
            echo "$t $line" > "$RUNDIR/enslaved-$pf"
            echo "$pf enslaved at ${t}us: $line"
            if [ ! -e "$RUNDIR/probe-first-enslave" ]; then
                /usr/lib/vflag-testbed/probe.sh first-enslave
            fi
            ;;
        esac
    done
done
