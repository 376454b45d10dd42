#!/bin/bash
# hotplug-nic.sh CYCLES held|unheld
#
# Hot-plug of a whole netdevsim NIC pair after boot (issue 6), as the issue describes it:
#   echo "10 1 8" > /sys/bus/netdevsim/new_device   (and its partner 11)
# then CYCLES times: del_device both, new_device both. The guest booted with neither device, so
# the first plug is a PF vflag has never seen this boot; every later plug is a re-add (new
# ifindex, vflag-hotplug@<pf>.service). The pair is cabled with link_device once udev has named
# both ports (a linked port reports its peer as iflink and would get no predictable name).
# vfs = 4 in the scenario's vflag.conf: netdevsim's default max_vfs is 4, so the literal
# "10 1 8" (port created at once) needs no debugfs step.
#
# A sampler (builtins only, ~10 samples/s) records every change of each PF's state: ifindex,
# master, sriov_numvfs, representor count, vflag's udev hold. Per plug and per PF:
#   - "configured first": the kernel's enslave time (printk clock) is after the set-up unit logged
#     "set-up complete" (journal receipt time, which is never before the event), and no sample
#     shows the PF with a master while it has fewer than N VFs/representors;
#   - "enslaved first": the PF had a master before the set-up finished (no hold).
# Mode held (NetworkManager; networkd with vflag's 00-vflag-hold.network): every PF must be
# "configured first", every vflag unit succeeded, nothing failed or
# activating, N VFs and N representors per PF (no duplicates), eswitch switchdev.
# Mode unheld (networkd 252 without that file: nothing keeps it away): either outcome may happen;
# "enslaved first" must be the safe one: vflag refused ("is enslaved to bond0 ... nothing was
# changed"), the PF has 0 VFs, 0 representors and a legacy eswitch (nothing half-configured),
# its unit failed (VF-LAG reported degraded), the bond has both ports. Never a unit left
# activating. Output: one SAMPLE line per change, per-plug timings, a summary; exit 1 on a
# violation.
# HOTPLUG_HOLD_BY (held mode), e.g. "mb=vflag" (ID_NET_MANAGED_BY=vflag) or "nmu=1"
# (NM_UNMANAGED=1): which udev property held the PF. Every PF of every plug must show a sample
# with the hold and that field before its set-up finished.
set -u
CYCLES=${1:-3}
MODE=${2:-held}
N=4
# another pair (e.g. a second NIC beside one present at boot): HOTPLUG_PFS, HOTPLUG_IDS, HOTPLUG_BOND
read -r -a PFS <<< "${HOTPLUG_PFS:-eni10np1 eni11np1}"
read -r -a IDS <<< "${HOTPLUG_IDS:-10 11}"
BOND=${HOTPLUG_BOND:-bond0}
BUS=/sys/bus/netdevsim
LIVE=/results/hotplug-live.log
fails=0
say() { echo "$*"; [ -d /results ] && echo "$*" >> "$LIVE" 2>/dev/null; return 0; }
bad() { say "FAIL: $*"; fails=$((fails + 1)); }
up() { local u _; read -r u _ < /proc/uptime; echo "$u"; }
exec {sfd}<> <(:)
nap() { read -r -t "$1" -u "$sfd" _ 2>/dev/null; return 0; }

modprobe netdevsim || { say "FAIL: modprobe netdevsim"; exit 1; }
mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug

# ---- sampler ---------------------------------------------------------------------------
pf_state() { # pf id -> "idx=.. master=.. numvfs=.. reps=.. hold=.."
    local pf=$1 id=$2 n=/sys/class/net/$1 idx="-" m="-" nv="-" reps=0 hold=0 mb=- nmu=0 r p l
    if [ -d "$n" ]; then
        read -r idx 2>/dev/null < "$n/ifindex"
        [ -e "$n/master" ] && m=bond
        read -r nv 2>/dev/null < "$n/device/sriov_numvfs"
        for r in "$BUS/devices/netdevsim$id/net/"*; do
            p=""; read -r p 2>/dev/null < "$r/phys_port_name"
            [[ $p == pf*vf* ]] && reps=$((reps + 1))
        done
        if [ -r "/run/udev/data/n$idx" ]; then
            while read -r l; do
                case $l in
                E:VFLAG_HOLD=1) hold=1 ;;
                E:ID_NET_MANAGED_BY=*) mb=${l#E:ID_NET_MANAGED_BY=} ;;
                E:NM_UNMANAGED=1) nmu=1 ;;
                esac
            done < "/run/udev/data/n$idx"
        fi
    fi
    echo "idx=$idx master=$m numvfs=$nv reps=$reps hold=$hold mb=$mb nmu=$nmu"
}
sampler() { # writes "SAMPLE t pf state" on every change until killed
    local -A last=() ; local i s t
    while :; do
        for i in 0 1; do
            s=$(pf_state "${PFS[$i]}" "${IDS[$i]}")
            if [ "${last[$i]:-}" != "$s" ]; then
                t=$(up); last[$i]=$s; echo "SAMPLE $t ${PFS[$i]} $s"
            fi
        done
        nap 0.1
    done
}

# ---- helpers ---------------------------------------------------------------------------
plug() { local id; for id in "${IDS[@]}"; do echo "$id 1 8" > $BUS/new_device || bad "new_device $id"; done; }
unplug() { local id; for id in "${IDS[@]}"; do echo "$id" > $BUS/del_device || bad "del_device $id"; done; }
# both ports named and known to udev, then cable them (carrier for the bond)
cable() {
    local i a b
    for i in $(seq 1 300); do
        a=""; b=""
        read -r a 2>/dev/null < /sys/class/net/${PFS[0]}/ifindex
        read -r b 2>/dev/null < /sys/class/net/${PFS[1]}/ifindex
        if [ -n "$a" ] && [ -n "$b" ] && [ -e /run/udev/data/n$a ] && [ -e /run/udev/data/n$b ]; then
            exec {nsfd}</proc/self/ns/net
            echo "$nsfd:$a $nsfd:$b" > $BUS/link_device || bad "link_device $a $b"
            exec {nsfd}<&-
            return 0
        fi
        nap 0.1
    done
    bad "ports not named/known to udev within 30 s"
}
# systemd's view: no vflag unit activating and no vflag job queued
vflag_busy() {
    systemctl list-units --all --plain --no-legend --no-pager 'vflag*' --state=activating,deactivating | grep -q . && return 0
    systemctl list-jobs --no-legend --no-pager 2>/dev/null | grep -q 'vflag' && return 0
    return 1
}
usec() { systemctl show -P "$2" "$1" 2>/dev/null; }
# kernel enslave time (printk clock, s) of pf since t0, or empty
enslave_time() {
    dmesg | sed -n "s/^\[ *\([0-9.]*\)\] $BOND: (slave $1): Enslaving.*/\1/p" |
        awk -v s="$2" '$1 + 0 >= s + 0 { print; exit }'
}
# journal receipt time (s, CLOCK_MONOTONIC) of the first message of unit matching regex since t0
journal_time() { # unit regex t0
    journalctl -b -o short-monotonic --no-pager -u "$1" |
        awk -v s="$3" -v re="$2" '{ t = $0; sub(/^\[ */, "", t); sub(/\].*/, "", t)
                                     if (t + 0 >= s + 0 && $0 ~ re) { print t + 0; exit } }'
}

# ---- one plug --------------------------------------------------------------------------
# plug_once LABEL FIRST(1|0): plug both, wait until both enslaved and vflag idle, judge.
declare -A sumt=()
plug_once() {
    local label=$1 first=$2 t0 t_en="" t_idle="" i pf id unit st m nv reps es te ts tr outcome
    t0=$(up)
    plug
    cable
    for i in $(seq 1 900); do   # <= 90 s
        m=0; for pf in "${PFS[@]}"; do [ -e /sys/class/net/$pf/master ] && m=$((m + 1)); done
        [ $m = 2 ] && [ -z "$t_en" ] && t_en=$(up)
        if [ -n "$t_en" ] && ! vflag_busy; then
            # idle twice in a row (a job may be queued between two looks)
            nap 0.5; vflag_busy || { t_idle=$(up); break; }
        fi
        nap 0.1
    done
    [ -n "$t_en" ] || bad "$label: not both ports enslaved within 90 s"
    [ -n "$t_idle" ] || bad "$label: vflag units still busy after 90 s: $(systemctl list-units --plain --no-legend 'vflag*' --state=activating | tr '\n' ' ')"
    say "PLUG $label: t0=$t0 both-enslaved=+$(awk -v a="$t0" -v b="${t_en:-$t0}" 'BEGIN{printf "%.1f", b-a}')s vflag-idle=+$(awk -v a="$t0" -v b="${t_idle:-$t0}" 'BEGIN{printf "%.1f", b-a}')s"
    for i in 0 1; do
        pf=${PFS[$i]}; id=${IDS[$i]}
        if [ "$first" = 1 ]; then unit=vflag@$pf.service; else unit=vflag-hotplug@$pf.service; fi
        st=$(pf_state "$pf" "$id")
        es=$(devlink dev eswitch show netdevsim/netdevsim$id 2>/dev/null | sed -n 's/.* mode \([a-z]*\).*/\1/p')
        te=$(enslave_time "$pf" "$t0")
        ts=$(journal_time "$unit" 'set-up complete|already set up' "$t0")
        tr=$(journal_time "$unit" 'is enslaved to' "$t0")
        # the unit ran for this plug: systemd logged its start after t0 (an inactive
        # vflag-hotplug@ is garbage-collected, so `systemctl show` has no timestamps left)
        local started res active
        started=$(journal_time "$unit" "Start(ing|ed) " "$t0")
        res=$(usec "$unit" Result); active=$(usec "$unit" ActiveState)
        [ -n "$started" ] || bad "$label $pf: $unit did not start for this plug"
        if [ "$first" = 1 ] && [ "$MODE" = held ]; then
            # the late stage (failed at boot: no NIC) ran again and bound the VFs back
            [ "$(usec "vflag-rebind@$pf.service" ActiveState)" = active ] ||
                bad "$label $pf: vflag-rebind@$pf.service is $(usec "vflag-rebind@$pf.service" ActiveState) after the first plug"
        else
            # vflag-hotplug@ binds the VFs back after its set-up (vflag hotplug: setup, then rebind)
            [ "$MODE" != held ] || [ -n "$(journal_time "$unit" 'bond is valid for VF-LAG' "$t0")" ] ||
                bad "$label $pf: no late stage (rebind) in $unit"
        fi
        if [ -n "$ts" ] && [ -n "$te" ] && awk -v a="$ts" -v b="$te" 'BEGIN { exit !(b + 0 > a + 0) }'; then
            outcome=configured-first
        elif [ -n "$tr" ]; then
            outcome=enslaved-first-refused
        else
            outcome=enslaved-first
        fi
        # a sample with a master while not fully set up: up to the set-up's end (afterwards the
        # sampler's glob over the device's net/ directory can miss a representor that udev is
        # renaming at that moment: seen as reps=3 for one sample after the set-up had finished)
        local early
        early=$(awk -v s="$t0" -v e="${ts:-999999}" -v pf="$pf" -v n="$N" '$1 == "SAMPLE" && $2 + 0 >= s + 0 && $2 + 0 <= e + 0 && $3 == pf && / master=bond / {
                    split($0, a, "numvfs="); split(a[2], b, " "); split($0, c, "reps="); split(c[2], d, " ");
                    if (b[1] != n || d[1] != n) { print $2 " " $0; exit } }' "$SAMPLES")
        # which udev property held it: a sample of this plug, before the set-up's end, with the
        # hold and HOTPLUG_HOLD_BY
        local heldby=""
        if [ -n "${HOTPLUG_HOLD_BY:-}" ]; then
            heldby=$(awk -v s="$t0" -v e="${ts:-999999}" -v pf="$pf" -v want=" $HOTPLUG_HOLD_BY " '$1 == "SAMPLE" && $2 + 0 >= s + 0 && $2 + 0 <= e + 0 && $3 == pf && / hold=1 / && index($0 " ", want) { print $2; exit }' "$SAMPLES")
            [ "$MODE" != held ] || [ -n "$heldby" ] || bad "$label $pf: no sample shows the hold with $HOTPLUG_HOLD_BY before the set-up finished"
        fi
        say "  $pf: $outcome${heldby:+ held-by=$HOTPLUG_HOLD_BY at $heldby} unit=$unit $active/$res eswitch=${es:-?} $st setup-done=${ts:-none} refused=${tr:-none} enslaved=${te:-none}${early:+ (master while unconfigured at ${early%% *})}"
        sumt[$outcome]=$(( ${sumt[$outcome]:-0} + 1 ))
        case "$MODE:$outcome" in
        held:configured-first|unheld:configured-first)
            [ -z "$early" ] || bad "$label $pf: a sample shows a master before N VFs/representors: $early"
            [ "$es" = switchdev ] || bad "$label $pf: eswitch ${es:-?}, expected switchdev"
            [[ $st == *" numvfs=$N reps=$N "* ]] || bad "$label $pf: expected numvfs=$N reps=$N: $st"
            [ "$res" = success ] || bad "$label $pf: $unit result $res"
            ;;
        unheld:enslaved-first-refused)
            # the honest safe outcome: refused, nothing changed, loudly failed
            [ "$es" = legacy ] || bad "$label $pf: refused but eswitch ${es:-?} (half-configured?)"
            [[ $st == *" numvfs=0 reps=0 "* ]] || bad "$label $pf: refused but not untouched: $st"
            [ "$active" = failed ] || bad "$label $pf: refused but $unit is $active (degraded must show)"
            ;;
        *) bad "$label $pf: outcome $outcome not allowed in mode $MODE" ;;
        esac
        [[ $st == *" master=bond "* ]] || bad "$label $pf: not in the bond at the end: $st"
    done
    # no duplicates: exactly the ports and representors netdevsim has, each once
    local dup
    dup=$(ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' | sort | uniq -d)
    [ -z "$dup" ] || bad "$label: duplicate netdev names: $dup"
    local stuck
    stuck=$(systemctl list-units --all --plain --no-legend --no-pager 'vflag*' --state=activating,deactivating | awk '{ print $1 }' | tr '\n' ' ')
    [ -z "$stuck" ] || bad "$label: vflag units stuck: $stuck"
    local failed
    failed=$(systemctl list-units --all --plain --no-legend --no-pager 'vflag*' --state=failed | awk '{ print $1 }' | tr '\n' ' ')
    say "  units failed: ${failed:-none}; system: $(systemctl is-system-running 2>&1)"
    if [ "$MODE" = held ] && [ -n "$failed" ]; then bad "$label: failed vflag units: $failed"; fi
    sumt[plug]="${sumt[plug]:-} $(awk -v a="$t0" -v b="${t_idle:-$t0}" 'BEGIN{printf "%.1f", b-a}')"
}

unplug_once() {
    local label=$1 t0 i pf gone
    t0=$(up)
    unplug
    for i in $(seq 1 300); do
        gone=1; for pf in "${PFS[@]}"; do [ -e /sys/class/net/$pf ] && gone=0; done
        [ $gone = 1 ] && ! vflag_busy && break
        nap 0.1
    done
    [ $gone = 1 ] || bad "$label: ports still present 30 s after del_device"
    say "UNPLUG $label: +$(awk -v a="$t0" -v b="$(up)" 'BEGIN{printf "%.1f", b-a}')s"
}

# ---- run -------------------------------------------------------------------------------
: > "$LIVE" 2>/dev/null
SAMPLES=/run/hotplug-samples.txt
sampler > "$SAMPLES" &
spid=$!
trap 'kill $spid 2>/dev/null' EXIT
say "mode=$MODE cycles=$CYCLES vfs=$N; at boot: $(systemctl list-units --all --plain --no-legend --no-pager 'vflag*' | awk '{ print $1 "=" $3 "/" $4 }' | tr '\n' ' ')"
say "system at boot: $(systemctl is-system-running 2>&1)"
T0=$(up)
plug_once first 1
for c in $(seq 1 "$CYCLES"); do
    unplug_once "cycle $c"
    plug_once "cycle $c" 0
done
kill $spid 2>/dev/null; wait $spid 2>/dev/null
say "SAMPLES (state changes):"
cat "$SAMPLES"
say "SUMMARY mode=$MODE cycles=$CYCLES total=$(awk -v a="$T0" -v b="$(up)" 'BEGIN{printf "%.0f", b-a}')s plug-to-idle:${sumt[plug]} configured-first=${sumt[configured-first]:-0} enslaved-first-refused=${sumt[enslaved-first-refused]:-0} enslaved-first=${sumt[enslaved-first]:-0} failures=$fails"
[ $fails = 0 ] && say OK
exit $(( fails > 0 ))
