"""Scenario files for the VM test bed (format: tests/vm/README.md).

A scenario is a small text file of sections:

    [scenario]            key = value settings (continuation lines are indented)
    [file /abs/path]      a file dropped into the guest (content = ... or source = path)
    [action NAME]         a guest script run after the boot has settled (content/source)
    [expect]              one check per line: NAME ARG... (see checks.py)

Lines starting with '#' at column 0 are comments everywhere except inside an indented value.
"""

import os
import shlex


DEFAULT_IMAGE = "bookworm"
IMAGES = ("bookworm", "trixie")


class ScenarioError(Exception):
    pass


class Section:
    def __init__(self, kind, arg, lineno):
        self.kind = kind
        self.arg = arg
        self.lineno = lineno
        self.kv = {}
        self.lines = []  # [expect] only: (lineno, text)


def _dedent(lines):
    while lines and not lines[-1].strip():
        lines.pop()
    ind = min((len(l) - len(l.lstrip()) for l in lines if l.strip()), default=0)
    return "\n".join(l[ind:] for l in lines)


def parse(path):
    sections = []
    cur = None
    key = None
    cont = []
    with open(path) as f:
        raw_lines = f.read().splitlines()

    def flush():
        nonlocal key, cont
        if key is not None:
            first, rest = cont[0], cont[1:]
            val = first
            if rest:
                val = (first + "\n" if first else "") + _dedent(rest)
            cur.kv[key] = val.strip("\n") if not rest else val
        key, cont = None, []

    for n, line in enumerate(raw_lines, 1):
        if key is not None and (line[:1] in (" ", "\t") or (not line.strip() and cur.kind != "expect")):
            cont.append(line)
            continue
        flush()
        s = line.strip()
        if not s or line.startswith("#"):
            continue
        if s.startswith("[") and s.endswith("]"):
            head = s[1:-1].strip().split(None, 1)
            cur = Section(head[0], head[1] if len(head) > 1 else "", n)
            sections.append(cur)
            continue
        if cur is None:
            raise ScenarioError(f"{path}:{n}: text before the first [section]")
        if cur.kind == "expect":
            cur.lines.append((n, s))
            continue
        if "=" not in s:
            raise ScenarioError(f"{path}:{n}: expected key = value")
        k, v = s.split("=", 1)
        key = k.strip()
        if key in cur.kv:
            raise ScenarioError(f"{path}:{n}: duplicate key {key}")
        cont = [v.strip()]
    flush()
    return Scenario(path, sections)


class Scenario:
    KNOWN = {
        "description", "machine", "memory", "smp", "timeout", "settle", "qemu", "cmdline",
        "network-stack", "enable", "pfs", "devices", "bond", "include", "units", "docker-standin",
        "tags", "action-timeout", "base", "share-boot", "image", "host-tests",
    }
    # What a shared boot's phases must agree on (the boot itself); the rest is per phase.
    BOOT_KEYS = ("machine", "memory", "smp", "qemu", "cmdline", "base", "image")

    def __init__(self, path, sections):
        self.path = path
        self.name = os.path.basename(path).rsplit(".", 1)[0]
        # Relative paths (include, source) are read where the file really is: a symlink to a
        # scenario is a run of it under the link's name (tests/bench/boot: one name per boot).
        self.dir = os.path.dirname(os.path.realpath(path))
        heads = [s for s in sections if s.kind == "scenario"]
        if len(heads) != 1:
            raise ScenarioError(f"{path}: needs exactly one [scenario] section")
        self.kv = heads[0].kv
        unknown = set(self.kv) - self.KNOWN
        if unknown:
            raise ScenarioError(f"{path}: unknown [scenario] keys: {', '.join(sorted(unknown))}")
        self.files = []
        self.actions = []
        self.checks = []
        for s in sections:
            if s.kind == "file":
                self.files.append((s.arg, self._body(s), int(s.kv.get("mode", "0644"), 8)))
            elif s.kind == "action":
                self.actions.append((s.arg, self._body(s)))
            elif s.kind == "expect":
                for n, text in s.lines:
                    try:
                        words = shlex.split(text)
                    except ValueError as e:
                        raise ScenarioError(f"{path}:{n}: {e}")
                    self.checks.append((n, text, words))
            elif s.kind != "scenario":
                raise ScenarioError(f"{path}:{s.lineno}: unknown section [{s.kind}]")
        for p, _, _ in self.files:
            if not p.startswith("/") or ".." in p.split("/"):
                raise ScenarioError(f"{path}: [file {p}] must be an absolute path without '..'")

    def _body(self, s):
        if "source" in s.kv:
            with open(os.path.join(self.dir, s.kv["source"])) as f:
                return f.read()
        if "content" in s.kv:
            v = s.kv["content"]
            return v if v.endswith("\n") else v + "\n"
        raise ScenarioError(f"{self.path}:{s.lineno}: [{s.kind} {s.arg}] needs content = or source =")

    def get(self, key, default=""):
        return self.kv.get(key, default).strip()

    def words(self, key):
        return self.get(key).split()

    def lines(self, key):
        return [l.strip() for l in self.get(key).splitlines() if l.strip()]

    @property
    def pfs(self):
        return self.words("pfs")

    @property
    def base(self):
        """The disk it boots: image (bare), package (vflag installed by the package-install
        boot, without the role's vflag.conf) or rollout (that disk as the role left it)."""
        return self.get("base", "package")

    @property
    def image(self):
        """The guest image (Debian release) it boots: bookworm (default) or trixie. Each image
        gets its own package-install boot (README "Images")."""
        return self.get("image", DEFAULT_IMAGE)

    @property
    def share_boot(self):
        """The shared boot this scenario is a phase of (README "Phases"), or ""."""
        return self.get("share-boot")

    @property
    def timeout(self):
        return int(self.get("timeout", "200"))

    @property
    def settle(self):
        return int(self.get("settle", "110"))

    @property
    def action_timeout(self):
        """Bound of each [action] script in the guest, seconds."""
        return int(self.get("action-timeout", "60"))
