#!/usr/bin/env bash
# Builds the config-parser fuzz target on the stable toolchain (RUSTC_BOOTSTRAP=1, no
# sanitizer) and runs it from the committed seeds for a fixed number of inputs (FUZZ_RUNS, default
# 300000: ~30 s on a free core), so the proof is the same when the run shares the machine with the
# guest (tests/run-all.sh runs it in the background); FUZZ_SECONDS (default 300) only bounds it.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cargo fuzz --help >/dev/null 2>&1; then
	echo "fuzz: installing cargo-fuzz"
	nice cargo install --locked cargo-fuzz
fi
export RUSTC_BOOTSTRAP=1
corpus="${CARGO_TARGET_DIR:-target}/fuzz-corpus/config"
mkdir -p "$corpus"
nice cargo fuzz build -s none config
nice cargo fuzz run -s none config "$corpus" fuzz/seeds/config -- \
	-runs="${FUZZ_RUNS:-300000}" -max_total_time="${FUZZ_SECONDS:-300}" -max_len=4096 \
	-print_final_stats=1 2>&1 | tail -n 12
echo "fuzz: config parser ran without a crash (up to ${FUZZ_RUNS:-300000} inputs, ${FUZZ_SECONDS:-300} s)"
