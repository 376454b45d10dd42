#!/bin/bash
# build-host-tests.sh SRC OUT: the test binaries the guest runs (scenario key `host-tests`), built
# in SRC's debug profile (the one the host tests share), stripped into OUT/<name>; then OUT.rc
# holds the exit status (the runner waits for it). tests/vm/run starts it in the background.
# tests/device_vm_netdevsim.rs changes the kernel's state, so it runs only in the guest (phase
# device-netdevsim); same Debian release, same libc.
src=$1 out=$2
mkdir -p "$out"
build() {
    local bin
    bin=$(cd "$src" && cargo test --locked --no-run --test device_vm_netdevsim --message-format=json |
        python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and "test" in m["target"]["kind"]: print(m["executable"])') &&
        [ -n "$bin" ] && strip -o "$out/device_vm_netdevsim" "$bin"
}
build
rc=$?
echo "$rc" > "$out.rc"
exit "$rc"
