#!/bin/bash
# The scripted baseline of the early stage (benchmark only): the seed's mlnx-vflag-early, step for
# step, on any devlink device (the seed hard-codes pci/ and the mlx5e_rep driver; here the bus comes
# from sysfs and representors are the netdevs of the same driver that are not PFs). Forks
# devlink, ethtool, ip and logger per port and per representor, as the seed does.
# Usage: scripted-early.sh VFS PF_CHANNELS VF_CHANNELS PF...
SRIOV_VF_COUNT=$1 SRIOV_PF_CHANNELS=$2 SRIOV_VF_CHANNELS=$3
shift 3
SRIOV_PFS="$*"

function sriov_vf_create
{
    PF_NIC=$1
    VF_COUNT=$2
    cd /sys/class/net/$PF_NIC/device
    PF_DEV=$(basename $(realpath subsystem))/$(basename $(realpath $PWD))
    logger -t bench-scripted-early "Creating $VF_COUNT VFs for $PF_NIC ($PF_DEV)"
    [ -e sriov_drivers_autoprobe ] && echo 0 > sriov_drivers_autoprobe
    echo $VF_COUNT > sriov_numvfs
    for i in $(readlink virtfn* 2>/dev/null)
    do
        [ -e $i/driver ] || continue
        logger -t bench-scripted-early "Unbinding $(basename $i)"
        echo $(basename $i) > $i/driver/unbind
    done
    devlink dev eswitch set $PF_DEV mode switchdev
    logger -t bench-scripted-early "After enabling switchdev: $(devlink dev eswitch show $PF_DEV)"
    cd /
}

function enable_tc_offload
{
    TC_OFFLOAD=$(ethtool -k $1 | awk '$1=="hw-tc-offload:" {print $2}')
    if [[ "$TC_OFFLOAD" != "on" ]]
    then
        logger -t bench-scripted-early "Enabling HW TC offload for $1"
        ethtool -K $1 hw-tc-offload on
    fi
}

function hwrep_ethtool
{
    # As the seed: every netdev of the representor driver (here: the PFs' driver, minus the PFs).
    drv=$(ethtool -i ${SRIOV_PFS%% *} | awk '$1=="driver:" {print $2}')
    hwrep_devs=$(cd /sys/class/net; for i in *
    do
        case " $SRIOV_PFS " in *" $i "*) continue ;; esac
        ethtool -i $i 2> /dev/null |
            awk -v dev=$i -v drv=$drv '$1=="driver:" && $2==drv {print dev}'
    done)
    for i in $hwrep_devs
    do
        logger -t bench-scripted-early "Tuning receive channels for representor $i"
        ethtool -L $i combined $SRIOV_VF_CHANNELS
        enable_tc_offload $i
    done
}

for PF in $SRIOV_PFS
do
    if [[ ! -d /sys/class/net/$PF ]]
    then
        echo "scripted-early: NIC $PF not found" >&2
        exit 1
    fi
    dev_flags=$(ip link show dev $PF | grep -o '<.*>')
    if grep -q '\<SLAVE\>' <<< $dev_flags
    then
        echo "scripted-early: NIC $PF already part of a bond" >&2
        exit 1
    fi
    sriov_vf_create $PF $SRIOV_VF_COUNT
    enable_tc_offload $PF
    logger -t bench-scripted-early "Tuning receive channels for PF $PF"
    ethtool -L $PF combined $SRIOV_PF_CHANNELS
done
# Not in the seed: without it the script lists representors while udev is still renaming them,
# and its per-representor ethtool calls fail with "no device matches name" and skip work (the
# seed's own race; vflag addresses representors by ifindex). Waiting makes every run do all of
# its work, so the baseline is complete; the wait is counted in its time.
udevadm settle -t 60
hwrep_ethtool
