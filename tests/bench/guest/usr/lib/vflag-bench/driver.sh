#!/bin/bash
# The test bed kills each [action] after 60 s, and the whole benchmark takes many minutes under
# TCG. So: "driver.sh start CMD..." (first action) runs CMD as a transient systemd unit writing to
# /run/vflag-bench/out; "driver.sh wait" (the following actions) waits up to 55 s for it to end;
# "driver.sh print" (last action) prints the output (ROW lines) and says whether it finished.
D=/run/vflag-bench
case $1 in
start)
    shift
    mkdir -p $D
    systemd-run --unit=vflag-bench --collect -p StandardOutput=file:$D/out -p StandardError=file:$D/out \
        /bin/sh -c "$*; echo \$? > $D/rc"
    ;;
wait)
    for i in $(seq 55); do [ -e $D/rc ] && break; sleep 1; done
    [ -e $D/rc ] && echo "finished" || echo "still running"
    ;;
print)
    cat $D/out
    if [ -e $D/rc ]; then echo "benchmark finished, rc $(cat $D/rc)"; exit "$(cat $D/rc)"
    else echo "INCOMPLETE: benchmark still running when the actions ran out"; systemctl stop vflag-bench; exit 3; fi
    ;;
esac
