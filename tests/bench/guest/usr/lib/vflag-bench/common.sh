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
    [ $rc = 0 ] || { echo "!! $variant rep $rep failed (rc $rc), log tail:"; tail -n 5 "$LOG"; }
}
# The three variants in a rotating order per repetition, so no variant always runs first.
order() { case $(($1 % 3)) in 0) echo a b c ;; 1) echo b c a ;; 2) echo c a b ;; esac; }
