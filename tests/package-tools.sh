#!/usr/bin/env bash
# The packaging tools `make deb rpm` uses, installed when missing (Debian host, as root):
# cargo-deb, cargo-generate-rpm and cargo-zigbuild (`cargo install --locked`), zig (PyPI's
# ziglang, in the venv $VFLAG_ZIG_VENV, default /var/tmp/vflag-zig-venv: the Makefile looks
# there), Debian's rpm (to query the .rpm) and python3-venv. Idempotent; a few minutes the first
# time. Used by tests/packages.sh and tests/vm/run.
set -euo pipefail
export PATH="$HOME/.cargo/bin:$PATH"
venv=${VFLAG_ZIG_VENV:-/var/tmp/vflag-zig-venv}
log() { echo "package-tools: $*" >&2; }

apt_missing=()
command -v rpm >/dev/null || apt_missing+=(rpm)
python3 -c 'import ensurepip' 2>/dev/null || apt_missing+=(python3-venv)
if [ ${#apt_missing[@]} -gt 0 ]; then
	log "apt-get install ${apt_missing[*]}"
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_missing[@]}"; } >/dev/null
fi
for tool in cargo-deb cargo-generate-rpm cargo-zigbuild; do
	if ! command -v "$tool" >/dev/null; then
		log "cargo install --locked $tool"
		nice -n 10 cargo install --locked --quiet "$tool"
	fi
done
if ! "$venv/bin/python3" -m ziglang version >/dev/null 2>&1; then
	log "zig: pip install ziglang into $venv"
	rm -rf "$venv"
	python3 -m venv "$venv"
	"$venv/bin/pip" install -q ziglang
fi
log "cargo-deb $(cargo-deb --version 2>/dev/null | awk '{print $2}'), cargo-zigbuild $(cargo-zigbuild --version | awk '{print $2}'), zig $("$venv/bin/python3" -m ziglang version)"
