#!/bin/bash
# ConnectX model phases: do the configured PF names hold after the eSwitch change?
# Args: the two netdevsim ids (PFs eni<id>np1). Prints each PF's ifindex, phys_port_name,
# device and master; fails if a PF is missing or not its device's physical port, if another
# netdev has a PF's name pattern or the test bed's switchdev name (<device>sw), or an ethN is
# left unnamed. Control: udev's decision for the first PF with vflag's record (its configured
# name) and without it (the test bed's switchdev rule would rename it).
set -u
fail=0
bad() { echo "FAIL: $*"; fail=1; }
for id in "$@"; do
    pf=eni${id}np1 d=/sys/class/net/eni${id}np1
    [ -e "$d" ] || { bad "$pf missing"; continue; }
    dev=$(basename "$(readlink -f "$d/device")")
    master=$(basename "$(readlink -f "$d/master" 2>/dev/null)" 2>/dev/null)
    echo "$pf ifindex=$(cat "$d/ifindex") phys_port_name=$(cat "$d/phys_port_name") device=$dev master=${master:-none}"
    [ "$dev" = "netdevsim$id" ] || bad "$pf belongs to $dev"
    [ "$(cat "$d/phys_port_name")" = p1 ] || bad "$pf is not the physical port"
    # every netdev of this device other than the PF is a representor
    for n in /sys/bus/netdevsim/devices/netdevsim$id/net/*; do
        [ "${n##*/}" = "$pf" ] && continue
        case $(cat "$n/phys_port_name") in pf0vf*) ;; *) bad "${n##*/} on netdevsim$id is not a representor";; esac
    done
done
names=$(ls /sys/class/net | tr '\n' ' ')
echo "netdevs: $names"
for n in $names; do
    case $n in eth[0-9]*|netdevsim*sw) bad "$n: a port left unnamed or named by the switchdev rule";; esac
done
first=eni${1}np1
udevadm test --action=add "/sys/class/net/$first" > /tmp/cx-names-with 2>&1
grep -q "^VFLAG_NAME=$first\$" /tmp/cx-names-with || bad "udevadm test: $first not given VFLAG_NAME=$first"
mv "/run/vflag/$first.json" "/run/vflag/$first.json.off" || bad "no /run/vflag/$first.json"
udevadm test --action=add "/sys/class/net/$first" > /tmp/cx-names-without 2>&1
mv "/run/vflag/$first.json.off" "/run/vflag/$first.json"
grep -E "VFLAG_NAME|netdevsim$1sw" /tmp/cx-names-with /tmp/cx-names-without | head -8
if grep -q "^VFLAG_NAME=" /tmp/cx-names-without; then
    bad "control: udevadm test names $first without vflag's record"
elif grep -q "netdevsim$1sw" /tmp/cx-names-without; then
    echo "control: without vflag's record $first would be netdevsim$1sw"
else
    bad "control: the test bed's switchdev rule did not apply (see /tmp/cx-names-without)"
fi
exit $fail
