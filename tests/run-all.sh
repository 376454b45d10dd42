#!/usr/bin/env bash
# The whole test suite (`make test`, `.ci/run`), step by step, with each step's wall time in a
# table at the end (also when a step fails), so every run shows where the CI time goes; the guest
# step's per-scenario times follow it.
#
# The guest images (tests/vm/run --images-only: build-image.sh of each release the suite boots,
# bookworm and trixie) are built in the background from the end of host-setup (which installs
# what they need, tests/vm/setup-host.sh) while packages runs: a cold build is mostly download,
# dpkg and I/O (tests/vm/README.md "The image builds in the background"); with the images cached
# it takes seconds. The guest step first waits for it (its own row, "(waited)" for the time the
# guest step spent waiting) and prints its output; if it failed, the guest step builds the
# images itself, as it does when nothing built them (and fails if that fails too). It is never
# killed (an image build stopped inside mmdebstrap can leave mounts in its work tree): after an
# earlier step fails it is waited for.
# Host steps the guest does not need (cargo-test, fuzz, ansible) run in the background while the
# guest step runs: the guest step needs only the packages step's .deb, so it starts as early as
# it can. They run at the lowest CPU and I/O priority (nice 19 in a session of their own, idle
# I/O class): a TCG guest keeps one host core busy most of the time and the second one only in
# bursts (boots), so they mostly use the core the guest leaves idle (tests/vm/README.md "What CI
# time goes to" has the measurement). Their output is printed when they end, so a cargo-test
# failure is reported after the guest step, not before it. VFLAG_CI_SERIAL=1 runs every step in
# the foreground, one after the other (host-setup, cargo-test, packages, fuzz, guest, ansible;
# the guest step builds the images).
# The foreground steps stop at the first failure, as `make` did; the background ones are still
# waited for and reported. Exit status: the first failing step's (a failed background image
# build counts only through the guest step, which builds the images again).
set -uo pipefail
cd "$(dirname "$0")/.."
cargo=${CARGO:-cargo}

steps=(
	"host-setup|tests/setup-host.sh && tests/vm/setup-host.sh"
	"packages|tests/packages.sh"
	"guest|tests/vm/run"
)
# Started (in the background, one after the other) when the guest step starts: nothing the
# guest needs comes from them (its one debug test binary is built by tests/vm/run itself, in the
# background too). cargo-test first: ansible needs its debug vflag (and the packages step's .deb);
# fuzz needs nothing built before it. cargo-test runs in the lowest best-effort I/O class, not
# the idle one: its tests read the journal and logs and start daemons, and an idle-class read
# waits until the guest's disk is quiet (once, status_host_kernel took 5.8 s there, 13 ms alone;
# not reproduced, the cause not proven).
bg_steps=(
	"cargo-test|ionice -c 2 -n 7 $cargo test --locked --all-targets"
	"fuzz|tests/fuzz.sh"
	"ansible|tests/ansible.sh"
)
# Started when host-setup is done; the guest step waits for it.
img_steps=(
	"images|tests/vm/run --images-only"
)

logs=$(mktemp -d /var/tmp/vflag-ci-steps.XXXXXX)
table=()
rc_all=0
start=$(date +%s)
bg_pid=
img_pid=
summary() {
	if [ -n "$img_pid" ]; then
		echo "== waiting for the background image builds (not stopped: see the top of tests/run-all.sh)"
		wait "$img_pid" 2>/dev/null
		img_report "from host-setup, waited for after a failed step"
	fi
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
# interrupted: the background session of cargo-test, fuzz and ansible too (its own process group, see below)
trap 'if [ -n "$bg_pid" ]; then kill -- -"$bg_pid" 2>/dev/null; fi; exit 130' INT TERM

# bg_run STEP...: the steps, one after the other; each leaves NAME.{log,rc,secs} in $logs.
bg_run() {
	for step in "$@"; do
		name=${step%%|*}
		cmd=${step#*|}
		t0=$(date +%s)
		bash -c "$cmd" >"$logs/$name.log" 2>&1
		echo $? >"$logs/$name.rc"
		echo $(($(date +%s) - t0)) >"$logs/$name.secs"
	done
}
# bg_start VAR STEP...: bg_run in the background, in its own session (a scheduler autogroup) at
# autogroup nice 19, idle I/O class; VAR gets the session's pid (= its process group).
# QEMU runs in a session of its own (runner.py), and with autogroups plain `nice` only ranks
# processes of one session: measured, a nice 19 build beside the guest still took half the CPU,
# this way ~a third.
bg_start() {
	local var=$1
	shift
	{ declare -p logs; declare -f bg_run; printf 'bg_run'; printf ' %q' "$@"; echo; } >"$logs/$var.sh"
	setsid -w bash -c 'echo 19 >/proc/self/autogroup 2>/dev/null
		exec nice -n 19 ionice -c 3 bash "$0"' "$logs/$var.sh" &
	printf -v "$var" %s $!
}
# bg_report_steps WHEN STEP...: each step's output, and its row; a failure sets the exit status.
bg_report_steps() {
	local when=$1 step name rc
	shift
	for step in "$@"; do
		name=${step%%|*}
		[ -e "$logs/$name.rc" ] || continue
		echo "== $name: ${step#*|} (ran in the background $when)"
		cat "$logs/$name.log"
		rc=$(cat "$logs/$name.rc")
		if [ "$rc" -ne 0 ]; then
			table+=("$name|$(cat "$logs/$name.secs")|FAILED (exit $rc; background)")
			[ "$rc_all" -ne 0 ] || rc_all=$rc
		else
			table+=("$name|$(cat "$logs/$name.secs")|ok (background, $when)")
		fi
	done
}
bg_report() {
	bg_report_steps "during guest" "${bg_steps[@]}"
	bg_pid=
}
# img_report WHEN: as bg_report_steps, but a failure does not set the exit status: the guest step
# builds the images again (and fails if it cannot).
img_report() {
	local name=${img_steps[0]%%|*} rc
	if [ ! -e "$logs/$name.rc" ]; then
		table+=("$name|?|no result (background)")
	else
		echo "== $name: ${img_steps[0]#*|} (ran in the background $1)"
		cat "$logs/$name.log"
		rc=$(cat "$logs/$name.rc")
		if [ "$rc" -ne 0 ]; then
			echo "== $name: FAILED (exit $rc): the guest step builds the images again"
			table+=("$name|$(cat "$logs/$name.secs")|FAILED (exit $rc; background; the guest step builds them again)")
		else
			table+=("$name|$(cat "$logs/$name.secs")|ok (background, $1)")
		fi
	fi
	img_pid=
}

serial=${VFLAG_CI_SERIAL:-0}
if [ "$serial" = 1 ]; then
	# host-setup, cargo-test, packages, fuzz, guest, ansible
	steps=("${steps[0]}" "${bg_steps[0]}" "${steps[1]}" "${bg_steps[1]}" "${steps[2]}" "${bg_steps[2]}")
	bg_steps=()
	img_steps=()
fi

for step in "${steps[@]}"; do
	name=${step%%|*}
	cmd=${step#*|}
	if [ "$name" = guest ] && [ -n "$img_pid" ]; then
		echo "== waiting for the background image builds"
		t0=$(date +%s)
		wait "$img_pid"
		table+=("(waited)|$(($(date +%s) - t0))|for the image builds before the guest step")
		img_report "from host-setup to the guest step"
	fi
	if [ "$name" = guest ] && [ "${#bg_steps[@]}" -gt 0 ]; then
		echo "== ${bg_steps[*]%%|*}: started in the background (nice 19, idle I/O class)"
		bg_start bg_pid "${bg_steps[@]}"
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
	if [ "$name" = host-setup ] && [ "${#img_steps[@]}" -gt 0 ]; then
		echo "== ${img_steps[*]%%|*}: started in the background (nice 19, idle I/O class)"
		bg_start img_pid "${img_steps[@]}"
	fi
done
if [ -n "$bg_pid" ]; then
	echo "== waiting for the background steps"
	t0=$(date +%s)
	wait "$bg_pid"
	table+=("(waited)|$(($(date +%s) - t0))|for the background steps after the guest step")
	bg_report
fi
exit "$rc_all"
