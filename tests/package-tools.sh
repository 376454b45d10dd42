#!/usr/bin/env bash
# The packaging tools `make deb rpm` uses, installed when missing (Debian host, as root): the
# packages are built by Debian's own dpkg-deb (dpkg, always there) and rpmbuild (Debian's `rpm`
# package, installed here; it also queries the .rpm), so nothing is compiled from source on a
# fresh machine (cargo-deb and cargo-generate-rpm took ~8-10 min of `cargo install`); zig
# (PyPI's ziglang) and cargo-zigbuild as PyPI's prebuilt wheel, for the glibc-2.28 binaries
# (make package-bin), both in the venv $VFLAG_ZIG_VENV (default /var/tmp/vflag-zig-venv: the
# Makefile looks there), with python3-venv. Idempotent. Used by tests/packages.sh and
# tests/vm/run.
set -euo pipefail
venv=${VFLAG_ZIG_VENV:-/var/tmp/vflag-zig-venv}
log() { echo "package-tools: $*" >&2; }

# Pinned: the versions tests/packages.sh was last run with.
wheels=(ziglang==0.17.1 cargo-zigbuild==0.24.1)

apt_missing=()
command -v rpmbuild >/dev/null || apt_missing+=(rpm)
python3 -c 'import ensurepip' 2>/dev/null || apt_missing+=(python3-venv)
if [ ${#apt_missing[@]} -gt 0 ]; then
	log "apt-get install ${apt_missing[*]}"
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_missing[@]}"; } >/dev/null
fi
# (grep reads all of pip's output: with -q it may exit first, pip dies of SIGPIPE and pipefail
# calls the wheel missing, a needless reinstall that needs the network)
have() { "$venv/bin/pip" freeze 2>/dev/null | grep -ix "$1" >/dev/null; }
missing=()
for w in "${wheels[@]}"; do have "$w" || missing+=("$w"); done
if [ ${#missing[@]} -gt 0 ]; then
	log "pip install ${missing[*]} into $venv"
	[ -x "$venv/bin/pip" ] || { rm -rf "$venv"; python3 -m venv "$venv"; }
	"$venv/bin/pip" install -q "${missing[@]}"
fi
log "dpkg-deb $(dpkg-deb --version | sed -n '1s/.* version \([^ ]*\) .*/\1/p'), $(rpmbuild --version | sed 's/RPM version/rpmbuild/'), cargo-zigbuild $("$venv/bin/cargo-zigbuild" --version | awk '{print $2}'), zig $("$venv/bin/python3" -m ziglang version)"
