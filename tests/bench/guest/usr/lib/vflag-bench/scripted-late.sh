#!/bin/bash
# The scripted baseline of the late stage (benchmark only): the seed's mlnx-vflag-final, step for
# step (bond check with `ip link`, then one echo to the driver's bind file per VF), plus restoring
# sriov_drivers_autoprobe, which vflag's late stage also does.
# Usage: scripted-late.sh DRIVER PF...
DRIVER=$1
shift
for PF_NIC in "$@"
do
    if [[ ! -d /sys/class/net/$PF_NIC ]]
    then
        echo "scripted-late: NIC $PF_NIC not found" >&2
        exit 1
    fi
    dev_flags=$(ip link show dev $PF_NIC | grep -o '<.*>')
    if ! grep -q '\<SLAVE\>' <<< $dev_flags
    then
        echo "scripted-late: NIC $PF_NIC not part of a bond, VF-LAG abort" >&2
        exit 1
    fi
    cd /sys/class/net/$PF_NIC/device
    [ -e sriov_drivers_autoprobe ] && echo 1 > sriov_drivers_autoprobe
    for i in $(readlink virtfn*)
    do
        logger -t bench-scripted-late "Binding $(basename $i)"
        echo $(basename $i) > /sys/bus/pci/drivers/$DRIVER/bind
    done
done
