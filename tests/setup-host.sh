#!/usr/bin/env bash
# Installs what the host-side tests need on a fresh Debian machine (as root). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v dbus-daemon >/dev/null || need+=(dbus-daemon)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v udevadm >/dev/null || need+=(udev)
# Man page lint and completion tests (tests/man_pages.rs).
command -v groff >/dev/null || need+=(groff-base)
command -v man >/dev/null || need+=(man-db)
command -v zsh >/dev/null || need+=(zsh)
if [ ${#need[@]} -gt 0 ]; then
	echo "setup-host: installing ${need[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
# A real ovsdb-server for the OVSDB tests (unpacked from Debian's packages, not installed).
if [ -x tests/setup-ovs.sh ]; then
	tests/setup-ovs.sh
fi
