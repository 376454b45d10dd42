#!/usr/bin/env python3
"""Run VM test bed scenarios: one fresh disk per boot, vflag installed into it, facts back over 9p.

Usage: runner.py --image [NAME=]DIR... --package-tree DIR [--host-tests DIR] [--work DIR] SCENARIO_FILE...

--image names the guest image of each release the scenarios use (`image =` in a scenario,
default bookworm; a bare DIR is bookworm). Each image used gets its own package-install boot
(reported as package-install for bookworm, package-install-<image> for the others), whose disk
is the base of that image's scenarios.

vflag gets into the guest as its users install it: the package-install scenario boots the bare
image with the .deb and the Ansible role (--package-tree, put on every `base = image` disk) and
runs the role in the guest, which installs the package with apt and writes vflag.conf. Its disk,
as the guest left it, is the base of every other scenario: `base = rollout` boots it as is,
`base = package` (the default) without the role's vflag.conf; the install boot's test bed files
(actions, units) are removed from both.

Outcome per scenario:
  PASS   every check passed
  FAIL   the guest booted and reported facts, and a check failed (never retried)
  INFRA  the guest did not report facts within the per-boot timeout twice (boot failure / hang)
"""

import argparse
import glob
import hashlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checks  # noqa: E402
from scenario import DEFAULT_IMAGE, IMAGES, ScenarioError, parse  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
VMDIR = os.path.dirname(HERE)
INSTALL = os.path.join(VMDIR, "scenarios", "package-install.scenario")
BASES = ("image", "package", "rollout")
# Files of the install boot that stay on the derived disks (the role and package, for re-runs).
KEEP_FROM_INSTALL = "/root/vflag-rollout/"
SYSTEMD_UNITS = "/usr/lib/systemd/system"
# Where a scenario's `host-tests` (test binaries built on the host) are in the guest.
HOST_TESTS_GUEST = "/root/vflag-rollout/tests"
# How long staging waits for tests/vm/run's background build of them (a cold debug build
# beside a guest takes a few minutes).
HOST_TESTS_WAIT = 1800

# What enabling a network stack means in the guest (the image has all of them disabled).
NETSTACKS = {
    "none": [],
    "NetworkManager": [
        ("multi-user.target.wants/NetworkManager.service", "NetworkManager.service"),
        ("network-online.target.wants/NetworkManager-wait-online.service", "NetworkManager-wait-online.service"),
        ("dbus-org.freedesktop.NetworkManager.service", "NetworkManager.service"),
        ("dbus-org.freedesktop.nm-dispatcher.service", "NetworkManager-dispatcher.service"),
    ],
    "systemd-networkd": [
        ("multi-user.target.wants/systemd-networkd.service", "systemd-networkd.service"),
        ("sockets.target.wants/systemd-networkd.socket", "systemd-networkd.socket"),
        ("network-online.target.wants/systemd-networkd-wait-online.service", "systemd-networkd-wait-online.service"),
        ("dbus-org.freedesktop.network1.service", "systemd-networkd.service"),
    ],
    # Debian ifupdown + ifenslave: networking.service (`ifup -a`), as `systemctl enable` links it
    "ifupdown": [
        ("multi-user.target.wants/networking.service", "networking.service"),
        ("network-online.target.wants/networking.service", "networking.service"),
    ],
}
NETSTACKS["networkd"] = NETSTACKS["systemd-networkd"]


def log(msg):
    print(msg, flush=True)


class Staging:
    """A directory tree that becomes '/' additions in the guest disk."""

    def __init__(self, root):
        self.root = root
        os.makedirs(root, exist_ok=True)

    def write(self, path, content, mode=0o644):
        p = os.path.join(self.root, path.lstrip("/"))
        os.makedirs(os.path.dirname(p), exist_ok=True)
        if os.path.lexists(p):
            os.unlink(p)
        with open(p, "w") as f:
            f.write(content)
        os.chmod(p, mode)

    def copy(self, path, src, mode=0o755):
        p = os.path.join(self.root, path.lstrip("/"))
        os.makedirs(os.path.dirname(p), exist_ok=True)
        shutil.copyfile(src, p)
        os.chmod(p, mode)

    def symlink(self, path, target):
        p = os.path.join(self.root, path.lstrip("/"))
        os.makedirs(os.path.dirname(p), exist_ok=True)
        if os.path.lexists(p):
            os.unlink(p)
        os.symlink(target, p)

    def enable(self, unit, wanted_by):
        # an instance (a@b.service) links to its template (a@.service), as systemctl enable does
        target = unit
        if "@" in unit and not unit.split("@", 1)[1].startswith("."):
            target = unit.split("@", 1)[0] + "@." + unit.rsplit(".", 1)[1]
        self.symlink(f"/etc/systemd/system/{wanted_by}.wants/{unit}", f"{SYSTEMD_UNITS}/{target}")

    def copytree(self, src):
        shutil.copytree(src, self.root, symlinks=True, dirs_exist_ok=True)


def bond_config(stack, spec, st):
    """bond = NAME mode=active-backup ports=a,b [address=192.0.2.1/24] -> the stack's own files."""
    w = spec.split()
    name, opts = w[0], dict(x.split("=", 1) for x in w[1:])
    mode = opts.get("mode", "active-backup")
    ports = opts.get("ports", "").split(",")
    addr = opts.get("address", "192.0.2.1/24")
    if stack == "NetworkManager":
        d = "/etc/NetworkManager/system-connections"
        st.write(f"{d}/{name}.nmconnection",
                 f"[connection]\nid={name}\ntype=bond\ninterface-name={name}\n\n"
                 f"[bond]\nmode={mode}\nmiimon=100\n\n"
                 f"[ipv4]\nmethod=manual\naddress1={addr}\n\n[ipv6]\nmethod=disabled\n", 0o600)
        for p in ports:
            st.write(f"{d}/{name}-port-{p}.nmconnection",
                     f"[connection]\nid={name}-port-{p}\ntype=ethernet\ninterface-name={p}\n"
                     f"master={name}\nslave-type=bond\n\n[ethernet]\n", 0o600)
    elif stack in ("networkd", "systemd-networkd"):
        d = "/etc/systemd/network"
        st.write(f"{d}/10-{name}.netdev",
                 f"[NetDev]\nName={name}\nKind=bond\n\n[Bond]\nMode={mode}\nMIIMonitorSec=100ms\n")
        st.write(f"{d}/20-{name}-ports.network",
                 f"[Match]\nName={' '.join(ports)}\n\n[Network]\nBond={name}\n")
        st.write(f"{d}/30-{name}.network",
                 f"[Match]\nName={name}\n\n[Network]\nAddress={addr}\nLinkLocalAddressing=no\n"
                 "IPv6AcceptRA=no\nConfigureWithoutCarrier=yes\n")
    elif stack == "ifupdown":
        # ifenslave's form for ports that may come later: the bond up with no port, each port
        # its own stanza (bond-master). `hotplug-ports=a,b`: those ports have no `auto` line, so
        # networking.service leaves them alone at boot (absent then); `ifup <port>` (vflag's
        # hand-over) enslaves them. Never allow-hotplug (see README: ifupdown).
        late = set(x for x in opts.get("hotplug-ports", "").split(",") if x)
        text = (f"auto {name}\niface {name} inet static\n    address {addr}\n    bond-slaves none\n"
                f"    bond-mode {mode}\n    bond-miimon 100\n")
        for p in ports:
            text += ("\n" if p in late else f"\nauto {p}\n") + f"iface {p} inet manual\n    bond-master {name}\n"
        st.write(f"/etc/network/interfaces.d/{name}", text)
    else:
        raise ScenarioError(f"bond = ... needs network-stack NetworkManager, networkd or ifupdown, not {stack!r}")


def host_test(host_tests, name):
    """The path of test binary NAME from tests/vm/run's background build (build-host-tests.sh),
    once it has ended; None (logged) when it failed or never ended: the scenario that runs it
    then fails its own check, nothing else does."""
    rc_file = host_tests + ".rc"
    deadline = time.monotonic() + HOST_TESTS_WAIT
    waited = False
    while not os.path.exists(rc_file) and time.monotonic() < deadline:
        if not waited:
            log(f"  waiting for the host test build (build-host-tests.sh, log {host_tests}.log)")
            waited = True
        time.sleep(1)
    try:
        with open(rc_file) as f:
            rc = f.read().strip()
    except FileNotFoundError:
        rc = "none after %d s" % HOST_TESTS_WAIT
    path = os.path.join(host_tests, name)
    if rc != "0" or not os.path.exists(path):
        log(f"  host test {name}: not built (exit {rc}; log {host_tests}.log)")
        return None
    return path


def build_staging(sc, package_tree, out, phase=False, host_tests=None):
    """The files a scenario adds to the disk. phase=True: a phase of a shared boot (its tree is
    copied onto / by the guest when the phase begins; the boot has the test bed itself)."""
    st = Staging(out)
    if sc.base == "image":
        if phase:
            raise ScenarioError("base = image cannot share a boot")
        st.copytree(package_tree)                  # the .deb and the Ansible role, not installed
    if not phase:
        st.copytree(os.path.join(VMDIR, "guest"))  # test bed units and scripts
    for inc in sc.words("include"):
        st.copytree(os.path.join(sc.dir, inc))
    for name in sc.words("host-tests"):
        path = host_test(host_tests, name) if host_tests else None
        if path:
            st.copy(f"{HOST_TESTS_GUEST}/{name}", path)
    devices = sc.lines("devices")
    st.write("/etc/vflag-testbed/devices", "".join(d + "\n" for d in devices))
    st.write("/etc/vflag-testbed/pfs", "".join(p + "\n" for p in sc.pfs))
    st.write("/etc/vflag-testbed/settle-timeout", f"{sc.settle}\n")
    st.write("/etc/vflag-testbed/action-timeout", f"{sc.action_timeout}\n")
    units = ["network-pre.target", "network.target", "network-online.target", "multi-user.target",
             "vflag-testbed-devices.service", "vflag-testbed-links.service", "vflag-testbed-probe-pre.service", "docker.service"]
    for p in sc.pfs:
        units += [f"vflag@{p}.service", f"vflag-rebind@{p}.service", f"sys-subsystem-net-devices-{p}.device",
                  f"selftest-stage@{p}.service", f"selftest-rebind@{p}.service"]
    units += sc.words("units")
    st.write("/etc/vflag-testbed/units", "".join(u + "\n" for u in units))
    if not phase:                          # a phase starts these itself (phases.sh)
        if devices:
            st.enable("vflag-testbed-devices.service", "sysinit.target")
            st.enable("vflag-testbed-links.service", "sysinit.target")
        st.enable("vflag-testbed-watch.service", "sysinit.target")
        st.enable("vflag-testbed-probe-pre.service", "sysinit.target")
        st.enable("vflag-testbed-collect.service", "sysinit.target")
    after = " ".join(f"vflag@{p}.service selftest-stage@{p}.service" for p in sc.pfs)
    if after:
        st.write("/etc/systemd/system/vflag-testbed-probe-pre.service.d/after-vflag.conf",
                 f"[Unit]\nAfter={after}\n")
    if sc.get("docker-standin", "yes") == "yes":
        # Stand-in for the container engine: ordered like Debian's docker.service, records its start.
        st.write("/etc/systemd/system/docker.service",
                 "[Unit]\nDescription=stand-in for docker.service (vflag test bed)\n"
                 "Wants=network-online.target\nAfter=network-online.target\n\n"
                 "[Service]\nType=oneshot\nRemainAfterExit=yes\n"
                 "ExecStart=/bin/sh -c 'echo docker stand-in started'\n\n"
                 "[Install]\nWantedBy=multi-user.target\n")
        st.symlink("/etc/systemd/system/multi-user.target.wants/docker.service", "/etc/systemd/system/docker.service")
    stack = sc.get("network-stack", "none")
    if stack not in NETSTACKS:
        raise ScenarioError(f"network-stack must be one of {', '.join(NETSTACKS)}")
    if phase and stack == "ifupdown":
        # phases.sh neither stops networking.service nor restores /etc/network
        raise ScenarioError("network-stack = ifupdown cannot share a boot")
    for link, unit in NETSTACKS[stack]:
        st.symlink(f"/etc/systemd/system/{link}", f"{SYSTEMD_UNITS}/{unit}")
    for b in sc.lines("bond"):
        bond_config(stack, b, st)
    for e in sc.words("enable"):           # unit:target
        unit, _, target = e.partition(":")
        st.enable(unit, target or "multi-user.target")
    for path, content, mode in sc.files:
        st.write(path, content, mode)
    for name, content in sc.actions:
        st.write(f"/etc/vflag-testbed/actions.d/{name}", content, 0o755)
    return out


def debugfs_script(root):
    """Commands that copy the tree at root into an ext4 image (dirs, files with modes, symlinks)."""
    cmds = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = "/" + os.path.relpath(dirpath, root).lstrip(".")
        rel = "/" if rel in ("/", "/.") else rel
        for d in sorted(dirnames):
            p = os.path.join(dirpath, d)
            g = os.path.join(rel, d)
            if os.path.islink(p):
                cmds += [f'rm "{g}"', f'symlink "{g}" "{os.readlink(p)}"']
            else:
                cmds.append(f'mkdir "{g}"')
        for fn in sorted(filenames):
            p = os.path.join(dirpath, fn)
            g = os.path.join(rel, fn)
            cmds.append(f'rm "{g}"')
            if os.path.islink(p):
                cmds.append(f'symlink "{g}" "{os.readlink(p)}"')
            else:
                cmds.append(f'write "{p}" "{g}"')
                cmds.append(f'sif "{g}" mode 0{0o100000 | (os.stat(p).st_mode & 0o7777):o}')
                cmds += [f'sif "{g}" uid 0', f'sif "{g}" gid 0']
    return cmds


def tree_files(root):
    """Guest paths of the files and links in a staging tree."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for n in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            out.append("/" + os.path.relpath(os.path.join(dirpath, n), root))
    return sorted(out)


def make_disk(base, staging, disk, logf, pre=()):
    """A copy of the base disk with the staging tree added; `pre`: debugfs commands run first."""
    subprocess.run(["cp", "--sparse=always", base, disk], check=True)
    cmds = list(pre) + debugfs_script(staging)
    script = disk + ".debugfs"
    with open(script, "w") as f:
        f.write("\n".join(cmds) + "\n")
    r = subprocess.run(["debugfs", "-w", "-f", script, disk], capture_output=True, text=True)
    with open(logf, "w") as f:
        f.write(r.stdout + r.stderr)
    # debugfs goes on after errors; the expected ones are "rm" of absent files and "mkdir" of
    # existing directories. Anything else is an infrastructure error.
    bad = [l for l in (r.stdout + r.stderr).splitlines()
           if l.strip() and not l.startswith(("debugfs ", "debugfs:")) and "File not found by ext2_lookup" not in l
           and "Ext2 directory already exists" not in l
           and not l.startswith("Allocated inode")]
    if r.returncode != 0 or bad:
        raise RuntimeError("debugfs: " + "; ".join(bad[:5]))


def qemu_cmd(sc, image, disk, results, console):
    machine = sc.get("machine", "pc")
    # quiet: serial output is slow under TCG; the journal (in the facts) has everything.
    # VFLAG_VM_VERBOSE=1 puts kernel and systemd status output on the console (for INFRA hunting).
    verbose = os.environ.get("VFLAG_VM_VERBOSE") == "1"
    cmdline = ("root=/dev/vda rw console=ttyS0,115200 panic=-1 mitigations=off printk.devkmsg=on "
               + ("" if verbose else "quiet loglevel=4 ")
               # modules udev would load for QEMU's emulated CPU/board that no scenario uses
               + "module_blacklist=kvm,kvm_amd,kvm_intel,ppdev,parport_pc,pcspkr,floppy "
               + "systemd.mask=serial-getty@ttyS0.service " + sc.get("cmdline"))
    cmd = ["nice", "-n", os.environ.get("VFLAG_VM_NICE", "0"), "qemu-system-x86_64", "-nodefaults",
           "-name", f"vflag-{sc.name}", "-machine", machine, "-accel", "tcg", "-cpu", "max",
           "-smp", sc.get("smp", "2"), "-m", sc.get("memory", "2048"),
           "-kernel", os.path.join(image, "vmlinuz"), "-initrd", os.path.join(image, "initrd.img"),
           "-append", cmdline.strip()]
    # the scenario's devices first: a vIOMMU (-device intel-iommu) must precede other PCI devices
    cmd += shlex.split(sc.get("qemu").replace("\n", " "))
    cmd += ["-drive", f"file={disk},format=raw,if=virtio,cache=unsafe",
           "-virtfs", f"local,path={results},mount_tag=vflagresults,security_model=none,id=results",
           "-nic", "none", "-display", "none", "-vga", "none", "-monitor", "none",
           "-serial", f"file:{console}", "-no-reboot"]
    return cmd


def prepare_disk(base, staging_root, adir):
    """The boot directory adir with a fresh disk (base = (disk, debugfs commands) plus the staging
    tree) and an empty results/. Returns (disk, results, console); raises RuntimeError."""
    os.makedirs(adir, exist_ok=True)
    results = os.path.join(adir, "results")
    os.makedirs(results, exist_ok=True)
    disk = os.path.join(adir, "disk.raw")
    try:
        make_disk(base[0], staging_root, disk, os.path.join(adir, "debugfs.log"), base[1])
    except subprocess.CalledProcessError as e:
        raise RuntimeError(str(e)) from e
    return disk, results, os.path.join(adir, "console.log")


def start_qemu(spec, image, adir, disk, results, console):
    """QEMU on the prepared disk (command in adir/qemu.cmd, output in adir/qemu.log).
    Returns (process, its log file)."""
    cmd = qemu_cmd(spec, image, disk, results, console)
    with open(os.path.join(adir, "qemu.cmd"), "w") as f:
        f.write(shlex.join(cmd) + "\n")
    qlog = open(os.path.join(adir, "qemu.log"), "w")
    return subprocess.Popen(cmd, stdout=qlog, stderr=subprocess.STDOUT, start_new_session=True), qlog


def boot(sc, image, base, staging_root, adir):
    """One boot. Returns ('ok'|'infra', detail, seconds). base = (disk, debugfs commands)."""
    t0 = time.monotonic()
    try:
        disk, results, console = prepare_disk(base, staging_root, adir)
    except RuntimeError as e:
        return "infra", f"disk preparation failed: {e}", time.monotonic() - t0
    p, qlog = start_qemu(sc, image, adir, disk, results, console)
    deadline = t0 + sc.timeout
    rc = None
    while time.monotonic() < deadline:
        rc = p.poll()
        if rc is not None:
            break
        time.sleep(0.5)
    took = time.monotonic() - t0
    if rc is None:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        qlog.close()
        done = os.path.exists(os.path.join(results, "DONE"))
        return ("ok" if done else "infra"), f"guest still running after {sc.timeout}s (killed)", took
    qlog.close()
    if not os.path.exists(os.path.join(results, "DONE")):
        return "infra", f"guest exited (qemu rc {rc}) without reporting facts", took
    if os.environ.get("VFLAG_VM_KEEP_DISK") != "1" and not sc.name.startswith("package-install"):
        os.unlink(disk)
    return "ok", f"qemu rc {rc}", took


def tail(path, n=40):
    try:
        with open(path, errors="replace") as f:
            return f.read().splitlines()[-n:]
    except FileNotFoundError:
        return ["(missing)"]


def evaluate(sc, adir, results=None):
    results = results or os.path.join(adir, "results")
    nfail = 0
    for lineno, text, words in [(0, "facts", ["facts"])] + sc.checks:
        ok, detail = checks.run_check(results, words)
        log(f"{'PASS' if ok else 'FAIL'} {sc.name}: {text} -- {detail}")
        nfail += not ok
    if nfail:
        log(f"  {sc.name}: {nfail} check(s) failed; facts in {results}")
        log(f"  console log: {adir}/console.log (tail follows)")
        for l in tail(os.path.join(adir, "console.log"), 30):
            log(f"    | {l}")
        if os.path.exists(os.path.join(results, "reset.log")):
            log(f"  phase set-up: {results}/reset.log")
        st = os.path.join(results, "boot", "status.txt")
        log(f"  systemctl status vflag* ({st}):")
        for l in tail(st, 30):
            log(f"    | {l}")
    return "FAIL" if nfail else "PASS"


def recheck(sc, work):
    if sc.share_boot:
        boots = sorted(glob.glob(os.path.join(work, "boot-" + sc.share_boot, "boot*")),
                       key=lambda d: int(d.rsplit("boot", 1)[1] or 0), reverse=True)
        for adir in boots:
            res = os.path.join(adir, "results", "phases", sc.name)
            if os.path.exists(os.path.join(res, "DONE")):
                log(f"  (re-checking the facts of {res})")
                return evaluate(sc, adir, res), 0
        log(f"INFRA {sc.name}: no facts from an earlier run under {work}")
        return "INFRA", 0
    for attempt in (2, 1):
        adir = os.path.join(work, sc.name, f"boot{attempt}")
        if os.path.exists(os.path.join(adir, "results", "DONE")):
            log(f"  (re-checking the facts of {adir})")
            return evaluate(sc, adir), 0
    log(f"INFRA {sc.name}: no facts from an earlier run under {work}")
    return "INFRA", 0


def run_scenario(sc, image, bases, package_tree, work, host_tests=None):
    """Returns (outcome, seconds, directory of the boot that reported facts)."""
    sdir = os.path.join(work, sc.name)
    shutil.rmtree(sdir, ignore_errors=True)
    if sc.base not in bases:
        log(f"FAIL {sc.name}: no {sc.base!r} base disk: {bases.get('why', 'package-install did not pass')}")
        return "FAIL", 0, None
    staging_root = build_staging(sc, package_tree, os.path.join(sdir, "root"), host_tests=host_tests)
    for attempt in (1, 2):
        adir = os.path.join(sdir, f"boot{attempt}")
        status, detail, took = boot(sc, image, bases[sc.base], staging_root, adir)
        log(f"  boot {attempt}: {status} in {took:.1f}s ({detail}); console {adir}/console.log")
        if status == "ok":
            break
        for l in tail(os.path.join(adir, "console.log"), 25):
            log(f"    | {l}")
    if status != "ok":
        log(f"INFRA {sc.name}: no facts from the guest in 2 boots; console: {adir}/console.log")
        return "INFRA", took, None
    return evaluate(sc, adir), took, adir


# ---- shared boots (README "Phases"): scenarios with the same `share-boot = NAME` are phases of
# one boot. The boot has no devices, network stack or vflag configuration; the guest
# (guest/usr/lib/vflag-testbed/phases.sh) runs each phase in turn: tear down what the previous one
# left, put the phase's files in place, daemon-reload, start the units as boot would, collect
# facts, run its actions. Each phase is reported as its own scenario with its own checks.

NEUTRAL_BOOT = 120      # seconds allowed for the shared boot to reach its first phase


class BootSpec:
    """The boot a group of phases runs in: the boot-level keys its phases all agree on."""

    def __init__(self, name, phases):
        self.name = "boot-" + name
        self.kv = {}
        for k in phases[0].BOOT_KEYS:
            vals = sorted({p.get(k) for p in phases if p.get(k)})
            if len(vals) > 1:
                raise ScenarioError(f"share-boot {name}: its phases differ in {k}: {' / '.join(vals)}")
            self.kv[k] = vals[0] if vals else ""
        self.base = self.kv.get("base") or "package"
        self.image = self.kv.get("image") or DEFAULT_IMAGE
        if self.base == "image":
            raise ScenarioError(f"share-boot {name}: base = image cannot share a boot")

    def get(self, key, default=""):
        return self.kv.get(key) or default


def build_shared_staging(phases, package_tree, out, host_tests=None):
    st = Staging(out)
    st.copytree(os.path.join(VMDIR, "guest"))
    st.write("/etc/vflag-testbed/settle-timeout", "110\n")
    st.write("/etc/vflag-testbed/pfs", "")
    st.enable("vflag-testbed-collect.service", "sysinit.target")
    for sc in phases:
        build_staging(sc, package_tree, os.path.join(out, "var/lib/vflag-testbed/phases", sc.name), phase=True,
                      host_tests=host_tests)
    st.write("/var/lib/vflag-testbed/phases.list", "".join(sc.name + "\n" for sc in phases))
    return out


def _read_us(path):
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (FileNotFoundError, ValueError):
        return None


def boot_shared(spec, phases, image, base, staging_root, adir):
    """One shared boot. Bounded per phase: the guest is killed when the running phase has not
    finished within its `timeout` (the first one gets NEUTRAL_BOOT more). Returns
    (names of the phases that reported facts, detail, seconds)."""
    t0 = time.monotonic()
    try:
        disk, results, console = prepare_disk(base, staging_root, adir)
    except RuntimeError as e:
        return [], f"disk preparation failed: {e}", time.monotonic() - t0
    p, qlog = start_qemu(spec, image, adir, disk, results, console)
    done = []
    deadline = t0 + NEUTRAL_BOOT + phases[0].timeout
    rc = None
    while True:
        rc = p.poll()
        for sc in phases[len(done):]:
            if not os.path.exists(os.path.join(results, "phases", sc.name, "DONE")):
                break
            done.append(sc.name)
            log(f"  phase {sc.name}: facts after {time.monotonic() - t0:.0f}s of the boot")
            if len(done) < len(phases):
                deadline = time.monotonic() + phases[len(done)].timeout
        if rc is not None:
            break
        if time.monotonic() > deadline:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            running = phases[len(done)].name if len(done) < len(phases) else "-"
            qlog.close()
            return done, f"phase {running} did not finish within its timeout (guest killed)", time.monotonic() - t0
        time.sleep(0.5)
    qlog.close()
    if os.environ.get("VFLAG_VM_KEEP_DISK") != "1" and len(done) == len(phases):
        os.unlink(disk)
    return done, f"qemu rc {rc}", time.monotonic() - t0


def run_shared(name, phases, image, bases, package_tree, work, host_tests=None):
    """The phases of one shared boot. A phase that never reports facts is retried once in a new
    boot (with the phases not yet run); the others are judged on their own facts.
    Returns [(scenario name, outcome, seconds)]."""
    try:
        spec = BootSpec(name, phases)
    except ScenarioError as e:
        log(f"FAIL {name}: bad shared boot: {e}")
        return [(sc.name, "FAIL", 0) for sc in phases]
    sdir = os.path.join(work, spec.name)
    shutil.rmtree(sdir, ignore_errors=True)
    log(f"=== shared boot {spec.name}: {len(phases)} phases: {' '.join(sc.name for sc in phases)}")
    if spec.base not in bases:
        for sc in phases:
            log(f"FAIL {sc.name}: no {spec.base!r} base disk: {bases.get('why', 'package-install did not pass')}")
        return [(sc.name, "FAIL", 0) for sc in phases]
    out, tries, remaining, attempt, stuck = {}, {}, list(phases), 0, 0
    while remaining:
        attempt += 1
        try:
            staging = build_shared_staging(remaining, package_tree, os.path.join(sdir, f"root{attempt}"), host_tests)
        except ScenarioError as e:
            log(f"FAIL {name}: bad scenario: {e}")
            for sc in remaining:
                out[sc.name] = ("FAIL", 0)
            break
        adir = os.path.join(sdir, f"boot{attempt}")
        done, detail, took = boot_shared(spec, remaining, image, bases[spec.base], staging, adir)
        first = _read_us(os.path.join(adir, "results", "phases", remaining[0].name, "begin_us"))
        log(f"  boot {attempt}: {len(done)} of {len(remaining)} phases in {took:.1f}s ({detail}); "
            f"first phase began at {first / 1e6 if first else '?'}s of the guest's uptime; console {adir}/console.log")
        for sc in remaining:
            if sc.name not in done:
                continue
            res = os.path.join(adir, "results", "phases", sc.name)
            b, d = _read_us(os.path.join(res, "begin_us")), _read_us(os.path.join(res, "DONE"))
            secs = (d - b) / 1e6 if b and d else 0
            log(f"=== {sc.name} (phase of {spec.name}): {sc.get('description').splitlines()[0] if sc.get('description') else ''}")
            out[sc.name] = (evaluate(sc, adir, res), secs)
        left = [sc for sc in remaining if sc.name not in done]
        stuck = 0 if done else stuck + 1
        if left:
            for l in tail(os.path.join(adir, "console.log"), 25):
                log(f"    | {l}")
            hung = left[0]
            tries[hung.name] = tries.get(hung.name, 0) + 1
            if tries[hung.name] >= 2 or stuck >= 2:
                for sc in (left if stuck >= 2 else [hung]):
                    log(f"INFRA {sc.name}: no facts from the guest in 2 boots; console: {adir}/console.log")
                    out[sc.name] = ("INFRA", 0)
                left = [sc for sc in left if sc.name not in out]
        remaining = left
    return [(sc.name,) + out[sc.name] for sc in phases]


def derived_bases(install, adir):
    """The package and rollout bases from the install boot's disk: its test bed files removed
    (and for `package` the role's vflag.conf), the package and the role kept."""
    disk = os.path.join(adir, "disk.raw")
    # The guest's ext4 journal may still hold the last writes: debugfs does not replay it, and
    # the next mount would replay it over what debugfs wrote. e2fsck replays it now, once.
    r = subprocess.run(["e2fsck", "-fy", disk], capture_output=True, text=True)
    if r.returncode >= 4:
        raise RuntimeError(f"e2fsck {disk}: rc {r.returncode}: {(r.stdout + r.stderr)[-300:]}")
    gone = [f for f in tree_files(os.path.join(os.path.dirname(adir), "root"))
            if not f.startswith(KEEP_FROM_INSTALL)]
    rm = [f'rm "{f}"' for f in gone]
    return {"rollout": (disk, rm), "package": (disk, rm + ['rm "/etc/vflag/vflag.conf"'])}


def install_scenario(image):
    """The package-install boot of an image: package-install (bookworm), package-install-<image>."""
    sc = parse(INSTALL)
    if image != DEFAULT_IMAGE:
        sc.name = f"package-install-{image}"
        sc.kv["image"] = image
    return sc


def install_inputs(a, sc, image_dir):
    """What the package-install disk depends on: the package tree, the image, the scenario."""
    h = hashlib.sha256(os.path.realpath(image_dir).encode())
    h.update(sc.name.encode())
    for path in [INSTALL] + sorted(os.path.join(d, f) for d, _, fs in os.walk(a.package_tree) for f in fs):
        h.update(path.encode())
        if path.endswith(".deb"):
            # what dpkg installs (control, names, modes, sizes, contents), not the files' mtimes,
            # which every `make deb` renews
            for cmd in (f"dpkg-deb -f {shlex.quote(path)}",
                        f"dpkg-deb -c {shlex.quote(path)} | awk '{{print $1, $2, $3, $6}}'",
                        f"dpkg-deb --fsys-tarfile {shlex.quote(path)} | tar -xOf -"):
                h.update(subprocess.run(cmd, shell=True, capture_output=True, check=True).stdout)
            continue
        with open(path, "rb") as f:
            h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()


def reusable_install(a, sc, image_dir):
    """The last package-install boot directory, when it passed on the same inputs (developer
    runs only: VFLAG_VM_REUSE_INSTALL=1; CI always installs)."""
    adir = os.path.join(a.work, sc.name, "boot1")
    try:
        with open(os.path.join(a.work, sc.name, "inputs.sha256")) as f:
            same = f.read().strip() == install_inputs(a, sc, image_dir)
    except FileNotFoundError:
        return None
    return adir if same and os.path.exists(os.path.join(adir, "disk.raw")) else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", required=True, action="append",
                    help="[NAME=]DIR: the image of release NAME (default bookworm); repeatable")
    ap.add_argument("--package-tree", required=True,
                    help="files for `base = image` disks: the .deb and the Ansible role")
    ap.add_argument("--host-tests",
                    help="where tests/vm/run's background build puts the `host-tests` binaries (DIR.rc: its exit status)")
    ap.add_argument("--work", default=os.environ.get("VFLAG_VM_WORK", "/var/tmp/vflag-vm"))
    ap.add_argument("--recheck", action="store_true",
                    help="no boot: evaluate the checks again on the facts of the last run in --work")
    ap.add_argument("scenarios", nargs="+")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    images = dict(i.split("=", 1) if "=" in i else (DEFAULT_IMAGE, i) for i in a.image)
    outcomes = []
    todo = []
    for path in a.scenarios:
        try:
            sc = parse(path)
            if sc.base not in BASES:
                raise ScenarioError(f"base must be one of {', '.join(BASES)}")
            if sc.image not in IMAGES:
                raise ScenarioError(f"image must be one of {', '.join(IMAGES)}")
            if sc.image not in images and not a.recheck:
                raise ScenarioError(f"no --image {sc.image}=DIR (tests/vm/run builds the images its scenarios name)")
            todo.append(sc)
        except (ScenarioError, OSError) as e:
            log(f"FAIL {os.path.basename(path)}: bad scenario file: {e}")
            outcomes.append((os.path.basename(path), "FAIL", 0))
    # Each image's install boot first when anything builds on it (once, even if also asked for
    # by name).
    if not a.recheck:
        used = []
        for sc in todo:
            if sc.base != "image" and sc.image not in used:
                used.append(sc.image)
        installs = [install_scenario(i) for i in sorted(used, key=lambda i: IMAGES.index(i))]
        names = {sc.name for sc in installs}
        todo = installs + [sc for sc in todo if sc.name not in names]
    # base disks per image: {"image": ..., "package": ..., "rollout": ..., "why": ...}
    bases = {i: {"image": (os.path.join(d, "rootfs.raw"), [])} for i, d in images.items()}
    # Phases of a shared boot run together, where the first of them is in the list.
    jobs, groups = [], {}
    for sc in todo:
        if sc.share_boot and not a.recheck:
            if sc.share_boot not in groups:
                groups[sc.share_boot] = []
                jobs.append(("shared", sc.share_boot, groups[sc.share_boot]))
            groups[sc.share_boot].append(sc)
        else:
            jobs.append(("boot", sc.name, sc))
    for kind, name, job in jobs:
        if kind == "boot" and job.name.startswith("package-install") and not a.recheck \
                and os.environ.get("VFLAG_VM_REUSE_INSTALL") == "1":
            reuse = reusable_install(a, job, images[job.image])
            if reuse:
                log(f"=== {job.name}: reusing {reuse} (VFLAG_VM_REUSE_INSTALL=1: same package tree and image)")
                bases[job.image].update(derived_bases(job, reuse))
                continue
        if kind == "shared":
            t0 = time.monotonic()
            img = job[0].image
            outcomes += run_shared(name, job, images.get(img), bases.get(img, {}), a.package_tree, a.work,
                                   a.host_tests)
            log(f"  shared boot {name}: {time.monotonic() - t0:.0f}s for {len(job)} phases")
            continue
        sc = job
        log(f"=== {sc.name}: {sc.get('description').splitlines()[0] if sc.get('description') else ''}")
        try:
            if a.recheck:
                (res, took), adir = recheck(sc, a.work), None
            else:
                res, took, adir = run_scenario(sc, images[sc.image], bases[sc.image], a.package_tree, a.work,
                                               a.host_tests)
        except ScenarioError as e:
            log(f"FAIL {sc.name}: bad scenario: {e}")
            res, took, adir = "FAIL", 0, None
        if sc.name.startswith("package-install") and adir:
            ib = bases[sc.image]
            if res == "PASS":
                try:
                    ib.update(derived_bases(sc, adir))
                    with open(os.path.join(a.work, sc.name, "inputs.sha256"), "w") as f:
                        f.write(install_inputs(a, sc, images[sc.image]) + "\n")
                except RuntimeError as e:
                    ib["why"] = str(e)
            else:
                ib["why"] = f"{sc.name} {res} (facts in {adir})"
        outcomes.append((sc.name, res, took))
    log("=== summary")
    shared = {sc.name: sc.share_boot for sc in todo if sc.share_boot}
    for name, res, took in outcomes:
        log(f"{res:5} {name} ({took:.0f}s " + (f"phase of boot-{shared[name]})" if name in shared and not a.recheck else "boot)"))
    npass = sum(1 for _, r, _ in outcomes if r == "PASS")
    nfail = len(outcomes) - npass
    ninfra = sum(1 for _, r, _ in outcomes if r == "INFRA")
    if ninfra:
        log(f"({ninfra} of the failures are INFRA: the guest never reported facts)")
    log(f"{npass} passed, {nfail} failed")
    return 1 if nfail else 0


if __name__ == "__main__":
    sys.exit(main())
