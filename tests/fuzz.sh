#!/usr/bin/env bash
# Builds the config-parser fuzz target on the stable toolchain (RUSTC_BOOTSTRAP=1, no
# sanitizer) and runs it for a bounded time (FUZZ_SECONDS, default 30) from the committed seeds.
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
	-max_total_time="${FUZZ_SECONDS:-30}" -max_len=4096 -print_final_stats=1 2>&1 | tail -n 12
echo "fuzz: config parser ran ${FUZZ_SECONDS:-30}s without a crash"
