#!/usr/bin/env bash
# Prepare Open vSwitch user-space binaries (ovsdb-tool, ovsdb-server, ovs-vswitchd, ovs-appctl)
# for vflag's tests WITHOUT installing them: Debian's packages are fetched with `apt-get download`
# and unpacked with `dpkg -x` into a cache directory. Nothing is installed, no service is started,
# the host's dpkg database is not touched.
#
# Idempotent: a complete, working cache is reused. On success the ONLY line on stdout is the
# directory the packages were unpacked into (binaries under <dir>/usr/sbin, <dir>/usr/bin and
# <dir>/usr/lib/openvswitch-switch (ovs-vswitchd),
# libraries under <dir>/usr/lib/<triplet>, schema under <dir>/usr/share/openvswitch). Progress goes
# to stderr.
#
# Usage:  VFLAG_OVS_DIR=$(bash tests/setup-ovs.sh)          # prepare (downloads if needed)
#         bash tests/setup-ovs.sh --check                   # print the dir if ready, else exit 1
# Env:    VFLAG_OVS_CACHE  parent directory of the cache (default /var/cache/vflag-tests)
set -euo pipefail

CHECK_ONLY=0
if [ "${1:-}" = "--check" ]; then CHECK_ONLY=1; fi

CACHE="${VFLAG_OVS_CACHE:-/var/cache/vflag-tests}"
PKGS="openvswitch-switch openvswitch-common"
# Shared libraries the OVS binaries link against; only those not installed on the host are
# fetched (on a stock Debian 12 that is libxdp1).
LIBS="libxdp1 libbpf1 libcap-ng0 libnuma1 libssl3 libunbound8 libevent-2.1-7"

log() { echo "setup-ovs: $*" >&2; }

# apt-get update, retried: another job may hold the lists lock for a while.
update() {
    local i
    for i in 1 2 3 4 5 6; do
        apt-get update -qq >&2 && return 0
        log "apt-get update failed (try $i); retrying in 10 s"
        sleep 10
    done
    return 1
}

candidate() {
    apt-cache policy openvswitch-switch 2>/dev/null | awk '/Candidate:/ {print $2; exit}'
}

# Succeeds when DIR holds binaries that actually run (all libraries resolvable).
works() {
    local dir=$1 ld
    [ -f "$dir/.complete" ] || return 1
    ld=$(ld_path "$dir")
    for b in usr/sbin/ovsdb-server usr/bin/ovsdb-tool; do
        [ -x "$dir/$b" ] || return 1
        LD_LIBRARY_PATH="$ld" "$dir/$b" --version >/dev/null 2>&1 || return 1
    done
}

ld_path() {
    local dir=$1 out="" d
    for d in "$dir"/usr/lib/*-linux-gnu "$dir"/lib/*-linux-gnu; do
        [ -d "$d" ] && out="${out:+$out:}$d"
    done
    echo "$out"
}

# A ready cache of any version is good enough for --check.
if [ "$CHECK_ONLY" = 1 ]; then
    for dir in "$CACHE"/ovs-*; do
        if [ -d "$dir" ] && works "$dir"; then echo "$dir"; exit 0; fi
    done
    log "no prepared OVS under $CACHE (run tests/setup-ovs.sh without --check)"
    exit 1
fi

ver=$(candidate || true)
if [ -z "$ver" ] || [ "$ver" = "(none)" ]; then
    log "no candidate for openvswitch-switch; running apt-get update"
    update
    ver=$(candidate)
fi
[ -n "$ver" ] && [ "$ver" != "(none)" ] || { log "openvswitch-switch not available from apt"; exit 1; }

dir="$CACHE/ovs-$ver"
if works "$dir"; then
    log "reusing $dir"
    echo "$dir"
    exit 0
fi

mkdir -p "$CACHE"
work=$(mktemp -d "$CACHE/.dl.XXXXXX")
chmod 755 "$work" # apt-get download drops to user _apt
trap 'rm -rf "$work"' EXIT

want="$PKGS"
for p in $LIBS; do
    if ! dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii'; then
        want="$want $p"
    fi
done

fetch() { (cd "$work/debs" && apt-get download -q -o APT::Sandbox::User=root $want >&2); }
mkdir -p "$work/debs"
if ! fetch; then
    # Stale package lists name versions the archive no longer has.
    log "apt-get download failed; running apt-get update and retrying"
    update
    ver=$(candidate)
    dir="$CACHE/ovs-$ver"
    fetch
fi

mkdir -p "$work/root"
for deb in "$work"/debs/*.deb; do
    log "unpacking $(basename "$deb")"
    dpkg -x "$deb" "$work/root"
done
touch "$work/root/.complete"

# Report unresolved libraries precisely instead of a bare failure.
ld=$(ld_path "$work/root")
missing=$(LD_LIBRARY_PATH="$ld" ldd "$work/root/usr/sbin/ovsdb-server" "$work/root/usr/lib/openvswitch-switch/ovs-vswitchd" 2>&1 |
    awk '/not found|No such file/ {print $1}' | sort -u || true)
if [ -n "$missing" ]; then
    log "unresolved libraries: $missing"
    exit 1
fi

rm -rf "$dir"
mv "$work/root" "$dir"
works "$dir" || { log "binaries in $dir do not run"; exit 1; }
log "prepared $dir"
echo "$dir"
