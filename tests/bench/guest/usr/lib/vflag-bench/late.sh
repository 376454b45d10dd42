#!/bin/bash
# Late stage on QEMU igb VFs, side by side: (a) kernel floor (autoprobe 1, one bind write per VF),
# (b) vflag rebind for each PF, (c) the seed-style script. Reset before each run: autoprobe 0 and
# every VF unbound (what the early stage leaves). /run/vflag (written by the boot's early stage)
# is kept: rebind needs it. Usage: late.sh REPS
. /usr/lib/vflag-bench/common.sh
MAX=$1
PFS="enp0s5f0 enp0s5f1" DRIVER=igbvf
T0=$(now_us) longest=0
VFS=$(cat /sys/class/net/${PFS%% *}/device/sriov_numvfs)
reset() {
    local pf vf
    for pf in $PFS; do
        echo 0 > /sys/class/net/$pf/device/sriov_drivers_autoprobe
        for vf in /sys/class/net/$pf/device/virtfn*; do
            [ -e $vf/driver ] && basename "$(readlink -f $vf)" > $vf/driver/unbind
        done
    done
    udevadm settle -t 30
}
verify() {
    local pf vf bad=""
    for pf in $PFS; do
        for vf in /sys/class/net/$pf/device/virtfn*; do
            [ "$(basename "$(readlink -f $vf/driver)")" = $DRIVER ] || bad="$bad ${vf##*/}"
        done
    done
    [ -z "$bad" ] || echo "!! $1 rep $2: VFs not bound to $DRIVER:$bad"
    udevadm settle -t 30
}
run() {
    case $1 in
    a) timed late "$VFS" floor "$2" $B/floor late $DRIVER $PFS ;;
    b) timed late "$VFS" vflag "$2" sh -c "vflag rebind ${PFS% *} && vflag rebind ${PFS#* }" ;;
    c) timed late "$VFS" scripted "$2" $B/scripted-late.sh $DRIVER $PFS ;;
    esac
}
echo "late stage, $VFS igb VFs on each of $PFS; uname $(uname -r)"
rep=0
while [ $rep -lt "$MAX" ]; do
    rep=$((rep + 1)) s=$(now_us)
    for v in $(order $rep); do reset; run $v $rep; verify $v $rep; done
    d=$(( $(now_us) - s )); [ $d -gt $longest ] && longest=$d
done
echo "repetitions: $rep"
