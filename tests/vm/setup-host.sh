#!/bin/bash
# Install what the VM test bed needs on the host (Debian 12, as root). Idempotent: when everything
# is present it does no apt work at all.
#
# QEMU >= 8 (igb SR-IOV) comes from <codename>-backports of the same archive the host already uses;
# the backports source is passed to apt for this run only (-o Dir::Etc::SourceParts=...), nothing is
# written under /etc/apt.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/apt-sources.sh"

log() { echo "setup-host: $*" >&2; }

# Packages from the release itself.
PKGS=(mmdebstrap busybox-static cpio e2fsprogs xz-utils make gcc libelf1 python3 debian-archive-keyring)
# Packages that must come from backports (QEMU >= 8 for igb; qemu-utils for qemu-img, same version).
BPO_PKGS=(qemu-system-x86 qemu-utils)

installed() { [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]; }

qemu_ok() {
    command -v qemu-system-x86_64 >/dev/null || return 1
    local v
    v=$(qemu-system-x86_64 --version | sed -n 's/^QEMU emulator version \([0-9]*\)\..*/\1/p')
    [ -n "$v" ] && [ "$v" -ge 8 ] || return 1
    qemu-system-x86_64 -device help 2>/dev/null | grep -q '"igb"' || return 1
    command -v qemu-img >/dev/null
}

missing=()
for p in "${PKGS[@]}"; do installed "$p" || missing+=("$p"); done

if [ ${#missing[@]} -eq 0 ] && qemu_ok; then
    log "host ready ($(qemu-system-x86_64 --version | head -1))"
    exit 0
fi

[ "$(id -u)" = 0 ] || { log "must run as root to install: ${missing[*]} qemu"; exit 1; }
export DEBIAN_FRONTEND=noninteractive

codename=$(vm_host_codename)
main_uri=$(vm_archive_uri "$codename")
[ -n "$main_uri" ] || { log "no apt source for suite $codename found on this host"; exit 1; }

# A source-parts directory = the host's own sources + backports of the main archive.
parts=$(mktemp -d /tmp/vflag-apt-parts.XXXXXX)
trap 'rm -rf "$parts"' EXIT
cp /etc/apt/sources.list.d/*.sources "$parts/" 2>/dev/null || true
cp /etc/apt/sources.list.d/*.list "$parts/" 2>/dev/null || true
have_bpo=$(vm_archive_uri "$codename-backports")
if [ -z "$have_bpo" ]; then
    cat > "$parts/vflag-testbed-backports.sources" <<SRC
Types: deb
URIs: $main_uri
Suites: $codename-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
APT=(apt-get -o "Dir::Etc::SourceParts=$parts" -o Acquire::Retries=3 -y -q)

log "apt-get update (host sources + $codename-backports)"
"${APT[@]}" update >/dev/null
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    "${APT[@]}" install --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! qemu_ok; then
    log "installing ${BPO_PKGS[*]} from $codename-backports"
    "${APT[@]}" install --no-install-recommends -t "$codename-backports" "${BPO_PKGS[@]}" >/dev/null
fi
qemu_ok || { log "QEMU >= 8 with igb still missing after install"; exit 1; }
log "host ready ($(qemu-system-x86_64 --version | head -1))"
