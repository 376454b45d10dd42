#!/bin/bash
# Build (or reuse) the cached guest image for the VM test bed: build-image.sh [CODENAME]
# (default: the host's release; `trixie` on a bookworm host gives the Debian 13 image).
#
#   Debian <codename> (minbase) + systemd/udev/dbus/iproute2/ethtool/kmod/NetworkManager/
#   systemd-networkd/openvswitch/ifupdown/busybox/ansible-core, the 6.12 kernel from <codename>-security
#   (linux-image-*-unsigned) and netdevsim built out of tree from linux-source-6.12.
#
# Output: prints the cache directory on stdout. It holds rootfs.raw (ext4, no partition table,
# root=/dev/vda), vmlinuz, initrd.img, kernel-release, manifest.
# Cache: ${VFLAG_VM_CACHE:-/var/cache/vflag-testbed}/<key>, key = sha256 of the package list, the
# kernel source version + ABI and this script and its helpers. Rebuilt when missing. If the archive
# cannot be reached, the last image of that release built on this machine (<cache>/current-<codename>)
# is reused.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ $# -eq 0 ] || export VFLAG_VM_CODENAME=$1
. "$here/lib/apt-sources.sh"
. "$here/lib/private-apt.sh"

log() { echo "build-image: $*" >&2; }
CACHE=${VFLAG_VM_CACHE:-/var/cache/vflag-testbed}
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock -w 1800 9 || { log "could not lock $CACHE/.lock"; exit 1; }

# python3-apt + ansible-core: the package-install boot runs the Ansible role in the guest (its
# apt module needs python3-apt, which it cannot fetch offline); strace: benchmark profiles.
# ifupdown + ifenslave: the ifupdown scenarios (networking.service disabled below, no stanzas).
GUEST_PKGS=(systemd systemd-sysv udev dbus iproute2 ethtool kmod network-manager
    openvswitch-switch ifupdown ifenslave busybox pciutils procps initramfs-tools zstd
    python3-apt ansible-core strace)
codename=$(vm_codename)
# One `current` link per release: a run of one release never repoints the other's.
current="$CACHE/current-$codename"

apt_dir="$CACHE/apt-$codename"
vm_private_apt_init "$apt_dir"
if ! "${VM_APT[@]}" update >"$CACHE/apt-update-$codename.log" 2>&1; then
    if [ -e "$current/rootfs.raw" ]; then
        log "archive unreachable (see $CACHE/apt-update-$codename.log); reusing $(readlink -f "$current")"
        readlink -f "$current"; exit 0
    fi
    log "archive unreachable and no cached $codename image: see $CACHE/apt-update-$codename.log"; exit 1
fi

# Kernel: newest linux-source-6.12 in the archive; ABI from the matching headers package name.
SV=$("${VM_APT_CACHE[@]}" policy linux-source-6.12 | awk '/Candidate:/ { print $2 }')
[ -n "$SV" ] && [ "$SV" != "(none)" ] || { log "linux-source-6.12 not found in $codename-security"; exit 1; }
UP=${SV%%-*}
ABI=$("${VM_APT_CACHE[@]}" pkgnames "linux-headers-$UP+" | sed -n "s/^linux-headers-\($UP+[^-]*\)-common\$/\1/p" | sort -u | head -1)
[ -n "$ABI" ] || { log "no linux-headers-$UP+*-common package"; exit 1; }
KV=$ABI-amd64

key=$( { printf '%s\n' "${GUEST_PKGS[@]}" "$codename" "$SV" "$ABI";
         cat "$0" "$here/lib/apt-sources.sh" "$here/lib/private-apt.sh" "$here/lib/image-customize.sh" \
             "$here/cxmodel/cx.c" "$here/cxmodel/netdevsim-cx.patch"; } |
       sha256sum | cut -c1-16)
out="$CACHE/$key"
if [ -e "$out/rootfs.raw" ] && [ -e "$out/vmlinuz" ] && [ -e "$out/initrd.img" ]; then
    log "reusing $out ($codename, kernel $KV)"
    ln -sfn "$key" "$current"
    echo "$out"; exit 0
fi

t0=$(date +%s)
work=$(mktemp -d "$CACHE/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
log "building image $key: $codename, kernel $KV ($SV) in $work"

# 1. kernel, headers, kbuild, source -> netdevsim.ko (cached per kernel source version and
# ConnectX model sources: tests/vm/cxmodel is compiled into it, off unless cx_model=1).
cx_hash=$(cat "$here/cxmodel/cx.c" "$here/cxmodel/netdevsim-cx.patch" | sha256sum | cut -c1-12)
ko_cache="$CACHE/netdevsim-$SV-cx$cx_hash.ko"
if [ ! -s "$ko_cache" ]; then
    mkdir -p "$work/debs" "$work/x"
    (cd "$work/debs" && "${VM_APT[@]}" download "linux-headers-$KV" "linux-headers-$ABI-common" \
        "linux-kbuild-$ABI" "linux-source-6.12=$SV" >/dev/null 2>"$work/download.log") ||
        { cat "$work/download.log" >&2; exit 1; }
    for d in "$work"/debs/*.deb; do dpkg -x "$d" "$work/x"; done
    hdr="$work/x/usr/src/linux-headers-$KV"
    # The arch headers' Makefile includes the common headers by absolute path: point it here.
    sed -i "s#/usr/src/#$work/x/usr/src/#" "$hdr/Makefile"
    mkdir -p "$work/nsim"
    tar -xJf "$work/x/usr/src/linux-source-6.12.tar.xz" -C "$work/nsim" --strip-components=4 \
        linux-source-6.12/drivers/net/netdevsim
    patch -d "$work/nsim" -p1 -s < "$here/cxmodel/netdevsim-cx.patch" && cp "$here/cxmodel/cx.c" "$work/nsim/" ||
        { log "cxmodel: patch does not apply to linux-source-6.12 $SV"; exit 1; }
    # The kernel's own compiler (gcc-<N>, .kernelvariables). When the host lacks it (a trixie
    # kernel, gcc-14, on a bookworm host: gcc-12 rejects its flags), build in a minimal chroot of
    # the guest's release holding it; the sources sit at the same absolute path inside.
    cc=$(sed -n 's/^CC *=.*\(gcc-[0-9][0-9]*\).*/\1/p' "$hdr/.kernelvariables" | head -1)
    in_cc=()
    if [ -n "$cc" ] && ! command -v "$cc" >/dev/null; then
        mmdebstrap --variant=minbase --mode=root --format=directory \
            --aptopt='APT::Install-Recommends "false"' --include="$cc,make,libc6-dev,libelf1t64" \
            "$codename" "$work/cc" "deb $(vm_main_uri) $codename main" >"$work/cc.log" 2>&1 ||
            { tail -30 "$work/cc.log" >&2; log "no $cc build chroot for $codename"; exit 1; }
        mkdir -p "$work/cc$work"
        mv "$work/x" "$work/nsim" "$work/cc$work/"
        ln -s "cc$work/x" "$work/x"; ln -s "cc$work/nsim" "$work/nsim"
        in_cc=(chroot "$work/cc")
        log "netdevsim: $cc from a $codename chroot ($(( $(date +%s) - t0 )) s)"
    fi
    # Debian builds with gcc-<N> and no pahole here: BTF for modules off.
    "${in_cc[@]}" make -s -C "$hdr" M="$work/nsim" CONFIG_NETDEVSIM=m CONFIG_DEBUG_INFO_BTF_MODULES= modules \
        >"$work/nsim-build.log" 2>&1 || { tail -30 "$work/nsim-build.log" >&2; exit 1; }
    strip --strip-debug "$work/nsim/netdevsim.ko"
    cp "$work/nsim/netdevsim.ko" "$ko_cache.tmp" && mv "$ko_cache.tmp" "$ko_cache"
    rm -rf "$work/debs" "$work/x" "$work/nsim" "$work/cc"
    log "netdevsim built ($(( $(date +%s) - t0 )) s)"
fi

# 2. root filesystem.
main=$(vm_main_uri); sec=$(vm_security_uri)
export VFLAG_KV=$KV VFLAG_NETDEVSIM_KO=$ko_cache
mmdebstrap --variant=minbase --mode=root --format=directory \
    --aptopt='APT::Install-Recommends "false"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --include="$(IFS=,; echo "${GUEST_PKGS[*]}"),linux-image-$KV-unsigned" \
    --customize-hook="$here/lib/image-customize.sh \"\$1\"" \
    "$codename" "$work/root" \
    "deb $main $codename main" "deb $main $codename-updates main" "deb $sec $codename-security main" \
    >"$work/mmdebstrap.log" 2>&1 || { tail -40 "$work/mmdebstrap.log" >&2; exit 1; }
log "root tree ready ($(( $(date +%s) - t0 )) s, $(du -sm "$work/root" | cut -f1) MB)"

mkdir -p "$work/out"
cp "$work/root/boot/vmlinuz-$KV" "$work/out/vmlinuz"
cp "$work/root/boot/vflag-testbed-initrd.img" "$work/out/initrd.img"
echo "$KV" > "$work/out/kernel-release"
truncate -s 3G "$work/out/rootfs.raw"
mke2fs -q -t ext4 -L vflagroot -E root_owner=0:0 -d "$work/root" "$work/out/rootfs.raw"
{ echo "key=$key"; echo "codename=$codename"; echo "kernel=$KV"; echo "source=$SV";
  echo "packages=${GUEST_PKGS[*]}"; echo "built=$(date -u +%FT%TZ)"; } > "$work/out/manifest"
rm -rf "$work/root"
rm -rf "$out"; mv "$work/out" "$out"
ln -sfn "$key" "$current"
# Keep only the newest four images (several image variants may be in use at once). Only real
# image directories (16 hex digits) count: never a `current-*` link (rm through it would empty
# the image it points to) nor another build's work directory; and never the image a
# `current-<codename>` link names (another release's image is no older variant of this one).
keep=" $out "
for l in "$CACHE"/current "$CACHE"/current-*; do [ -L "$l" ] && keep="$keep$CACHE/$(readlink "$l") "; done
find "$CACHE" -mindepth 1 -maxdepth 1 -type d -regextype posix-extended -regex '.*/[0-9a-f]{16}' \
    -printf '%T@ %p\n' | sort -rn | cut -d' ' -f2- | tail -n +5 | while read -r old; do
    case "$keep" in *" $old "*) ;; *) rm -rf "$old" ;; esac
done
log "image $out ready in $(( $(date +%s) - t0 )) s"
echo "$out"
