#!/bin/bash
# Early stage, side by side on the same netdevsim PFs: (a) kernel floor, (b) vflag setup for each
# PF, (c) the seed-style script. Reset before each run: sriov_numvfs 0 (netdevsim drops back to
# legacy), /run/vflag removed. Usage: early.sh VFS REPS SCRIPTED_REPS [status]
# (the scripted variant forks per representor and takes minutes per run under TCG: it may be given
# fewer repetitions; with "status": vflag set up once more and `vflag status` timed; with
# "profile": where the time goes, not timed — vflag's step log from the journal next to the
# floor's phase times, and both under `strace -c -f`).
. /usr/lib/vflag-bench/common.sh
VFS=$1 MAX=$2 SMAX=$3
PFS="eni10np1 eni11np1" PF_CH=4 REP_CH=2
T0=$(now_us) longest=0
mkdir -p /etc/vflag
cat > /etc/vflag/vflag.conf <<CONF
[lag bond0]
pfs = $PFS
vfs = $VFS
eswitch = switchdev
pf-channels = $PF_CH
representor-channels = $REP_CH
network-stack = none
CONF
reset() {
    local pf
    for pf in $PFS; do echo 0 > /sys/class/net/$pf/device/sriov_numvfs; done
    for pf in $PFS; do
        h=netdevsim/$(basename "$(readlink -f /sys/class/net/$pf/device)")
        devlink dev eswitch show "$h" | grep -q 'mode legacy' || devlink dev eswitch set "$h" mode legacy
        ethtool -K $pf hw-tc-offload off 2>/dev/null
        ethtool -L $pf combined 1 2>/dev/null
    done
    rm -rf /run/vflag
    udevadm settle -t 30
}
# Not timed: the end state each variant must reach.
verify() {
    local pf n bad=""
    for pf in $PFS; do
        [ "$(cat /sys/class/net/$pf/device/sriov_numvfs)" = "$VFS" ] || bad="$bad $pf:numvfs"
        h=netdevsim/$(basename "$(readlink -f /sys/class/net/$pf/device)")
        devlink dev eswitch show "$h" | grep -q 'mode switchdev' || bad="$bad $pf:eswitch"
        n=$(devlink port show | grep -c "^$h/.*flavour pcivf")
        [ "$n" = "$VFS" ] || bad="$bad $pf:reps=$n"
        ethtool -k $pf | grep -q 'hw-tc-offload: on' || bad="$bad $pf:offload"
        ethtool -l $pf | sed -n '/Current/,$p' | grep -q "Combined:.*$PF_CH" || bad="$bad $pf:channels"
    done
    [ -z "$bad" ] || echo "!! $1 rep $2: end state wrong:$bad"
}
run() {
    case $1 in
    a) local n0; n0=$(wc -l < "$LOG")
       timed early "$VFS" floor "$2" $B/floor early "$VFS" $PF_CH $REP_CH $PFS
       echo "STEPS floor rep $2 (ms since each PF's start):$(tail -n +$((n0 + 1)) "$LOG" | awk '$1 == "floor" && $NF == "us" { printf " %s%s@%d", $2, $3, $(NF - 1) / 1000 }')" ;;
    # JOURNAL_STREAM: vflag logs its steps to the journal, as under systemd (see steps()).
    b) timed early "$VFS" vflag "$2" env JOURNAL_STREAM=bench sh -c "vflag setup ${PFS% *} && vflag setup ${PFS#* }" ;;
    c) timed early "$VFS" scripted "$2" $B/scripted-early.sh "$VFS" $PF_CH $REP_CH $PFS ;;
    esac
}
echo "early stage, $VFS VFs on each of $PFS, $PF_CH PF / $REP_CH representor channels; uname $(uname -r)"
rep=0
while [ $rep -lt "$MAX" ]; do
    rep=$((rep + 1)) s=$(now_us)
    for v in $(order $rep); do
        [ $v = c ] && [ $rep -gt "$SMAX" ] && continue
        reset; run $v $rep; verify $v $rep
    done
    d=$(( $(now_us) - s )); [ $d -gt $longest ] && longest=$d
done
echo "repetitions: $rep"
steps early "$VFS"
if [ "${4:-}" = profile ]; then
    reset
    since=$(date +%s)
    # JOURNAL_STREAM: vflag logs each step to the journal (with a time) as it does under systemd.
    JOURNAL_STREAM=bench vflag setup ${PFS% *} >> "$LOG" 2>&1 &&
        JOURNAL_STREAM=bench vflag setup ${PFS#* } >> "$LOG" 2>&1 || echo "!! profiled setup failed"
    echo "vflag setup, journal (monotonic seconds):"
    journalctl -q -o short-monotonic SYSLOG_IDENTIFIER=vflag --since "@$((since - 1))" --no-pager | cut -c1-160
    reset
    echo "floor phases:"
    $B/floor early "$VFS" $PF_CH $REP_CH $PFS 2>&1
    if command -v strace >/dev/null; then
        reset
        # -w: wall time in each call (sleeps and blocking included); sh's wait4 left out.
        st="strace -f -c -w -S time -e trace=!wait4"
        $st -o /run/vflag-bench-setup.strace sh -c "vflag setup ${PFS% *} && vflag setup ${PFS#* }" >> "$LOG" 2>&1
        echo "strace -c -w -f vflag setup x2:"; head -n 16 /run/vflag-bench-setup.strace; tail -n 2 /run/vflag-bench-setup.strace
        reset
        $st -o /run/vflag-bench-floor.strace $B/floor early "$VFS" $PF_CH $REP_CH $PFS >> "$LOG" 2>&1
        echo "strace -c -w -f floor:"; head -n 16 /run/vflag-bench-floor.strace; tail -n 2 /run/vflag-bench-floor.strace
    fi
    # How often udev starts `vflag udev-name` during vflag's set-up (traced: udevd and its
    # workers, its children); vflag-asked: as if a LAG wanted representor names
    # (79-vflag-names.rules then asks about every representor, as it did for every set-up
    # before 2026-12-02). Untimed: tracing slows udev down.
    if command -v strace >/dev/null; then
        for v in vflag vflag-asked; do
            reset
            [ $v = vflag-asked ] && mkdir -p /run/vflag && touch /run/vflag/representor-names
            udevd=$(pidof systemd-udevd | awk '{print $NF}')
            strace -f -qq -e trace=execve -e signal=none -o /run/vflag-bench-udev.trace \
                -p "$udevd${udevd:+,}$(pgrep -d, -P "$udevd")" & tracer=$!
            sleep 2
            vflag setup ${PFS% *} >> "$LOG" 2>&1 && vflag setup ${PFS#* } >> "$LOG" 2>&1
            udevadm settle -t 120
            kill $tracer; wait $tracer 2>/dev/null
            echo "udev during $v: $(grep -c 'execve("/usr/bin/vflag", \["/usr/bin/vflag", "udev-name"' /run/vflag-bench-udev.trace) starts of vflag udev-name, $(grep -c 'execve(' /run/vflag-bench-udev.trace) execve in all"
        done
    fi
fi
if [ "${4:-}" = status ]; then
    reset
    vflag setup ${PFS% *} >> "$LOG" 2>&1 && vflag setup ${PFS#* } >> "$LOG" 2>&1 || echo "!! setup for status failed"
    udevadm settle -t 30
    vflag status > /run/vflag-bench-status.txt 2>&1; echo "vflag status exit $?"
    head -n 12 /run/vflag-bench-status.txt
    grep -i 'represent' /run/vflag-bench-status.txt
    # Where the time goes (not timed): system calls by count and time, when strace is there.
    if command -v strace >/dev/null; then
        strace -f -c -o /run/vflag-bench-status.strace vflag status >/dev/null 2>&1
        echo "strace -c -f vflag status:"; head -n 16 /run/vflag-bench-status.strace
    fi
    for r in 1 2 3 4 5 6 7; do timed status "$VFS" vflag-status $r sh -c 'vflag status >/dev/null; [ $? -le 1 ]'; done
    for r in 1 2 3 4 5 6 7; do timed status "$VFS" vflag-status-json $r sh -c 'vflag status --json >/dev/null; [ $? -le 1 ]'; done
fi
