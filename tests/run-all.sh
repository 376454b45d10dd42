#!/usr/bin/env bash
# The whole test suite (`make test`, `.ci/run`), step by step, with each step's wall time in a
# table at the end (also when a step fails), so every run shows where the CI time goes; the guest
# step's per-scenario times follow it.
#
# Host steps that need no guest (fuzz, ansible) run in the background while the guest step runs,
# at the lowest CPU and I/O priority (nice 19 in a session of their own, idle I/O class): a TCG guest keeps one host core busy most of the time and
# the second one only in bursts (boots), so they mostly use the core the guest leaves idle
# (tests/vm/README.md "What CI time goes to" has the measurement). Their output is printed when
# they end. VFLAG_CI_SERIAL=1 runs every step in the foreground, one after the other.
# The foreground steps stop at the first failure, as `make` did; the background ones are still
# waited for and reported. Exit status: the first failing step's.
set -uo pipefail
cd "$(dirname "$0")/.."
cargo=${CARGO:-cargo}

steps=(
	"host-setup|tests/setup-host.sh"
	"cargo-test|$cargo test --locked --all-targets"
	"packages|tests/packages.sh"
	"guest|tests/vm/run"
)
# Started (in the background, one after the other) when the guest step starts; fuzz needs
# nothing built before it, ansible the packages step's .deb and cargo-test's debug vflag.
bg_steps=(
	"fuzz|tests/fuzz.sh"
	"ansible|tests/ansible.sh"
)

logs=$(mktemp -d /var/tmp/vflag-ci-steps.XXXXXX)
table=()
rc_all=0
start=$(date +%s)
bg_pid=
summary() {
	if [ -n "$bg_pid" ]; then
		wait "$bg_pid" 2>/dev/null
		bg_report
	fi
	echo
	echo "== test steps (wall time) =="
	printf '%-12s %8s  %s\n' step seconds result
	for row in "${table[@]}"; do
		IFS='|' read -r name secs res <<<"$row"
		printf '%-12s %8s  %s\n' "$name" "$secs" "$res"
	done
	printf '%-12s %8s\n' total "$(($(date +%s) - start))"
	if [ -s "$logs/guest.log" ]; then
		echo
		echo "== guest scenarios (seconds: a boot's from disk preparation to its checks, a phase's in the guest) =="
		sed -n '/^=== summary$/,$p' "$logs/guest.log" | sed 1d
	fi
	rm -rf "$logs"
}
trap summary EXIT
# interrupted: the background session too (its own process group, see below)
trap 'if [ -n "$bg_pid" ]; then kill -- -"$bg_pid" 2>/dev/null; fi; exit 130' INT TERM

# bg_run: the background steps, one after the other; each leaves NAME.{log,rc,secs} in $logs.
bg_run() {
	for step in "${bg_steps[@]}"; do
		name=${step%%|*}
		cmd=${step#*|}
		t0=$(date +%s)
		bash -c "$cmd" >"$logs/$name.log" 2>&1
		echo $? >"$logs/$name.rc"
		echo $(($(date +%s) - t0)) >"$logs/$name.secs"
	done
}
bg_report() {
	for step in "${bg_steps[@]}"; do
		name=${step%%|*}
		[ -e "$logs/$name.rc" ] || continue
		echo "== $name: ${step#*|} (ran in the background during the guest step)"
		cat "$logs/$name.log"
		rc=$(cat "$logs/$name.rc")
		if [ "$rc" -ne 0 ]; then
			table+=("$name|$(cat "$logs/$name.secs")|FAILED (exit $rc; background)")
			[ "$rc_all" -ne 0 ] || rc_all=$rc
		else
			table+=("$name|$(cat "$logs/$name.secs")|ok (background, during guest)")
		fi
	done
	bg_pid=
}

serial=${VFLAG_CI_SERIAL:-0}
if [ "$serial" = 1 ]; then
	steps=("${steps[@]:0:3}" "${bg_steps[@]:0:1}" "${steps[3]}" "${bg_steps[@]:1}")
	bg_steps=()
fi

for step in "${steps[@]}"; do
	name=${step%%|*}
	cmd=${step#*|}
	if [ "$name" = guest ] && [ "${#bg_steps[@]}" -gt 0 ]; then
		echo "== ${bg_steps[*]%%|*}: started in the background (nice 19, idle I/O class)"
		{ declare -p bg_steps logs; declare -f bg_run; echo bg_run; } >"$logs/bg.sh"
		# Its own session (a scheduler autogroup) at autogroup nice 19: QEMU runs in a session of
		# its own (runner.py), and with autogroups plain `nice` only ranks processes of one session:
		# measured, a nice 19 build beside the guest still took half the CPU, this way ~a third.
		setsid -w bash -c 'echo 19 >/proc/self/autogroup 2>/dev/null
			exec nice -n 19 ionice -c 3 bash "$0"' "$logs/bg.sh" &
		bg_pid=$!
	fi
	echo "== $name: $cmd"
	t0=$(date +%s)
	if [ "$name" = guest ]; then
		bash -c "$cmd" 2>&1 | tee "$logs/guest.log"
		rc=${PIPESTATUS[0]}
	else
		bash -c "$cmd"
		rc=$?
	fi
	secs=$(($(date +%s) - t0))
	if [ "$rc" -ne 0 ]; then
		table+=("$name|$secs|FAILED (exit $rc)")
		rc_all=$rc
		break
	fi
	table+=("$name|$secs|ok")
done
if [ -n "$bg_pid" ]; then
	echo "== waiting for the background steps"
	t0=$(date +%s)
	wait "$bg_pid"
	table+=("(waited)|$(($(date +%s) - t0))|for the background steps after the guest step")
	bg_report
fi
exit "$rc_all"
