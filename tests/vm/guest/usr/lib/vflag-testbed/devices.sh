#!/bin/bash
# Create the scenario's emulated devices early in boot (before the net device units).
# /etc/vflag-testbed/devices: one device a line, e.g.
#   netdevsim id=10 ports=1 queues=8 max_vfs=8
#   link 10:1 11:1        cable netdevsim10 port p1 to netdevsim11 port p1 (carrier once both are up)
# max_vfs is raised BEFORE the port (and so the netdev) exists, so nothing can race it.
# "devices.sh links" (a later unit) does the link lines only, once udev has finished with both
# ports: a linked netdevsim port reports its peer as iflink, and udev gives no predictable name
# (eniXnpY) to a netdev whose iflink differs from its ifindex.
set -u
. /usr/lib/vflag-testbed/common.sh
rc=0
mode=${1:-devices}
# ifindex of netdevsim<id>'s port p<port>, whatever udev has named it by now
nsim_ifindex() {
    local i n p x
    for i in $(seq 1 50); do
        for n in /sys/bus/netdevsim/devices/netdevsim$1/net/*; do
            p=""; x=""
            read -r p < "$n/phys_port_name" 2>/dev/null
            read -r x < "$n/ifindex" 2>/dev/null
            [ "$p" = "p$2" ] && [ -n "$x" ] && { echo "$x"; return 0; }
        done
        sleep 0.05
    done
    return 1
}
# udev has processed netdev <ifindex> (its database entry exists); bounded
udev_done() { local i; for i in $(seq 1 600); do [ -e "/run/udev/data/n$1" ] && return 0; sleep 0.1; done
              echo "udev never finished with ifindex $1"; return 1; }
wait_for() { local i; for i in $(seq 1 100); do [ -e "$1" ] && return 0; sleep 0.05; done; return 1; }
while read -r kind rest; do
    case "$kind" in ''|'#'*) continue ;; esac
    case "$mode:$kind" in
    devices:link|links:netdevsim) ;;
    devices:netdevsim)
        id="" ports=1 queues=1 max_vfs=""
        for kv in $rest; do declare "${kv%%=*}=${kv#*=}"; done
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
    links:link)
        set -- $rest
        ia=$(nsim_ifindex "${1%%:*}" "${1#*:}") && ib=$(nsim_ifindex "${2%%:*}" "${2#*:}") &&
            udev_done "$ia" && udev_done "$ib" &&
            exec {nsfd}</proc/self/ns/net &&
            echo "$nsfd:$ia $nsfd:$ib" > /sys/bus/netdevsim/link_device &&
            echo "linked netdevsim$1 (ifindex $ia) to netdevsim$2 (ifindex $ib)" ||
            { echo "link $rest failed"; rc=1; }
        ;;
    *) echo "unknown device kind $kind"; rc=1 ;;
    esac
done < /etc/vflag-testbed/devices
exit $rc
