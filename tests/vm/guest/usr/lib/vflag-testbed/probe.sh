#!/bin/bash
# Snapshot of every PF's state at one point of the boot: probe.sh NAME -> /run/vflag-testbed/probe-NAME
. /usr/lib/vflag-testbed/common.sh
out=$RUNDIR/probe-$1
{ echo "at_us=$(uptime_us)"; for pf in $(pfs); do pf_facts "$pf"; done; } > "$out.tmp"
mv "$out.tmp" "$out"
cat "$out"
