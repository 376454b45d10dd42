#!/usr/bin/env python3
"""Summary table of the benchmark runs: tests/bench/summary.py VM_WORK [generator.txt [SCENARIO...]]

Reads the ROW lines (ROW <stage> <vfs> <variant> <rep> <us> <rc>) of the scenarios' (default
bench-early and bench-late; never mix runs of different boots in one table) actions (VM_WORK/<scenario>/boot<N>/results/actions/*.out, the last boot
that has them) and the generator table, prints medians, spreads and the ratios of the issue.
"""
import glob, os, statistics, sys
from collections import defaultdict


def rows(work, scenario):
    boots = sorted(glob.glob(os.path.join(work, scenario, "boot*", "results", "actions")))
    if not boots:
        return [], None
    d = boots[-1]
    out = []
    files = sorted(glob.glob(os.path.join(d, "*.out")))
    if not any(l.startswith("ROW ") for f in files for l in open(f, errors="replace")):
        # the guest did not get to its last action: what the benchmark wrote while running
        files = glob.glob(os.path.join(d, "bench-live.log"))
    for f in files:
        for line in open(f, errors="replace"):
            p = line.split()
            if len(p) == 7 and p[0] == "ROW":
                out.append((p[1], int(p[2]), p[3], int(p[4]), int(p[5]), int(p[6])))
    return out, d


def ms(us):
    return us / 1000.0


def main():
    work = sys.argv[1]
    gen = sys.argv[2] if len(sys.argv) > 2 else None
    scenarios = sys.argv[3:] or ["bench-early", "bench-late"]
    data = defaultdict(list)
    failed = defaultdict(int)
    for scen in scenarios:
        rs, d = rows(work, scen)
        print(f"# {scen}: {d or 'no results'}")
        for stage, vfs, var, rep, us, rc in rs:
            if rc == 0:
                data[(stage, vfs, var)].append(us)
            else:
                failed[(stage, vfs, var)] += 1
    print()
    print(f"{'stage':<7} {'VFs/PF':>6} {'variant':<18} {'n':>3} {'median ms':>10} {'min ms':>9} {'max ms':>9} {'failed':>6}")
    med = {}
    for key in sorted(data, key=lambda k: (k[0] != "early", k[0], k[1], k[2])):
        v = data[key]
        med[key] = statistics.median(v)
        print(f"{key[0]:<7} {key[1]:>6} {key[2]:<18} {len(v):>3} {ms(med[key]):>10.1f} {ms(min(v)):>9.1f} {ms(max(v)):>9.1f} {failed.get(key, 0):>6}")
    for key, n in failed.items():
        if key not in data:
            print(f"{key[0]:<7} {key[1]:>6} {key[2]:<18}   0  (all {n} runs failed)")
    print()
    print(f"{'stage':<7} {'VFs/PF':>6} {'vflag/scripted':>15} {'vflag/floor':>12}   targets: early <= 0.10 and <= 1.20")
    for stage, vfs in sorted({(k[0], k[1]) for k in med if k[0] in ("early", "late")}):
        b, c, a = (med.get((stage, vfs, x)) for x in ("vflag", "scripted", "floor"))
        bc = f"{b / c:.3f}" if b and c else "-"
        ba = f"{b / a:.2f}" if b and a else "-"
        print(f"{stage:<7} {vfs:>6} {bc:>15} {ba:>12}")
    print()
    print("status target: <= 50 ms (2 PFs x 64 representors); generator targets: <= 2 ms, <= 4 MB RSS")
    if gen and os.path.exists(gen):
        print()
        print(open(gen).read().rstrip())


if __name__ == "__main__":
    main()
