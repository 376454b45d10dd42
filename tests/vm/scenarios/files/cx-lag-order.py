#!/usr/bin/python3
# ConnectX model scenarios: did the late stage wait for the LAG the model activated?
# Kernel records carry their printk time (_SOURCE_MONOTONIC_TIMESTAMP: local_clock, seen ~10 ms off
# CLOCK_MONOTONIC here), vflag's their receipt time. Reference: the model's "lag map" line (argv[2],
# a regex), printed when mlx5 starts activating, before CREATE_LAG's firmware time (cx_lag_ms,
# 300 ms) during which debugfs still says "disabled". Prints the timeline; exit 0 iff the late
# stage of PF (argv[1]) found the bond valid before that line and logged the LAG active after it
# (its state argv[3], default "active"; "active (kernel log)" when it read the kernel log).
import json, re, subprocess, sys

pf, pattern = sys.argv[1], re.compile(sys.argv[2])
want = sys.argv[3] if len(sys.argv) > 3 else "active"
unit = f"vflag-rebind@{pf}.service"
recs = [json.loads(l) for l in subprocess.run(["journalctl", "-b", "-o", "json", "--no-pager"],
                                              capture_output=True, text=True).stdout.splitlines() if l]
def at(r):
    return int(r.get("_SOURCE_MONOTONIC_TIMESTAMP") or r["__MONOTONIC_TIMESTAMP"]) / 1e6
def msg(r):
    m = r.get("MESSAGE", "")
    return m if isinstance(m, str) else bytes(m).decode(errors="replace")
active = [at(r) for r in recs if r.get("_TRANSPORT") == "kernel" and pattern.search(msg(r))]
valid = [at(r) for r in recs if r.get("_SYSTEMD_UNIT") == unit and msg(r) == "bond is valid for VF-LAG"]
lag = [(at(r), r.get("STATE")) for r in recs if r.get("_SYSTEMD_UNIT") == unit and msg(r) == "LAG state"]
print(f"model starts activating (kernel): {active}\n{unit} bond valid: {valid}\n{unit} LAG state: {lag}")
ok = bool(active and valid and lag) and valid[0] < active[0] < lag[0][0] and lag[0][1] == want
print("waited for the LAG" if ok else "NOT shown that it waited for the LAG")
sys.exit(0 if ok else 1)
