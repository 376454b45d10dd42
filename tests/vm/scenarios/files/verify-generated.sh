#!/bin/bash
# verify-generated.sh: `systemd-analyze verify` of this boot's generated vflag units with the
# guest's own systemd, as tests/generator.rs does on the host: a --root holding the installed
# units (/usr/lib, /etc), this boot's generator output (/run/systemd/generator, where the
# generator's normal dir has the semantics of /etc/systemd/system) and /usr/bin/vflag.
# Fails when systemd-analyze fails or says anything about a vflag unit or drop-in; lines about
# other units are printed, not judged. A control unit with an unknown key must be reported
# (the output is really read).
set -u
echo "systemd: $(systemctl --version | head -n1)"
r=$(mktemp -d)
mkdir -p "$r/usr/lib/systemd" "$r/usr/bin" "$r/etc/systemd/system"
for d in bin sbin lib lib64; do ln -s "usr/$d" "$r/$d"; done
cp -a /usr/lib/systemd/system "$r/usr/lib/systemd/"
cp -a /etc/systemd/system/. "$r/etc/systemd/system/"
cp -a /run/systemd/generator/. "$r/etc/systemd/system/"
cp /usr/bin/vflag "$r/usr/bin/vflag"
units=$(find /run/systemd/generator -name 'vflag*' -printf '%f\n' | sed 's/\.d$//' |
    grep -E '\.(service|path)$' | sort -u | tr '\n' ' ')
[ -n "$units" ] || { echo "FAIL: no generated vflag units"; exit 1; }
echo "units: $units"
# shellcheck disable=SC2086
out=$(cd "$r" && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no --root="$r" $units 2>&1)
rc=$?
echo "verify rc=$rc"
[ -z "$out" ] || printf '%s\n' "$out" | sed 's/^/  | /'
printf '[Unit]\nDescription=control\n[Service]\nType=oneshot\nExecStart=/usr/bin/true\nNoSuchKeyVflag=1\n' \
    > "$r/etc/systemd/system/verify-control.service"
ctl=$(cd "$r" && systemd-analyze verify --man=no --root="$r" verify-control.service 2>&1)
if ! grep -q NoSuchKeyVflag <<<"$ctl"; then echo "FAIL: the control's unknown key was not reported: $ctl"; exit 1; fi
echo "control: reported ($(grep NoSuchKeyVflag <<<"$ctl" | head -n1))"
rm -rf "$r"
[ "$rc" = 0 ] || { echo "FAIL: systemd-analyze verify rc=$rc"; exit 1; }
if grep -i vflag <<<"$out"; then echo "FAIL: systemd-analyze verify complains about vflag's units"; exit 1; fi
echo OK
