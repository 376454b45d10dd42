#!/bin/bash
# mmdebstrap --customize-hook for the test bed image (run on the host, $1 = guest root, root mode).
# Only distribution-level settings live here; test bed scripts and units are copied into each
# scenario's disk by the runner, so editing them does not rebuild the image.
set -euo pipefail
R=$1
KV=${VFLAG_KV:?}
KO=${VFLAG_NETDEVSIM_KO:?}
in() { chroot "$R" "$@"; }

install -D -m 0644 "$KO" "$R/lib/modules/$KV/updates/netdevsim.ko"
in depmod -a "$KV"

# Small initramfs: only what mounts an ext4 root on virtio-blk.
cat > "$R/etc/initramfs-tools/conf.d/vflag-testbed.conf" <<'X'
MODULES=list
COMPRESS=zstd
X
printf '%s\n' virtio_pci virtio_blk ext4 > "$R/etc/initramfs-tools/modules"
in update-initramfs -c -k "$KV" >/dev/null 2>&1 || in update-initramfs -u -k "$KV" >/dev/null

# Fixed machine-id: no first-boot preset pass (it would re-enable units disabled below).
echo 5f1e4c0a7d2b4e6f8a9c0b1d2e3f4a5b > "$R/etc/machine-id"
echo vflag-guest > "$R/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 vflag-guest\n' > "$R/etc/hosts"
in passwd -d root >/dev/null

cat > "$R/etc/fstab" <<'X'
/dev/vda / ext4 rw,noatime 0 1
vflagresults /results 9p trans=virtio,version=9p2000.L,msize=262144,nofail,x-systemd.device-timeout=5s 0 0
X
mkdir -p "$R/results"

# journal in RAM, nothing dropped (the collector exports it).
mkdir -p "$R/etc/systemd/journald.conf.d"
cat > "$R/etc/systemd/journald.conf.d/vflag-testbed.conf" <<'X'
[Journal]
Storage=volatile
RateLimitBurst=0
ForwardToConsole=no
X

# NetworkManager must not DHCP every NIC it sees (testbed.md): only the scenario's keyfiles.
mkdir -p "$R/etc/NetworkManager/conf.d"
cat > "$R/etc/NetworkManager/conf.d/00-vflag-testbed.conf" <<'X'
[main]
no-auto-default=*
X

# bonding: no automatic bond0 (testbed.md).
echo 'options bonding max_bonds=0' > "$R/etc/modprobe.d/vflag-testbed.conf"

# Every network stack is off in the image; a scenario enables the one it tests.
for u in NetworkManager.service NetworkManager-wait-online.service NetworkManager-dispatcher.service \
         openvswitch-switch.service ovsdb-server.service ovs-vswitchd.service networking.service \
         systemd-networkd.service systemd-networkd-wait-online.service systemd-networkd.socket \
         systemd-resolved.service; do
    in systemctl disable "$u" >/dev/null 2>&1 || true
done
# Quiet, quick boots.
for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer \
         man-db.timer getty@tty1.service systemd-timesyncd.service; do
    in systemctl mask "$u" >/dev/null 2>&1 || true
done
in systemctl set-default multi-user.target >/dev/null

rm -rf "$R"/var/cache/apt/*.bin "$R"/var/lib/apt/lists/* "$R"/var/log/*.log
