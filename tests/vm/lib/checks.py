"""Host-side checks over the facts a guest wrote to its results directory.

Every check returns (ok, detail). A check whose facts are missing FAILS (it never passes by default).
Times: systemd's *TimestampMonotonic properties and the test bed's uptime stamps are both
microseconds of CLOCK_MONOTONIC (= CLOCK_BOOTTIME in a guest that never suspends); uptime stamps are
rounded down to 10 ms, so "X before enslave" comparisons are conservative.
"""

import json
import os
import re


class Facts:
    def __init__(self, results, phase="boot"):
        self.root = results
        self.dir = os.path.join(results, phase)
        self._units = None
        self._journal = None
        self._links = None
        # A phase of a shared boot (README "Phases") starts at start_us (CLOCK_MONOTONIC): its
        # journal is what was logged from then on, and "within N s" counts from then.
        try:
            with open(os.path.join(results, "start_us")) as f:
                self.start = int(f.read().strip() or 0)
        except (FileNotFoundError, ValueError):
            self.start = 0

    def path(self, *p):
        return os.path.join(self.dir, *p)

    def exists(self, *p):
        return os.path.exists(self.path(*p))

    def text(self, *p):
        try:
            with open(self.path(*p), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def json(self, *p):
        t = self.text(*p)
        if t is None:
            return None
        try:
            return json.loads(t)
        except ValueError:
            return None

    def unit(self, name):
        """systemctl show properties of a unit (one units.show file, blocks with Id=)."""
        if self._units is None:
            self._units = {}
            t = self.text("units.show") or ""
            for block in t.split("\n\n"):
                props = {}
                for line in block.splitlines():
                    if "=" in line:
                        k, v = line.split("=", 1)
                        props[k] = v
                if "Id" in props:
                    self._units[props["Id"]] = props
                    for n in props.get("Names", "").split():
                        self._units.setdefault(n, props)
        return self._units.get(name)

    def kv_lines(self, *p):
        """key=value words per line -> list of dicts (pfs.txt, probe-* files)."""
        t = self.text(*p)
        if t is None:
            return None
        out = []
        for line in t.splitlines():
            d = {}
            for w in line.split():
                if "=" in w:
                    k, v = w.split("=", 1)
                    d[k] = v
            if d:
                out.append(d)
        return out

    def probe(self, name):
        rows = self.kv_lines("probe-" + name)
        if rows is None:
            return None, {}
        at = None
        pfs = {}
        for r in rows:
            if "at_us" in r:
                at = int(r["at_us"])
            elif "pf" in r:
                pfs[r["pf"]] = r
        return at, pfs

    def links(self):
        if self._links is None:
            d = self.json("ip-link.json")
            self._links = {l["ifname"]: l for l in d} if isinstance(d, list) else {}
        return self._links

    def sysfs(self, ifname):
        """What the checks need about a netdev, from `ip -j -d link` (rtnetlink = sysfs values)."""
        l = self.links().get(ifname)
        if l is None:
            return None
        return {
            "address": l.get("address", ""), "master": l.get("master", ""),
            "phys_switch_id": l.get("phys_switch_id", ""), "phys_port_name": l.get("phys_port_name", ""),
            "device": l.get("parentdev", ""),
            "devlink": f"{l['parentbus']}/{l['parentdev']}" if l.get("parentbus") else "",
        }

    def netdevs(self):
        return sorted(self.links())

    def representors(self, pf):
        s = self.sysfs(pf)
        if not s or not s.get("phys_switch_id"):
            return []
        sw = s["phys_switch_id"]
        reps = []
        for n in self.netdevs():
            o = self.sysfs(n)
            if o.get("phys_switch_id") == sw and re.fullmatch(r"(c\d+)?pf\d+vf\d+", o.get("phys_port_name", "")):
                reps.append(n)
        return reps

    def journal(self):
        if self._journal is None:
            self._journal = []
            t = self.text("journal.json")
            for line in (t or "").splitlines():
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                # a kernel record by the kernel's clock, the rest by journald's receipt
                ts = e.get("_SOURCE_MONOTONIC_TIMESTAMP") or e.get("__MONOTONIC_TIMESTAMP") or 0
                if self.start and int(ts) < self.start:
                    continue
                self._journal.append(e)
        return self._journal


def _ts(props, key):
    try:
        return int(props.get(key, "0"))
    except ValueError:
        return 0


def _start_of(props, name):
    """When a unit started: targets when reached, other units when they left 'inactive'."""
    if name.endswith(".target"):
        return _ts(props, "ActiveEnterTimestampMonotonic")
    return _ts(props, "InactiveExitTimestampMonotonic")


def _finish_of(props, name):
    """When a unit finished starting: reached 'active' (oneshot: its ExecStart= returned)."""
    return _ts(props, "ActiveEnterTimestampMonotonic")


def _fmt(us):
    return f"{us / 1e6:.3f}s"


def _stale(f, **times):
    """In a phase: a unit time from before the phase began is an earlier phase's (never passes)."""
    old = [f"{k} at {_fmt(t)}" for k, t in times.items() if t and t < f.start]
    return f"before this phase began ({_fmt(f.start)}): " + ", ".join(old) if old else None


def _targets(facts, spec):
    """'eni10np1' -> [eni10np1]; 'reps-of:eni10np1' -> its representors."""
    if spec.startswith("reps-of:"):
        return facts.representors(spec[len("reps-of:"):]), f"representors of {spec[8:]}"
    return [spec], spec


CHECKS = {}


def check(name, usage):
    def deco(fn):
        fn.usage = usage
        CHECKS[name] = fn
        return fn
    return deco


@check("facts", "facts  -- the guest wrote its facts (always implied)")
def c_facts(f):
    ok = f.exists("units.show") and bool(f.links())
    return ok, "units.show and ip-link.json present" if ok else f"facts missing under {f.dir}"


@check("system-state", "system-state STATE...  -- systemctl is-system-running after settling")
def c_state(f, *states):
    s = (f.text("system-state") or "").strip()
    return s in states, f"is-system-running = {s!r}"


@check("generated", "generated UNIT...  -- the generator emitted these units (/run/systemd/generator*)")
def c_generated(f, *units):
    g = f.text("..", "boot", "generator.txt") or ""
    missing = [u for u in units if not re.search(r"(^|[\s/])" + re.escape(u) + r"($|\s| ->)", g, re.M)]
    return not missing, ("missing: " + " ".join(missing)) if missing else "all listed in /run/systemd/generator*"


@check("unit-active", "unit-active UNIT...  -- ActiveState=active, Result=success")
def c_active(f, *units):
    bad = []
    for u in units:
        p = f.unit(u)
        if p is None:
            bad.append(f"{u}: no facts")
        elif p.get("ActiveState") != "active" or p.get("Result", "success") != "success":
            bad.append(f"{u}: {p.get('LoadState')}/{p.get('ActiveState')}/{p.get('SubState')} result={p.get('Result')}")
    return not bad, "; ".join(bad) if bad else "active"


@check("unit-failed", "unit-failed UNIT...  -- ActiveState=failed (fault scenarios)")
def c_failed(f, *units):
    bad = [u for u in units if (f.unit(u) or {}).get("ActiveState") != "failed"]
    return not bad, ("not failed: " + " ".join(bad)) if bad else "failed as expected"


@check("status-text", "status-text UNIT REGEX  -- sd_notify STATUS= (StatusText) matches")
def c_status(f, unit, rx):
    p = f.unit(unit)
    if p is None:
        return False, f"{unit}: no facts"
    st = p.get("StatusText", "")
    return re.search(rx, st) is not None, f"StatusText={st!r}"


@check("finished-before", "finished-before A B  -- A reached active before B started (targets: reached)")
def c_before(f, a, b):
    pa, pb = f.unit(a), f.unit(b)
    if pa is None or pb is None:
        return False, f"no facts for {a if pa is None else b}"
    ta, tb = _finish_of(pa, a), _start_of(pb, b)
    if not ta:
        return False, f"{a} never became active ({pa.get('ActiveState')}/{pa.get('Result')})"
    if not tb:
        return False, f"{b} never started ({pb.get('ActiveState')})"
    if _stale(f, **{a: ta, b: tb}):
        return False, _stale(f, **{a: ta, b: tb})
    return ta <= tb, f"{a} active at {_fmt(ta)}, {b} at {_fmt(tb)}"


@check("started-after", "started-after A B  -- A started after B finished starting (targets: reached)")
def c_after(f, a, b):
    pa, pb = f.unit(a), f.unit(b)
    if pa is None or pb is None:
        return False, f"no facts for {a if pa is None else b}"
    ta = _ts(pa, "InactiveExitTimestampMonotonic")
    tb = _ts(pb, "ActiveEnterTimestampMonotonic")
    if not ta:
        return False, f"{a} never started"
    if not tb:
        return False, f"{b} never became active"
    if _stale(f, **{a: ta, b: tb}):
        return False, _stale(f, **{a: ta, b: tb})
    return ta >= tb, f"{a} started at {_fmt(ta)}, {b} active at {_fmt(tb)}"


@check("eswitch", "eswitch PF MODE  -- devlink eswitch mode of the PF's devlink instance")
def c_eswitch(f, pf, mode):
    s = f.sysfs(pf)
    if s is None:
        return False, f"{pf} does not exist"
    h = s.get("devlink", "")
    devs, junk = {}, []
    for line in (f.text("devlink-eswitch.jsonl") or "").splitlines():
        try:
            devs.update(json.loads(line).get("dev", {}))
        except (ValueError, AttributeError):
            if line.strip():
                junk.append(line.strip())
    if h not in devs:
        return False, f"{pf}: no eswitch facts for {h!r} ({'; '.join(junk)[:160] or 'devlink listed no such instance'})"
    got = devs[h].get("mode")
    return got == mode, f"{h}: mode {got}"


@check("numvfs", "numvfs PF N  -- sriov_numvfs")
def c_numvfs(f, pf, n):
    rows = {r.get("pf"): r for r in (f.kv_lines("pfs.txt") or [])}
    got = rows.get(pf, {}).get("numvfs")
    return got == n, f"{pf}: sriov_numvfs={got}"


@check("representors", "representors PF N  -- netdevs with the PF's phys_switch_id and phys_port_name pfXvfY")
def c_reps(f, pf, n):
    reps = f.representors(pf)
    return len(reps) == int(n), f"{pf}: {len(reps)} representors ({' '.join(reps[:4])}{' ...' if len(reps) > 4 else ''})"


@check("feature", "feature IF|reps-of:PF NAME on|off  -- ethtool -k")
def c_feature(f, spec, feat, want):
    ifs, label = _targets(f, spec)
    if not ifs:
        return False, f"{label}: no interfaces"
    bad = []
    for i in ifs:
        t = f.text("net", i + ".features") or ""
        m = re.search(r"^\s*" + re.escape(feat) + r":\s*(\S+)", t, re.M)
        got = m.group(1) if m else None
        if got != want:
            bad.append(f"{i}={got}")
    return not bad, (f"{label}: " + ", ".join(bad)) if bad else f"{label} ({len(ifs)}): {feat} {want}"


@check("channels", "channels IF|reps-of:PF combined N  -- ethtool -l current setting")
def c_channels(f, spec, kind, n):
    ifs, label = _targets(f, spec)
    if not ifs:
        return False, f"{label}: no interfaces"
    bad = []
    for i in ifs:
        t = f.text("net", i + ".channels") or ""
        cur = t.split("Current hardware settings:", 1)
        m = re.search(r"^" + kind.capitalize() + r":\s*(\S+)", cur[1], re.M | re.I) if len(cur) == 2 else None
        got = m.group(1) if m else None
        if got != n:
            bad.append(f"{i}={got}")
    return not bad, (f"{label}: " + ", ".join(bad)) if bad else f"{label} ({len(ifs)}): {kind} {n}"


@check("enslaved", "enslaved BOND PF...  -- the PFs' master at the end of boot")
def c_enslaved(f, bond, *pfs):
    bad = [f"{p} master={(f.sysfs(p) or {}).get('master')!r}" for p in pfs if (f.sysfs(p) or {}).get("master") != bond]
    return not bad, "; ".join(bad) if bad else f"{' '.join(pfs)} in {bond}"


def _kernel_enslaves(f, pfs):
    """Kernel log 'bondX: (slave PF): Enslaving ...' -> {pf: kernel timestamp in us}."""
    out = {}
    for e in f.journal():
        m = e.get("MESSAGE")
        if e.get("_TRANSPORT") != "kernel" or not isinstance(m, str):
            continue
        g = re.search(r"\(slave (\S+)\): Enslaving", m)
        if g and g.group(1) in pfs and g.group(1) not in out:
            out[g.group(1)] = int(e.get("_SOURCE_MONOTONIC_TIMESTAMP") or e.get("__MONOTONIC_TIMESTAMP") or 0)
    return out


def _state_ok(rows, pfs, want, probe):
    bad = []
    for p in pfs:
        r = rows.get(p)
        if r is None or r.get("present") != "yes":
            bad.append(f"{probe}: {p} not present")
            continue
        for k, v in want.items():
            if k == "vfdrivers":
                vals = {x.rsplit(":", 1)[1] for x in r.get("vfs", "none").split(",") if ":" in x}
                if vals != {v}:
                    bad.append(f"{probe}: {p} VF drivers {sorted(vals) or 'no VFs'}, want {v}")
            elif r.get(k) != v:
                bad.append(f"{probe}: {p} {k}={r.get(k)}, want {v}")
    return bad


@check("ready-before-enslave",
       "ready-before-enslave PREFIX PF...  -- every PREFIX@PF.service became active (its ExecStart "
       "returned 0) before the kernel logged the first of these PFs being enslaved")
def c_ready(f, prefix, *pfs):
    odd = [a for a in (prefix,) + pfs if "=" in a or a.endswith((".service", ".target"))]
    if odd or not pfs:
        return False, f"bad arguments {odd or 'no PFs'}; usage: {c_ready.usage}"
    # Kernel log timestamps (printk clock) against systemd's CLOCK_MONOTONIC: in these guests the
    # printk time of a kernel record never ran ahead of journald's monotonic receipt of it, so the
    # two are comparable to well under the seconds that separate these events.
    ens = _kernel_enslaves(f, pfs)
    bad = [f"kernel never logged enslaving {p}" for p in pfs if p not in ens]
    if not ens:
        return False, "; ".join(bad)
    first_pf, first = min(ens.items(), key=lambda kv: kv[1])
    notes = [f"first enslave {first_pf} at {_fmt(first)} (kernel clock)"]
    for p in pfs:
        u = f"{prefix}@{p}.service"
        t = _finish_of(f.unit(u) or {}, u)
        if not t:
            bad.append(f"{u} never became active")
        elif t >= first:
            bad.append(f"{u} active at {_fmt(t)}, NOT before the first enslave ({first_pf} at {_fmt(first)})")
        else:
            notes.append(f"{u} active at {_fmt(t)}")
    # informative: the snapshot the pre-network probe took (ordered After= the stage units)
    at, rows = f.probe("pre-network")
    if at is not None:
        notes.append("pre-network snapshot: " + ", ".join(
            f"{p} numvfs={rows.get(p, {}).get('numvfs')} eswitch={rows.get(p, {}).get('eswitch')}" for p in pfs))
    return not bad, "; ".join(bad + notes[:1]) if bad else "; ".join(notes)


@check("state-at-first-enslave",
       "state-at-first-enslave PF... key=value...  -- the watcher's snapshot, taken as soon as it saw the "
       "first PF gain a master (rtnetlink event), shows key=value (numvfs, eswitch, reps, vfdrivers) for "
       "every PF")
def c_first_enslave(f, *args):
    pfs = [a for a in args if "=" not in a]
    want = dict(a.split("=", 1) for a in args if "=" in a)
    at, rows = f.probe("first-enslave")
    if at is None:
        return False, "the watcher took no snapshot (no PF seen enslaved)"
    bad = _state_ok(rows, pfs, want, "first-enslave")
    return not bad, "; ".join(bad) if bad else f"snapshot at {_fmt(at)}: " + " ".join(f"{k}={v}" for k, v in want.items())


@check("vfs-bound", "vfs-bound PF DRIVER  -- every VF of PF bound to DRIVER, its netdev MAC = the PF's vf MAC")
def c_vfs_bound(f, pf, driver):
    rows = {r.get("pf"): r for r in (f.kv_lines("pfs.txt") or [])}
    r = rows.get(pf)
    if not r or r.get("vfs", "none") == "none":
        return False, f"{pf}: no VFs"
    vfs = [x.rsplit(":", 1) for x in r["vfs"].split(",")]
    bad = [f"{a}={d}" for a, d in vfs if d != driver]
    # MACs: the PF's vfinfo_list vs the VF netdevs (by PCI address).
    links = f.json("ip-link.json") or []
    pfl = next((l for l in links if l.get("ifname") == pf), {})
    pf_macs = [v.get("address") for v in pfl.get("vfinfo_list", [])]
    by_pci = {}
    for n in f.netdevs():
        s = f.sysfs(n)
        by_pci[s.get("device", "")] = (n, s.get("address"))
    names, unset = [], 0
    for i, (addr, _) in enumerate(vfs):
        if addr not in by_pci:
            bad.append(f"{addr}: no netdev")
            continue
        n, mac = by_pci[addr]
        names.append(f"{n}={mac}")
        if re.fullmatch(r"eth\d+", n):
            bad.append(f"{addr}: netdev {n} has no udev name")
        pm = pf_macs[i] if i < len(pf_macs) else None
        if pm in (None, "00:00:00:00:00:00"):
            unset += 1          # the PF assigns no MAC: the VF driver picks one, nothing to compare
        elif pm != mac:
            bad.append(f"{n}: MAC {mac} != PF's vf {i} MAC {pm}")
    note = f" (MAC not compared for {unset} VF(s): the PF reports none assigned)" if unset else ""
    return not bad, "; ".join(bad) if bad else f"{pf}: {len(vfs)} VFs on {driver}: {' '.join(names)}{note}"


@check("journal", "journal UNIT|- REGEX  -- some journal message (of UNIT, or any with -) matches")
def c_journal(f, unit, rx):
    r = re.compile(rx)
    for e in f.journal():
        if unit != "-" and e.get("_SYSTEMD_UNIT") != unit and e.get("UNIT") != unit:
            continue
        m = e.get("MESSAGE")
        if isinstance(m, str) and r.search(m):
            return True, f"found: {m[:160]}"
    return False, f"no message matching {rx!r}" + ("" if unit == "-" else f" from {unit}")


@check("no-journal", "no-journal UNIT|- REGEX  -- no journal message matches")
def c_nojournal(f, unit, rx):
    ok, d = c_journal(f, unit, rx)
    return not ok, d.replace("found", "unexpected") if ok else f"none matching {rx!r}"


@check("action-rc", "action-rc NAME RC  -- a guest [action] exited with RC")
def c_action(f, name, rc):
    got = (f.text("..", "actions", name + ".rc") or "").strip()
    return got == rc, f"{name} rc={got or 'missing'}: " + (f.text("..", "actions", name + ".out") or "")[-200:].strip()



# ---- checks added for the fault scenarios (issue 7) ----

@check("not-generated", "not-generated UNIT...  -- the generator emitted none of these units (generator.txt must exist)")
def c_not_generated(f, *units):
    g = f.text("..", "boot", "generator.txt")
    if g is None:
        return False, "no generator.txt"
    if "### ls -lR /run/systemd/generator" not in g:
        return False, "generator.txt has no listing"
    found = [u for u in units if re.search(r"(^|[\s/])" + re.escape(u) + r"($|\s| ->)", g, re.M)]
    return not found, ("generated: " + " ".join(found)) if found else "none of them under /run/systemd/generator*"


@check("unit-state", "unit-state UNIT ACTIVESTATE [RESULT]  -- ActiveState (and Result) exactly, e.g. inactive dependency")
def c_unit_state(f, unit, state, result=None):
    p = f.unit(unit)
    if p is None:
        return False, f"{unit}: no facts"
    got = (p.get("ActiveState"), p.get("Result"))
    ok = got[0] == state and (result is None or got[1] == result)
    return ok, f"{unit}: ActiveState={got[0]} Result={got[1]} (LoadState={p.get('LoadState')})"


@check("reached-within", "reached-within UNIT SECONDS  -- UNIT became active at most SECONDS after boot (monotonic)")
def c_reached_within(f, unit, secs):
    p = f.unit(unit)
    if p is None:
        return False, f"{unit}: no facts"
    t = _ts(p, "ActiveEnterTimestampMonotonic")
    if not t:
        return False, f"{unit} never became active ({p.get('ActiveState')})"
    if t < f.start:
        return False, f"{unit} active at {_fmt(t)}, before this phase began ({_fmt(f.start)})"
    since = " after the phase began" if f.start else ""
    return t - f.start <= float(secs) * 1e6, f"{unit} active at {_fmt(t - f.start)}{since} (bound {secs}s)"


@check("action-output", "action-output NAME REGEX  -- the [action]'s output (stdout+stderr) matches (multiline)")
def c_action_output(f, name, rx):
    out = f.text("..", "actions", name + ".out")
    if out is None:
        return False, f"{name}: no output recorded"
    m = re.search(rx, out, re.M)
    return m is not None, (f"matched {m.group(0)[:160]!r}" if m else f"no match for {rx!r} in: " + out[-300:].strip())


@check("no-action-output", "no-action-output NAME REGEX  -- the [action]'s output (which must exist) does not match")
def c_no_action_output(f, name, rx):
    out = f.text("..", "actions", name + ".out")
    if out is None:
        return False, f"{name}: no output recorded"
    m = re.search(rx, out, re.M)
    return m is None, (f"unexpected {m.group(0)[:160]!r}" if m else f"none matching {rx!r}")



@check("started-after-done", "started-after-done A B  -- A started after B's last state change (B active or failed: its start job ended)")
def c_after_done(f, a, b):
    pa, pb = f.unit(a), f.unit(b)
    if pa is None or pb is None:
        return False, f"no facts for {a if pa is None else b}"
    if pb.get("ActiveState") not in ("active", "failed"):
        return False, f"{b} is {pb.get('ActiveState')}, not done"
    ta = _ts(pa, "InactiveExitTimestampMonotonic")
    tb = _ts(pb, "StateChangeTimestampMonotonic")
    if not ta:
        return False, f"{a} never started"
    if not tb:
        return False, f"{b} has no state change time"
    if _stale(f, **{a: ta, b: tb}):
        return False, _stale(f, **{a: ta, b: tb})
    return ta >= tb, f"{a} started at {_fmt(ta)}, {b} {pb.get('ActiveState')} at {_fmt(tb)}"



@check("journal-by", "journal-by UNIT|- REGEX SECONDS  -- a matching journal message was logged at most SECONDS after boot (monotonic)")
def c_journal_by(f, unit, rx, secs):
    r = re.compile(rx)
    for e in f.journal():
        if unit != "-" and e.get("_SYSTEMD_UNIT") != unit and e.get("UNIT") != unit:
            continue
        m = e.get("MESSAGE")
        if isinstance(m, str) and r.search(m):
            t = int(e.get("__MONOTONIC_TIMESTAMP", "0") or 0) - f.start
            since = " after the phase began" if f.start else ""
            return 0 < t <= float(secs) * 1e6, f"at {_fmt(t)}{since} (bound {secs}s): {m[:140]}"
    return False, f"no message matching {rx!r}" + ("" if unit == "-" else f" from {unit}")


def run_check(results, words):
    """words = [name, args...]; an optional leading 'after:' selects facts taken after the actions."""
    phase = "boot"
    if words and words[0] == "after:":
        phase, words = "after", words[1:]
    fn = CHECKS.get(words[0]) if words else None
    if fn is None:
        return False, f"unknown check {words[0] if words else ''!r}"
    try:
        return fn(Facts(results, phase), *words[1:])
    except TypeError as e:
        return False, f"bad arguments ({e}); usage: {fn.usage}"
