#!/bin/bash
# The whole benchmark takes many minutes under TCG. "driver.sh start CMD..." (first action) runs
# CMD as a transient systemd unit writing to /run/vflag-bench/out; "driver.sh wait [SECONDS]"
# (next action, its scenario's action-timeout above SECONDS) waits for it to end (default 55 s);
# "driver.sh print" (last action) prints the output (ROW lines) and says whether it finished.
# The output is written straight to the test bed's 9p results directory when it is mounted
# (/results/actions/bench-live.log): readable on the host while the guest still runs.
D=/run/vflag-bench
OUT=$D/out
mountpoint -q /results && OUT=/results/actions/bench-live.log
case $1 in
start)
    shift
    mkdir -p $D ${OUT%/*}
    systemd-run --unit=vflag-bench --collect -p StandardOutput=file:$OUT -p StandardError=file:$OUT \
        /bin/sh -c "$*; echo \$? > $D/rc"
    ;;
wait)
    for i in $(seq "${2:-55}"); do [ -e $D/rc ] && break; sleep 1; done
    [ -e $D/rc ] && echo "finished" || echo "still running"
    ;;
print)
    cat $OUT
    if [ -e $D/rc ]; then echo "benchmark finished, rc $(cat $D/rc)"; exit "$(cat $D/rc)"
    else echo "INCOMPLETE: benchmark still running when the actions ran out"; systemctl stop vflag-bench; exit 3; fi
    ;;
esac
