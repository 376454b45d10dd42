#!/bin/bash
# Create the scenario's emulated devices early in boot (before the net device units).
# /etc/vflag-testbed/devices: one device a line, e.g.
#   netdevsim id=10 ports=1 queues=8 max_vfs=8
# max_vfs is raised BEFORE the port (and so the netdev) exists, so nothing can race it.
set -u
. /usr/lib/vflag-testbed/common.sh
rc=0
wait_for() { local i; for i in $(seq 1 100); do [ -e "$1" ] && return 0; sleep 0.05; done; return 1; }
while read -r kind rest; do
    case "$kind" in ''|'#'*) continue ;; esac
    id="" ports=1 queues=1 max_vfs=""
    for kv in $rest; do declare "${kv%%=*}=${kv#*=}"; done
    case "$kind" in
    netdevsim)
        modprobe netdevsim || { rc=1; continue; }
        mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
        echo "$id 0 $queues" > /sys/bus/netdevsim/new_device || { rc=1; continue; }
        if [ -n "$max_vfs" ]; then
            wait_for "/sys/kernel/debug/netdevsim/netdevsim$id/max_vfs" &&
                echo "$max_vfs" > "/sys/kernel/debug/netdevsim/netdevsim$id/max_vfs" || rc=1
        fi
        for p in $(seq 0 $((ports - 1))); do
            ok=0
            for i in $(seq 1 100); do
                echo "$p" > "/sys/bus/netdevsim/devices/netdevsim$id/new_port" 2>/dev/null && { ok=1; break; }
                sleep 0.05
            done
            [ $ok = 1 ] || { echo "netdevsim$id: new_port $p failed"; rc=1; }
        done
        echo "netdevsim$id: ports=$ports queues=$queues max_vfs=${max_vfs:-default} at $(uptime_us)us"
        ;;
    *) echo "unknown device kind $kind"; rc=1 ;;
    esac
done < /etc/vflag-testbed/devices
exit $rc
