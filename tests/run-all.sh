#!/usr/bin/env bash
# The whole test suite (`make test`, `.ci/run`), step by step, with each step's wall time in a
# table at the end (also when a step fails), so every run shows where the CI time goes.
# Stops at the first failing step, as `make` did; exit status is that step's.
set -uo pipefail
cd "$(dirname "$0")/.."
cargo=${CARGO:-cargo}

steps=(
	"host-setup|tests/setup-host.sh"
	"cargo-test|$cargo test --locked --all-targets"
	"fuzz|tests/fuzz.sh"
	"packages|tests/packages.sh"
	"guest|tests/vm/run"
	"ansible|tests/ansible.sh"
)

table=()
start=$(date +%s)
summary() {
	echo
	echo "== test steps (wall time) =="
	printf '%-12s %8s  %s\n' step seconds result
	for row in "${table[@]}"; do
		IFS='|' read -r name secs res <<<"$row"
		printf '%-12s %8s  %s\n' "$name" "$secs" "$res"
	done
	printf '%-12s %8s\n' total "$(($(date +%s) - start))"
}
trap summary EXIT

for step in "${steps[@]}"; do
	name=${step%%|*}
	cmd=${step#*|}
	echo "== $name: $cmd"
	t0=$(date +%s)
	bash -c "$cmd"
	rc=$?
	secs=$(($(date +%s) - t0))
	if [ "$rc" -ne 0 ]; then
		table+=("$name|$secs|FAILED (exit $rc)")
		exit "$rc"
	fi
	table+=("$name|$secs|ok")
done
