#!/bin/bash
# boot-split.sh PRESENT_PF... -- ABSENT_PF...   (issue 20; reported, one judgement)
# VFLAG_SPLIT_BOUND_S: the judgement's bound in seconds (default 5, the benchmark's target).
# From systemd's timestamps (CLOCK_MONOTONIC, µs) and the journal (receipt, short-monotonic):
#   per present PF: vflag@'s process start + sandbox (ExecMainStartTimestamp -> the process's
#   first journal line: "waiting for" or "pre-flight checks"), its own work (that line -> unit
#   active; includes any wait for the PF), the device
#   unit -> network-pre.target;
#   per absent PF: how long its unit waited (start -> "absent:"), against udev's coldplug
#   trigger (systemd-udev-trigger.service active);
#   judged: network-pre.target at most VFLAG_SPLIT_BOUND_S after the last present PF's set-up finished
#   ("network-pre-after-present-setup-ok" / "-SLOW").
set -u
present=(); absent=(); side=p
for a in "$@"; do
    if [ "$a" = -- ]; then side=a; elif [ $side = p ]; then present+=("$a"); else absent+=("$a"); fi
done
show() { systemctl show -P "$2" "$1" 2>/dev/null; }
s() { awk -v u="$1" 'BEGIN { printf "%.3f", u / 1e6 }'; }
# monotonic µs of the first journal line of the unit's own processes matching REGEX
first_line() {
    journalctl -b --no-pager -o short-monotonic "_SYSTEMD_UNIT=$1" |
        awk -v re="$2" '$0 ~ re { t = $0; sub(/^\[ */, "", t); sub(/\].*/, "", t); printf "%d\n", t * 1e6; exit }'
}
trigger=$(show systemd-udev-trigger.service ActiveEnterTimestampMonotonic)
np=$(show network-pre.target ActiveEnterTimestampMonotonic)
echo "udev-trigger-done $(s "$trigger")s network-pre $(s "$np")s"
last=0
for pf in "${present[@]}"; do
    u=vflag@$pf.service
    start=$(show "$u" InactiveExitTimestampMonotonic)
    main=$(show "$u" ExecMainStartTimestampMonotonic)
    active=$(show "$u" ActiveEnterTimestampMonotonic)
    dev=$(show "sys-subsystem-net-devices-$pf.device" ActiveEnterTimestampMonotonic)
    line=$(first_line "$u" "^[[]")
    done_=$(first_line "$u" "set-up complete")
    echo "present $pf: unit-start $(s "$start")s exec-main-start $(s "$main")s first-line $(s "${line:-0}")s set-up-complete $(s "${done_:-0}")s active $(s "$active")s device-active $(s "$dev")s"
    echo "present $pf: process-start+sandbox $(s $(( ${line:-0} - main )))s own-work $(s $(( active - ${line:-0} )))s unit-total $(s $(( active - start )))s device-to-network-pre $(s $(( np - dev )))s"
    [ "$active" -gt "$last" ] && last=$active
done
for pf in "${absent[@]}"; do
    u=vflag@$pf.service
    start=$(show "$u" InactiveExitTimestampMonotonic)
    gone=$(first_line "$u" "absent: ")
    echo "absent $pf: unit-start $(s "$start")s gave-up $(s "${gone:-0}")s waited $(s $(( ${gone:-0} - start )))s after-udev-trigger $(s $(( ${gone:-0} - trigger )))s result $(show "$u" Result)"
done
gap=$(( np - last ))
if [ "$last" -gt 0 ] && [ "$np" -gt 0 ] && [ "$gap" -le "$(( ${VFLAG_SPLIT_BOUND_S:-5} * 1000000 ))" ]; then
    echo "network-pre-after-present-setup-ok $(s "$gap")s"
else
    echo "network-pre-after-present-setup-SLOW $(s "$gap")s"
fi
exit 0
