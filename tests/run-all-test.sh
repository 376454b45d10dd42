#!/usr/bin/env bash
# tests/run-all.sh's background steps, with every step replaced by a stub (a copy of run-all.sh in
# a temporary tree; nothing is built or booted, a few seconds): the image build starts after
# host-setup (tests/vm/setup-host.sh done), in a session of its own at nice 19, overlaps
# packages, and the guest step starts only after it ended; a failed build is printed and the
# guest step still runs; a failed earlier step waits for the build. cargo-test runs in the
# background beside the guest step (a session of its own, nice 19), before ansible; its failure
# is the exit status but does not stop the guest step. VFLAG_CI_SERIAL=1 runs every step in the
# foreground in the old order.
# Prints PASS/FAIL lines; exits non-zero on failure. Run by tests/run_all_script.rs (cargo test).
set -uo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
t=$(mktemp -d /tmp/vflag-run-all-test.XXXXXX)
trap 'rm -rf "$t"' EXIT
fail=0
ok() { echo "PASS $*"; }
bad() { echo "FAIL $*"; fail=1; }
check() { # check "description" command...
	local what=$1
	shift
	if "$@"; then ok "$what"; else bad "$what"; fi
}

mkdir -p "$t/tree/tests/vm"
cp "$src/tests/run-all.sh" "$t/tree/tests/"
stub() { # stub PATH BODY
	{
		echo '#!/usr/bin/env bash'
		echo 'ev() { echo "$(date +%s.%N) $*" >>"$EVENTS"; }'
		# waitfor EVENT: until EVENT happened (30 s at most): packages and the image build wait
		# for each other, so that their overlap does not depend on the machine's speed.
		echo 'waitfor() { for _ in $(seq 300); do grep -q "^[0-9.]* $*" "$EVENTS" && return; sleep 0.1; done; ev timeout "$*"; }'
		echo "$2"
	} >"$t/tree/$1"
	chmod +x "$t/tree/$1"
}
stub tests/setup-host.sh 'ev host-setup sid=$(cut -d" " -f6 /proc/$$/stat)'
stub tests/vm/setup-host.sh 'ev vm-setup-host'
stub cargo 'ev cargo start sid=$(cut -d" " -f6 /proc/$$/stat) ni=$(cut -d" " -f19 /proc/$$/stat); ev cargo end; exit "${CARGO_RC:-0}"'
stub tests/packages.sh 'ev packages start; [ -n "${NO_WAIT:-}" ] || waitfor images start; ev packages end; exit "${PACKAGES_RC:-0}"'
stub tests/fuzz.sh 'ev fuzz'
stub tests/ansible.sh 'ev ansible'
stub tests/vm/run 'if [ "${1:-}" = --images-only ]; then
	ev images start sid=$(cut -d" " -f6 /proc/$$/stat) ni=$(cut -d" " -f19 /proc/$$/stat)
	grep -q vm-setup-host "$EVENTS" && ev images saw-setup-host
	echo "IMAGE-BUILD-OUTPUT"
	waitfor packages end
	sleep 1
	ev images end
	exit "${IMAGES_RC:-0}"
fi
ev guest start
echo "=== summary"; echo "1 passed, 0 failed"'

# run NAME [VAR=VALUE...]: run-all.sh in the stub tree; $t/NAME.{out,events,rc}
run() {
	local name=$1
	shift
	: >"$t/$name.events"
	# not the caller's VFLAG_CI_SERIAL (`VFLAG_CI_SERIAL=1 make test` runs this too)
	(cd "$t/tree" && env -u VFLAG_CI_SERIAL EVENTS="$t/$name.events" CARGO="$t/tree/cargo" "$@" bash tests/run-all.sh) \
		>"$t/$name.out" 2>&1
	echo $? >"$t/$name.rc"
}
at() { # at NAME EVENT...: the time of the first matching event
	local name=$1
	shift
	awk -v e="$*" 'index(substr($0, index($0, " ") + 1), e) == 1 { print $1; exit }' "$t/$name.events"
}
before() { # before NAME "EVENT A" "EVENT B": A happened, B happened, A first
	local a b
	a=$(at "$1" "$2")
	b=$(at "$1" "$3")
	[ -n "$a" ] && [ -n "$b" ] && awk -v a="$a" -v b="$b" 'BEGIN { exit !(a < b) }'
}
row() { grep -Eq "^$2 " "$t/$1.out" && grep -E "^$2 " "$t/$1.out" | grep -q -- "$3"; }

run ok
check "ok: run-all exits 0" test "$(cat "$t/ok.rc")" = 0
check "ok: the image build starts after tests/vm/setup-host.sh" grep -q "images saw-setup-host" "$t/ok.events"
check "ok: the image build starts before packages ends" before ok "images start" "packages end"
check "ok: neither waited in vain for the other" bash -c "! grep -q timeout '$t/ok.events'"
check "ok: the image build is still running when packages ends (it overlaps it)" before ok "packages end" "images end"
check "ok: the guest step starts after the image build ended" before ok "images end" "guest start"
check "ok: the image build runs at nice 19" grep -q "images start .* ni= *19" "$t/ok.events"
sid() { sed -n "s/.* $2 .*sid= *\([0-9]*\).*/\1/p" "$t/$1.events" | head -n1; }
check "ok: the image build runs in a session of its own (not run-all's)" \
	bash -c "[ -n '$(sid ok images)' ] && [ -n '$(sid ok host-setup)' ] && [ '$(sid ok images)' != '$(sid ok host-setup)' ]"
check "ok: its output is printed" grep -q IMAGE-BUILD-OUTPUT "$t/ok.out"
check "ok: the table has its row, marked background" row ok images "ok (background"
check "ok: the table has the guest step's wait for it" row ok '\(waited\)' "for the image builds"
check "ok: guest, fuzz and ansible still ran" \
	bash -c "grep -q 'guest start' '$t/ok.events' && grep -q fuzz '$t/ok.events' && grep -q ansible '$t/ok.events'"
check "ok: cargo-test starts after packages and the image build, with the guest step" \
	bash -c "$(declare -f at before); t='$t'; before ok 'packages end' 'cargo start' && before ok 'images end' 'cargo start'"
check "ok: cargo-test runs before ansible (which needs its debug vflag)" before ok "cargo end" "ansible"
check "ok: cargo-test runs at nice 19" grep -q "cargo start .* ni= *19" "$t/ok.events"
check "ok: cargo-test runs in a session of its own (not run-all's)" \
	bash -c "[ -n '$(sid ok cargo)' ] && [ '$(sid ok cargo)' != '$(sid ok host-setup)' ]"
check "ok: the table has cargo-test's row, marked background" row ok cargo-test "ok (background"

run imgfail IMAGES_RC=3
check "image build failed: the guest step still runs" grep -q "guest start" "$t/imgfail.events"
check "image build failed: its output is printed" grep -q IMAGE-BUILD-OUTPUT "$t/imgfail.out"
check "image build failed: its row says FAILED" row imgfail images "FAILED (exit 3"
check "image build failed: the guest step passed, so run-all exits 0" test "$(cat "$t/imgfail.rc")" = 0

run cargofail CARGO_RC=1
check "cargo-test failed: run-all exits 1" test "$(cat "$t/cargofail.rc")" = 1
check "cargo-test failed: the guest step still ran" grep -q "guest start" "$t/cargofail.events"
check "cargo-test failed: its row says FAILED" row cargofail cargo-test "FAILED (exit 1; background"

run pkgfail PACKAGES_RC=1
check "packages failed: run-all exits 1" test "$(cat "$t/pkgfail.rc")" = 1
check "packages failed: no guest step" bash -c "! grep -q 'guest start' '$t/pkgfail.events'"
check "packages failed: the image build is waited for, not killed" grep -q "images end" "$t/pkgfail.events"
check "packages failed: the image build's row is printed" row pkgfail images "ok (background"

run serial VFLAG_CI_SERIAL=1 NO_WAIT=1
check "VFLAG_CI_SERIAL=1: no background image build" bash -c "! grep -q 'images' '$t/serial.events'"
check "VFLAG_CI_SERIAL=1: the guest step runs" grep -q "guest start" "$t/serial.events"
check "VFLAG_CI_SERIAL=1: the old order (cargo-test, packages, fuzz, guest, ansible)" \
	bash -c "[ \"\$(awk '{print \$2}' '$t/serial.events' | grep -E '^(cargo|packages|fuzz|guest|ansible)$' | uniq | tr '\n' ' ')\" = 'cargo packages fuzz guest ansible ' ]"

if [ "$fail" != 0 ]; then
	for f in "$t"/*.out; do
		echo "--- $f"
		cat "$f"
	done
fi
exit "$fail"
