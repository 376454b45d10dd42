#!/bin/bash
# mmdebstrap --customize-hook for the test bed image (run on the host, $1 = guest root, root mode).
# Only distribution-level settings live here; test bed scripts and units are copied into each
# scenario's disk by the runner, so editing them does not rebuild the image.
set -euo pipefail
R=$1
KV=${VFLAG_KV:?}
KO=${VFLAG_NETDEVSIM_KO:?}
chr() { chroot "$R" "$@"; }

install -D -m 0644 "$KO" "$R/lib/modules/$KV/updates/netdevsim.ko"
chr depmod -a "$KV"

# Small initramfs: only what mounts an ext4 root on virtio-blk.
cat > "$R/etc/initramfs-tools/conf.d/vflag-testbed.conf" <<'X'
MODULES=list
COMPRESS=zstd
X
printf '%s\n' virtio_pci virtio_blk ext4 > "$R/etc/initramfs-tools/modules"
chr update-initramfs -c -k "$KV" >/dev/null 2>&1 || chr update-initramfs -u -k "$KV" >/dev/null

# The initrd QEMU boots: busybox (static, from the host's busybox-static) + the modules that mount
# an ext4 root on virtio-blk, nothing else. Boots in a fraction of initramfs-tools' time under TCG.
fast=$(mktemp -d)
mkdir -p "$fast"/{bin,dev,proc,sys,newroot,lib/modules}
cp /bin/busybox "$fast/bin/busybox"
[ -n "$(chr modprobe -a --show-depends -S "$KV" virtio_blk ext4 | grep insmod)" ] || { echo "no modules for the initrd" >&2; exit 1; }
ln -s busybox "$fast/bin/sh"
mods=""
for m in $(chr modprobe -a --show-depends -S "$KV" crc32c_generic virtio_pci virtio_blk ext4 | awk '$1 == "insmod" { print $2 }'); do
    b=${m##*/}; b=${b%.xz}; b=${b%.zst}
    case "$m" in
        *.xz) xz -dc "$R$m" > "$fast/lib/modules/$b" ;;
        *.zst) zstd -qdc "$R$m" > "$fast/lib/modules/$b" ;;
        *) cp "$R$m" "$fast/lib/modules/$b" ;;
    esac
    case " $mods " in *" $b "*) ;; *) mods="$mods $b" ;; esac
done
cat > "$fast/init" <<X
#!/bin/sh
export PATH=/bin
busybox mount -t proc proc /proc
busybox mount -t sysfs sysfs /sys
busybox mount -t devtmpfs devtmpfs /dev
for m in $mods; do busybox insmod /lib/modules/\$m || echo "initrd: insmod \$m failed"; done
i=0
while [ ! -b /dev/vda ] && [ \$i -lt 300 ]; do busybox sleep 0.05; i=\$((i + 1)); done
# on failure: power off at once (QEMU runs with -no-reboot), the runner reports INFRA
busybox mount -t ext4 -o rw /dev/vda /newroot || { echo "initrd: cannot mount /dev/vda"; busybox reboot -f; }
busybox umount /proc /sys
busybox mount --move /dev /newroot/dev 2>/dev/null || busybox umount /dev
exec busybox switch_root /newroot /sbin/init
X
chmod 755 "$fast/init"
(cd "$fast" && find . | cpio -o -H newc --quiet | gzip -1) > "$R/boot/vflag-testbed-initrd.img"
rm -rf "$fast"

# Fixed machine-id: no first-boot preset pass (it would re-enable units disabled below).
echo 5f1e4c0a7d2b4e6f8a9c0b1d2e3f4a5b > "$R/etc/machine-id"
echo vflag-guest > "$R/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 vflag-guest\n' > "$R/etc/hosts"
chr passwd -d root >/dev/null

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
    chr systemctl disable "$u" >/dev/null 2>&1 || true
done
# Quiet, quick boots.
for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer \
         man-db.timer getty@tty1.service systemd-timesyncd.service; do
    chr systemctl mask "$u" >/dev/null 2>&1 || true
done
chr systemctl set-default multi-user.target >/dev/null

rm -rf "$R"/var/cache/apt/*.bin "$R"/var/lib/apt/lists/* "$R"/var/log/*.log
