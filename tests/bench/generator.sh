#!/usr/bin/env bash
# Benchmark: wall time and peak RSS of vflag-generator on 1, 8 and 64 LAGs (2 PFs each), next to
# systemd's own C generator systemd-getty-generator on the same machine. Reported, not asserted.
# Usage: tests/bench/generator.sh   (Debian; installs hyperfine with apt-get if missing)
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v hyperfine >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine; }
cargo build --release --locked --bin vflag-generator >/dev/null 2>&1 || cargo build --release --locked --bin vflag-generator
gen="$PWD/target/release/vflag-generator"
getty=$(ls /usr/lib/systemd/system-generators/systemd-getty-generator /lib/systemd/system-generators/systemd-getty-generator 2>/dev/null | head -n1)
work=$(mktemp -d)
# systemd gives generators directories on tmpfs (/run/systemd/generator*): measure the same.
mount -t tmpfs -o size=64m vflag-bench "$work"
trap 'umount "$work"; rm -rf "$work"' EXIT

for n in 1 8 64; do
	root="$work/root$n"
	mkdir -p "$root/etc/vflag" "$root/proc"
	echo "ro quiet intel_iommu=on iommu=pt" > "$root/proc/cmdline"
	for i in $(seq 1 "$n"); do
		printf '[lag bond%d]\npfs = ens%df0 ens%df1\nvfs = 8\npf-channels = 63\nrepresentor-channels = 18\n\n' "$i" "$i" "$i"
	done > "$root/etc/vflag/vflag.conf"
done

# Peak RSS in KiB: median of 21 runs of /usr/bin/time.
rss() {
	for _ in $(seq 21); do
		rm -rf "$work/out"; mkdir -p "$work/out"
		/usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -n1
	done | sort -n | sed -n 11p
}

printf '%-28s %12s %12s %10s\n' "command" "median ms" "stddev ms" "RSS KiB"
printf '#!/bin/sh\nrm -rf "%s/out" && mkdir -p "%s/out"\n' "$work" "$work" > "$work/prep"
chmod +x "$work/prep"
row() {
	local name=$1; shift
	hyperfine -N --warmup 5 --runs 200 --export-json "$work/h.json" --prepare "$work/prep" "$*" >"$work/h.log" 2>&1 ||
		{ cat "$work/h.log" >&2; return 1; }
	python3 - "$work/h.json" "$name" "$(rss "$@")" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
print(f"{sys.argv[2]:<28} {r['median']*1000:12.3f} {r['stddev']*1000:12.3f} {sys.argv[3]:>10}")
PY
}
for n in 1 8 64; do
	VFLAG_ROOT="$work/root$n" row "vflag-generator ($n LAGs)" "$gen" "$work/out" "$work/out" "$work/out"
done
[ -n "$getty" ] && row "systemd-getty-generator" "$getty" "$work/out" "$work/out" "$work/out"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r)"
