#!/usr/bin/env bash
# Offline test of contrib/ansible/ (the vflag role through the Kayobe example playbook), run
# against localhost with the role re-rooted into temporary directories (vflag_root): rendered
# config checked with the real `vflag plan`, invalid inventory refused without touching the
# file, /etc/sysconfig/sriov migration, retiring the mlnx-vflag units (systemctl --root),
# check mode, idempotence, and the degraded / warn-only / healthy paths of the verification.
#
# `vflag status` is partly STUBBED here: a wrapper answers `status --json` with canned JSON
# and exit codes to drive the role's branches; every other vflag command is the real binary.
# If the built vflag has a `status` command, one more run uses the real one.
# The package tasks run in check mode on this host (apt branch; needs the .deb from
# tests/packages.sh). Not covered: a real installation, the dnf branch, the reboot.
#
# Needs python3 with venv (Debian: python3-venv) and PyPI access for ansible-core; the venv is
# kept in $VFLAG_ANSIBLE_VENV (default /var/tmp/vflag-ansible-venv). PASS/FAIL lines; exits
# non-zero on failure.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

pass=0
fail=0
ok() { echo "PASS $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }
check() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else bad "$what"; fi
}
quiet() { "$@" >/dev/null 2>&1; }
die() {
	echo "FAIL $*"
	echo "ansible: $pass passed, $((fail + 1)) failed"
	exit 1
}

# --- ansible-core and vflag ------------------------------------------------------------------
venv=${VFLAG_ANSIBLE_VENV:-/var/tmp/vflag-ansible-venv}
if [ ! -x "$venv/bin/ansible-playbook" ]; then
	if ! python3 -m venv "$venv" 2>/dev/null; then
		rm -rf "$venv"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null ||
			die "python3 -m venv (apt-get install python3-venv failed)"
		python3 -m venv "$venv" || die "python3 -m venv"
	fi
	"$venv/bin/pip" install -q 'ansible-core>=2.15,<2.18' || die "pip install ansible-core"
fi
echo "ansible: $("$venv/bin/ansible-playbook" --version | head -n1)"
cargo build --locked --bin vflag -q || die "cargo build --bin vflag"
target=$(cargo metadata --no-deps --format-version 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
vflag=$target/debug/vflag
[ -x "$vflag" ] || die "no $vflag"

work=$(mktemp -d /var/tmp/vflag-ansible.XXXXXX)
trap 'rm -rf "$work"' EXIT
# The role's staging roots (mktemp) land here, where the checks can see them left over or not.
export TMPDIR=$work/tmp
mkdir -p "$TMPDIR"
export ANSIBLE_HOME=$work/ansible-home ANSIBLE_LOCAL_TEMP=$work/ansible-tmp ANSIBLE_NOCOLOR=1 \
	ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_FORCE_COLOR=0 ANSIBLE_DEPRECATION_WARNINGS=0

# The vflag the role runs: the real binary, except `status` when $work/stub/mode says so.
mkdir -p "$work/stub"
cat >"$work/vflag" <<EOF
#!/bin/sh
if [ "\$1" = status ] && [ "\$(cat '$work/stub/mode')" = stub ]; then
	cat '$work/stub/json'
	exit "\$(cat '$work/stub/rc')"
fi
exec '$vflag' "\$@"
EOF
chmod +x "$work/vflag"
stub() { # stub RC JSON | stub real
	if [ "$1" = real ]; then echo real >"$work/stub/mode"; return; fi
	echo stub >"$work/stub/mode"
	echo "$1" >"$work/stub/rc"
	echo "$2" >"$work/stub/json"
}

# A host root with the seed's set-up: /etc/sysconfig/sriov, the mlnx-vflag units enabled, the scripts.
seed_root() {
	local r=$1
	mkdir -p "$r/etc/sysconfig" "$r/etc/systemd/system" "$r/usr/local/bin"
	printf 'SRIOV_PFS="ens3f0 ens3f1"\nSRIOV_VF_COUNT=%s\nSRIOV_PF_CHANNELS=%s\nSRIOV_VF_CHANNELS=18\n' "${2:-8}" "${3:-63}" \
		>"$r/etc/sysconfig/sriov"
	for s in early final; do
		printf '#!/bin/bash\n# mlnx-vflag-%s (seed)\n' $s >"$r/usr/local/bin/mlnx-vflag-$s"
		chmod +x "$r/usr/local/bin/mlnx-vflag-$s"
		printf '[Unit]\nDescription=mlnx-vflag %s\n\n[Service]\nType=oneshot\nExecStart=/usr/local/bin/mlnx-vflag-%s\n\n[Install]\nWantedBy=multi-user.target\n' \
			$s $s >"$r/etc/systemd/system/mlnx-vflag-$s.service"
	done
	systemctl --root="$r" enable mlnx-vflag-early.service mlnx-vflag-final.service >/dev/null 2>&1
}

# play NAME VARS-FILE [ansible-playbook args...]: runs the Kayobe playbook, log in $work/NAME.log.
play() {
	local name=$1 vars=$2
	shift 2
	"$venv/bin/ansible-playbook" -i localhost, -c local "$repo/contrib/ansible/vflag.yml" \
		-e vflag_hosts=localhost -e ansible_become=false -e "ansible_python_interpreter=$venv/bin/python" \
		-e "@$vars" "$@" >"$work/$name.log" 2>&1
	local rc=$?
	echo "$rc" >"$work/$name.rc"
	return $rc
}
logged() { grep -q -- "$2" "$work/$1.log"; }
show_log() { echo "---- $1.log (tail)"; tail -n 25 "$work/$1.log"; echo "----"; }
recap_changed() { sed -n 's/.*localhost *: ok=[0-9]* *changed=\([0-9]*\).*/\1/p' "$work/$1.log" | tail -n1; }

# plan_json ROOT PYTHON-ASSERTIONS: `vflag plan --json` of a root, checked by Python (p = the JSON).
plan_is() {
	local root=$1 expr=$2
	VFLAG_ROOT=$root "$vflag" plan --json >"$work/plan.json" 2>"$work/plan.err"
	python3 - "$work/plan.json" "$expr" <<'EOF'
import json, sys
p = json.load(open(sys.argv[1]))
lag = p["plan"]["lags"][0] if p["plan"]["lags"] else {}
ok = eval("(" + sys.argv[2] + ")")
if not ok:
    print(json.dumps(p, indent=1)[:3000])
sys.exit(0 if ok else 1)
EOF
}

check "playbook syntax" "$venv/bin/ansible-playbook" --syntax-check -i localhost, "$repo/contrib/ansible/vflag.yml"

# --- A: inventory -> vflag.conf, legacy units retired, healthy status ------------------------
A=$work/rootA
seed_root "$A"
# A script of the seed that is only a dangling symlink (its target gone) is removed too.
mkdir -p "$A/usr/local/sbin"
ln -s /nonexistent/mlnx-vflag-final "$A/usr/local/sbin/mlnx-vflag-final"
check "seed root: mlnx-vflag-early/final enabled (systemctl --root)" test -L "$A/etc/systemd/system/multi-user.target.wants/mlnx-vflag-early.service" -a \
	-L "$A/etc/systemd/system/multi-user.target.wants/mlnx-vflag-final.service"
cat >"$work/a.yml" <<EOF
vflag_root: $A
vflag_command: $work/vflag
vflag_install: false
vflag_lags:
  - name: bond0
    pfs: [ens3f0, ens3f1]
    vfs: 8
    pf_channels: 63
    representor_channels: 18
    before: [docker.service]
    device_timeout: 45
vflag_ovs_hw_offload: true
EOF
stub 0 '{"version":1,"degraded":false,"findings":[{"check":"vfs","pf":"ens3f0","outcome":"pass","detail":"8 VFs","hint":null}]}'
play a "$work/a.yml" || show_log a
check "A: play succeeds" test "$(cat "$work/a.rc")" = 0
check "A: /etc/vflag/vflag.conf written" test -f "$A/etc/vflag/vflag.conf"
check "A: vflag plan reads it: ens3f0 ens3f1, 8 VFs, 63/18 channels, 45s, docker.service, hw-offload" \
	plan_is "$A" 'p["sources"] == ["/etc/vflag/vflag.conf"] and p["diagnostics"] == [] and lag["name"] == "bond0"
	 and lag["pfs"] == ["ens3f0", "ens3f1"] and lag["vfs"] == 8 and lag["pf_channels"] == 63
	 and lag["representor_channels"] == 18 and lag["device_timeout"] == 45
	 and lag["before"] == ["docker.service"] and lag["eswitch"] == "switchdev" and p["ovs"]["hw_offload"] is True'
check "A: VFLAG_ROOT=<root> vflag plan exits 0" quiet env VFLAG_ROOT="$A" "$vflag" plan
mkdir -p "$work/genA"
VFLAG_ROOT=$A "$target/debug/vflag-generator" "$work/genA" 2>/dev/null
check "A: hw-offload applies: the generator enables vflag-ovs-offload.path for that config" \
	test -L "$work/genA/multi-user.target.wants/vflag-ovs-offload.path"
check "A: mlnx-vflag units disabled" test ! -L "$A/etc/systemd/system/multi-user.target.wants/mlnx-vflag-early.service" -a \
	! -L "$A/etc/systemd/system/multi-user.target.wants/mlnx-vflag-final.service"
check "A: mlnx-vflag unit files and scripts removed" test ! -e "$A/etc/systemd/system/mlnx-vflag-early.service" -a \
	! -e "$A/usr/local/bin/mlnx-vflag-early" -a ! -e "$A/usr/local/bin/mlnx-vflag-final"
check "A: the dangling symlink /usr/local/sbin/mlnx-vflag-final removed" test ! -L "$A/usr/local/sbin/mlnx-vflag-final"
check "A: the validation's staging root is removed" test -z "$(ls -A "$TMPDIR")"
check "A: /etc/sysconfig/sriov left in place" test -f "$A/etc/sysconfig/sriov"
check "A: says the change applies at the next boot, and does not check VF-LAG yet" bash -c \
	"grep -q 'applied at the next boot' '$work/a.log' && ! grep -q 'TASK \\[vflag : vflag status --json\\]' '$work/a.log'"
play a2 "$work/a.yml" || show_log a2
check "A: second run succeeds with changed=0 (idempotent)" test "$(cat "$work/a2.rc"):$(recap_changed a2)" = "0:0"
check "A: second run checks VF-LAG and reports it working" logged a2 "VF-LAG is working on localhost"

# --- B: invalid inventory is refused, the working file is left alone ------------------------
sum=$(sha256sum <"$A/etc/vflag/vflag.conf")
sed 's/    vfs: 8/    vfs: 0/' "$work/a.yml" >"$work/b.yml"
play b "$work/b.yml" && show_log b
check "B: vfs: 0 fails the play" test "$(cat "$work/b.rc")" != 0
check "B: the failure shows vflag's diagnostic" logged b 'is not valid; expected a whole number'
check "B: the installed vflag.conf is unchanged" test "$(sha256sum <"$A/etc/vflag/vflag.conf")" = "$sum"
check "B: the staging root is removed after the refusal too" test -z "$(ls -A "$TMPDIR")"

# --- C: degraded host fails the play, or only warns -----------------------------------------
stub 1 '{"version":1,"degraded":true,"findings":[{"check":"vfs","pf":"ens3f0","outcome":"pass","detail":"8 VFs","hint":null},{"check":"lag","pf":"ens3f0","outcome":"fail","detail":"ens3f0 is not in a bond","hint":"check the bond"},{"check":"ovs","pf":null,"outcome":"warn","detail":"Open vSwitch not found","hint":"start it"}]}'
play c1 "$work/a.yml" && show_log c1
check "C: degraded status fails the play" test "$(cat "$work/c1.rc")" != 0
check "C: the failure names the host and the failed check" bash -c "grep -q 'VF-LAG is degraded on localhost' '$work/c1.log' && grep -q 'lag ens3f0: ens3f0 is not in a bond; fix: check the bond' '$work/c1.log'"
check "C: ... and only the failed one (not the warning, not the pass)" bash -c "! grep -q -e 'Open vSwitch not found' -e '8 VFs' '$work/c1.log'"
play c2 "$work/a.yml" -e vflag_status_warn_only=true || show_log c2
check "C: with vflag_status_warn_only the play succeeds" test "$(cat "$work/c2.rc")" = 0
check "C: ... and warns" logged c2 "WARNING: VF-LAG is degraded on localhost"
stub 2 ''
play c3 "$work/a.yml" -e vflag_status_warn_only=true && show_log c3
check "C: a vflag without a usable status fails even with warn-only" bash -c \
	"test \"\$(cat '$work/c3.rc')\" != 0 && grep -q 'did not report a status' '$work/c3.log'"
stub 3 ''
play c5 "$work/a.yml" -e vflag_status_warn_only=true && show_log c5
check "C: exit 3 (vflag could not find out) fails even with warn-only" bash -c \
	"test \"\$(cat '$work/c5.rc')\" != 0 && grep -q 'did not report a status (exit 3)' '$work/c5.log'"
stub 0 '{"version":2,"state":"fine"}'
play c6 "$work/a.yml" -e vflag_status_warn_only=true && show_log c6
check "C: a JSON version the role does not know fails clearly" bash -c \
	"test \"\$(cat '$work/c6.rc')\" != 0 && grep -q 'reported version 2; this role reads version 1' '$work/c6.log'"
stub real
if "$vflag" status --help >/dev/null 2>&1; then
	play c4 "$work/a.yml" && show_log c4
	check "C: real vflag status on a root without the NIC: play fails as degraded" bash -c \
		"test \"\$(cat '$work/c4.rc')\" != 0 && grep -q 'VF-LAG is degraded on localhost' '$work/c4.log'"
	check "C: ... naming the real failed checks from the real JSON" bash -c \
		"grep -q 'present ens3f0: network interface ens3f0 does not exist; fix: ' '$work/c4.log' && grep -q 'present ens3f1: network interface ens3f1 does not exist' '$work/c4.log'"
	play c7 "$work/a.yml" -e vflag_status_warn_only=true || show_log c7
	check "C: real vflag status with warn-only: play succeeds and warns with the real failed checks" bash -c \
		"test \"\$(cat '$work/c7.rc')\" = 0 && grep -q 'WARNING: VF-LAG is degraded on localhost' '$work/c7.log' && grep -q 'present ens3f0: network interface ens3f0 does not exist' '$work/c7.log'"
else
	echo "SKIP C: the built vflag has no 'status' command yet: real status not exercised"
	play c4 "$work/a.yml" && show_log c4
	check "C: without 'vflag status' the play fails clearly" logged c4 "did not report a status"
fi

# --- D: /etc/sysconfig/sriov migrated to vflag.conf ------------------------------------------
D=$work/rootD
seed_root "$D" 4 32
cat >"$work/d.yml" <<EOF
vflag_root: $D
vflag_command: $work/vflag
vflag_install: false
vflag_sysconfig_migrate: true
vflag_ovs_hw_offload: true
EOF
stub 0 '{"version":1,"degraded":false,"findings":[]}'
play d "$work/d.yml" || show_log d
check "D: migration play succeeds" test "$(cat "$work/d.rc")" = 0
check "D: vflag.conf has the values of /etc/sysconfig/sriov (4 VFs, 32/18 channels)" \
	plan_is "$D" 'p["sources"] == ["/etc/vflag/vflag.conf"] and lag["pfs"] == ["ens3f0", "ens3f1"]
	 and lag["vfs"] == 4 and lag["pf_channels"] == 32 and lag["representor_channels"] == 18 and p["diagnostics"] == []'
play d2 "$work/d.yml" || show_log d2
check "D: second run changed=0" test "$(cat "$work/d2.rc"):$(recap_changed d2)" = "0:0"
# Two NICs in SRIOV_PFS: only the devices tell which ports pair, so the role does not guess.
D3=$work/rootD3
seed_root "$D3"
sed -i 's/^SRIOV_PFS=.*/SRIOV_PFS="ens3f0 ens4f0 ens3f1 ens4f1"/' "$D3/etc/sysconfig/sriov"
sed "s|$D|$D3|" "$work/d.yml" >"$work/d3.yml"
play d3 "$work/d3.yml" && show_log d3
check "D: a SRIOV_PFS of two NICs is not migrated (clear refusal, no vflag.conf)" bash -c \
	"test \"\$(cat '$work/d3.rc')\" != 0 && grep -q 'more than one NIC' '$work/d3.log' && test ! -e '$D3/etc/vflag/vflag.conf'"

# --- E: no LAGs in the inventory, no migration: vflag keeps reading /etc/sysconfig/sriov ---
E=$work/rootE
seed_root "$E"
cat >"$work/e.yml" <<EOF
vflag_root: $E
vflag_command: $work/vflag
vflag_install: false
EOF
play e "$work/e.yml" || show_log e
check "E: play succeeds" test "$(cat "$work/e.rc")" = 0
check "E: no vflag.conf written" test ! -e "$E/etc/vflag/vflag.conf"
check "E: vflag plan still reads /etc/sysconfig/sriov" plan_is "$E" 'p["sources"] == ["/etc/sysconfig/sriov"] and lag["vfs"] == 8'

# --- F: check mode changes nothing but still validates ---------------------------------------
F=$work/rootF
seed_root "$F"
sed "s|$A|$F|" "$work/a.yml" >"$work/f.yml"
play f "$work/f.yml" --check || show_log f
check "F: --check succeeds" test "$(cat "$work/f.rc")" = 0
check "F: --check writes no vflag.conf and keeps the mlnx-vflag units" test ! -e "$F/etc/vflag/vflag.conf" -a \
	-L "$F/etc/systemd/system/multi-user.target.wants/mlnx-vflag-early.service" -a -e "$F/usr/local/bin/mlnx-vflag-early"
sed 's/    vfs: 8/    vfs: many/' "$work/f.yml" >"$work/f2.yml"
play f2 "$work/f2.yml" --check && show_log f2
check "F: --check still refuses an invalid inventory" bash -c "test \"\$(cat '$work/f2.rc')\" != 0 && grep -q 'is invalid' '$work/f2.log'"

# --- H: Prometheus textfile: the timer enabled, the metrics written where the variable says --
H=$work/rootH
seed_root "$H"
mkdir -p "$H/usr/lib/systemd/system"
cp units/vflag-prometheus.service units/vflag-prometheus.timer "$H/usr/lib/systemd/system/"
sed "s|$A|$H|" "$work/a.yml" >"$work/h.yml"
echo "vflag_textfile_directory: /srv/node-exporter/textfile" >>"$work/h.yml"
play h "$work/h.yml" || show_log h
check "H: play succeeds" test "$(cat "$work/h.rc")" = 0
check "H: vflag-prometheus.timer enabled" test -L "$H/etc/systemd/system/timers.target.wants/vflag-prometheus.timer"
dropin=$H/etc/systemd/system/vflag-prometheus.service.d/textfile.conf
check "H: the drop-in points the service at the directory" bash -c \
	"grep -qx 'Environment=VFLAG_TEXTFILE=/srv/node-exporter/textfile/vflag.prom' '$dropin' && grep -qx 'ReadWritePaths=/srv/node-exporter/textfile' '$dropin'"
check "H: the directory exists" test -d "$H/srv/node-exporter/textfile"
# What the timer's service runs, with the drop-in's value (re-rooted): the file is written.
file=$(sed -n 's/^Environment=VFLAG_TEXTFILE=//p' "$dropin")
cmd=$(sed -n 's/^ExecStart=//p' "$H/usr/lib/systemd/system/vflag-prometheus.service" | sed "s|\${VFLAG_TEXTFILE}|$H$file|; s|^/usr/bin/vflag|$vflag|")
VFLAG_ROOT=$H $cmd
hrc=$?
check "H: the service's command writes vflag.prom there (exit 0 although degraded)" bash -c \
	"test $hrc = 0 && grep -q '^vflag_degraded 1$' '$H$file'"
play h2 "$work/h.yml" || show_log h2
check "H: second run changed=0" test "$(cat "$work/h2.rc"):$(recap_changed h2)" = "0:0"

# --- G: the package tasks, in check mode on this (Debian) host -------------------------------
# Needs a .deb (tests/packages.sh builds it) and Debian's python3-apt for the system python.
# Check mode: apt reports what it would do; nothing is installed or written.
deb=$(ls -t "$target"/debian/vflag_*.deb 2>/dev/null | head -n1)
if [ -z "$deb" ]; then
	echo "SKIP G: no .deb in $target/debian (run tests/packages.sh first): package tasks not exercised"
elif dpkg -s vflag >/dev/null 2>&1; then
	echo "SKIP G: vflag is installed on this host: package tasks not exercised"
elif ! /usr/bin/python3 -c 'import apt' 2>/dev/null; then
	echo "SKIP G: /usr/bin/python3 has no apt module (Debian: python3-apt): package tasks not exercised"
else
	pkg=/var/tmp/vflag-ansible-test-$$.deb
	cp "$deb" "$pkg"
	had_etc=$(test -e /etc/vflag && echo yes || echo no)
	cat >"$work/g.yml" <<EOF
vflag_package: $pkg
vflag_lags:
  - name: bond0
    pfs: [ens3f0, ens3f1]
vflag_legacy_disable: false
vflag_verify: false
EOF
	play g "$work/g.yml" --check -e ansible_python_interpreter=/usr/bin/python3 || show_log g
	rm -f "$pkg"
	check "G: --check with a .deb on a Debian host succeeds" test "$(cat "$work/g.rc")" = 0
	check "G: apt would install the package (Debian branch taken)" \
		bash -c "grep -A1 -F 'TASK [vflag : Install vflag (Debian, Ubuntu)]' '$work/g.log' | grep -q '^changed: .localhost.'"
	check "G: the RedHat branch is skipped" \
		bash -c "grep -A1 -F 'TASK [vflag : Install vflag (Rocky, RHEL)]' '$work/g.log' | grep -q '^skipping'"
	check "G: nothing was installed" bash -c '! dpkg -s vflag >/dev/null 2>&1'
	if [ "$had_etc" = no ]; then
		check "G: /etc/vflag was not created" test ! -e /etc/vflag
	fi
fi

echo "ansible: $pass passed, $fail failed"
[ $fail = 0 ]
