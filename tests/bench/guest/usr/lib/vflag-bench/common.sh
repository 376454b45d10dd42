# Shared by the guest-side benchmark actions (tests/bench/guest, copied in by bench-*.scenario).
# Every timed run prints one line:  ROW <stage> <vfs> <variant> <rep> <microseconds> <rc>
# (wall time of the whole command from outside, date +%s%N before and after). Machine-read by
# tests/bench/summary.py; everything else in the output is for people.
B=/usr/lib/vflag-bench
LOG=/run/vflag-bench.log
now_us() { local t; t=$(date +%s%N); echo $((t / 1000)); }
# timed STAGE VFS VARIANT REP cmd...
timed() {
    local stage=$1 vfs=$2 variant=$3 rep=$4 s e rc
    shift 4
    echo "### $stage $vfs $variant $rep: $*" >> "$LOG"
    s=$(now_us)
    "$@" >> "$LOG" 2>&1
    rc=$?
    e=$(now_us)
    echo "ROW $stage $vfs $variant $rep $((e - s)) $rc"
    echo "$stage $vfs $variant $rep $s $e" >> /run/vflag-bench-times
    [ $rc = 0 ] || { echo "!! $variant rep $rep failed (rc $rc), log tail:"; tail -n 5 "$LOG"; }
}
# The three variants in a rotating order per repetition, so no variant always runs first.
order() { case $(($1 % 3)) in 0) echo a b c ;; 1) echo b c a ;; 2) echo c a b ;; esac; }
# steps STAGE VFS: where each timed vflag run of that series spent its time: its journal lines
# (vflag logs a line per step; the harness runs it with JOURNAL_STREAM set, as systemd does),
# as "first-word-of-message@ms-since-the-run-started". Not timed.
steps() {
    local stage=$1 vfs=$2 first
    first=$(awk -v st="$stage" -v n="$vfs" '$1 == st && $2 == n && $3 == "vflag" {print int($5 / 1000000); exit}' /run/vflag-bench-times)
    [ -n "$first" ] || return 0
    journalctl -q -o short-unix SYSLOG_IDENTIFIER=vflag --since "@$((first - 1))" --no-pager > /run/vflag-bench-journal
    awk -v st="$stage" -v n="$vfs" '$1 == st && $2 == n && $3 == "vflag" {print $4, $5, $6}' /run/vflag-bench-times |
        while read -r rep s e; do
            awk -v s="$s" -v e="$e" -v rep="$rep" '
                BEGIN { printf "STEPS vflag rep %s (%d ms):", rep, (e - s) / 1000 }
                { t = $1 * 1000000; if (t >= s && t <= e) { sub(/^[^:]*: /, ""); printf " %s@%d", $1, (t - s) / 1000 } }
                END { print "" }' /run/vflag-bench-journal
        done
}
