#!/bin/bash
# Restart the early stage of both PFs N times (issue 7: repetition and concurrency). After every
# restart the PFs must be in exactly the state of the first boot: same VF count, eswitch mode,
# representors (by ifindex, so a leaked or re-created representor shows), offload, bond; vflag
# must leave no extra files in /run/vflag; and systemd must not grow (fds, memory) beyond noise.
# Then both units are restarted in parallel while `vflag status` runs, three times.
set -u
N=${1:-20}
PFS="eni10np1 eni11np1"

signature() {
	for pf in $PFS; do
		d=/sys/class/net/$pf
		printf '%s numvfs=%s master=%s ' "$pf" "$(cat $d/device/sriov_numvfs)" "$(basename "$(readlink $d/master)")"
		devlink dev eswitch show "$(basename "$(readlink $d/device/subsystem)")/$(basename "$(readlink -f $d/device)")" | grep -o 'mode [a-z]*'
		sw=$(cat $d/phys_switch_id)
		for r in /sys/class/net/*; do
			[ "$(cat $r/phys_switch_id 2>/dev/null)" = "$sw" ] || continue
			case "$(cat $r/phys_port_name 2>/dev/null)" in pf*vf*) printf ' %s:%s' "$(cat $r/ifindex)" "$(ethtool -k "$(basename $r)" | awk '/hw-tc-offload/ {print $2}')";; esac
		done
		echo
	done
	ls /run/vflag | tr '\n' ' '; echo
}

fds() { ls /proc/1/fd | wc -l; }
mem() { awk '/^VmRSS/ {print $2}' /proc/1/status; }

first=$(signature)
fd0=$(fds); mem0=$(mem)
echo "baseline:"; echo "$first"
fail=0
for i in $(seq 1 "$N"); do
	for pf in $PFS; do
		systemctl restart "vflag@$pf.service" || { echo "restart $i $pf failed"; fail=1; }
	done
	now=$(signature)
	if [ "$now" != "$first" ]; then
		echo "restart $i: state differs:"; echo "$now"; fail=1
	fi
done
echo "after $N restarts ($SECONDS s): pid1 fds $fd0 -> $(fds), pid1 VmRSS ${mem0} kB -> $(mem) kB"
[ $(( $(fds) - fd0 )) -le 5 ] || { echo "systemd fd count grew"; fail=1; }
systemctl is-active vflag@eni10np1.service vflag@eni11np1.service | sort | uniq -c

for i in 1 2 3; do
	systemctl restart vflag@eni10np1.service & a=$!
	systemctl restart vflag@eni11np1.service & b=$!
	vflag status >/tmp/status.$i 2>&1; src=$?
	wait $a || { echo "parallel restart $i eni10np1 failed"; fail=1; }
	wait $b || { echo "parallel restart $i eni11np1 failed"; fail=1; }
	echo "parallel $i: status rc=$src"
	[ "$(signature)" = "$first" ] || { echo "parallel $i: state differs"; signature; fail=1; }
done
journalctl -b -u 'vflag@*' --no-pager -o cat | grep -c "nothing changed" | sed 's/^/no-op restarts reported: /'
echo "result: $([ $fail = 0 ] && echo SAME || echo DIFFERENT)"
exit $fail
