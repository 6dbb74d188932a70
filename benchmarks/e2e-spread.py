#!/usr/bin/env python3
"""Spread of bench-e2e CPU figures over several results JSONs (one file per
round, e.g. `-pairs 1` runs alternated with another variant).

    python3 benchmarks/e2e-spread.py LABEL=file1.json,file2.json,... [LABEL=...]

For each label: per collector, CPU us/span median [min-max] and spread
(max - min) / median, with the ticks figure too when the runner recorded it;
then the per-round ratios (processor added CPU / contrib added CPU, each net of
the otlp->nop baseline; fast path / baseline; fast path / contrib), each round
from its own runs. Reports of every round of a file are used (a file with
-pairs 3 gives 3 rounds)."""
import json
import statistics
import sys


def spread(v):
    v = sorted(x for x in v if x is not None)
    if not v:
        return "—"
    med = statistics.median(v)
    if len(v) == 1:
        return f"{med:.2f}"
    return f"{med:.2f} [{v[0]:.2f}–{v[-1]:.2f}] ({100 * (v[-1] - v[0]) / med:.0f} %)"


def rounds(files):
    out = []
    for f in files:
        rep = json.load(open(f))
        by = {}
        for r in rep["Side"]:
            by.setdefault(r["label"], {})[r["kind"]] = r
        out.extend(by.values())
    return out


def main(args):
    for arg in args:
        label, _, files = arg.partition("=")
        rs = rounds(files.split(","))
        print(f"## {label}: {len(rs)} rounds")
        for k in ("tailsift", "fastpath", "contrib", "baseline"):
            us = [r[k]["collector_cpu_us_per_span"] for r in rs if k in r]
            ticks = [r[k].get("collector_cpu_us_per_span_ticks") for r in rs if k in r]
            cores = [r[k]["collector_cpu_util"] for r in rs if k in r]
            if us:
                t = spread(ticks) if any(ticks) else "—"
                print(f"  {k:9s} µs/span {spread(us):32s} ticks {t:32s} cores {spread(cores)}")
        def ratio(f):
            v = []
            for r in rs:
                try:
                    v.append(f({k: x["collector_cpu_us_per_span"] for k, x in r.items()}))
                except (KeyError, ZeroDivisionError):
                    pass
            return spread(v)
        print("  processor added ÷ contrib added", ratio(lambda m: (m["tailsift"] - m["baseline"]) / (m["contrib"] - m["baseline"])))
        print("  fast path added ÷ contrib added", ratio(lambda m: (m["fastpath"] - m["baseline"]) / (m["contrib"] - m["baseline"])))
        print("  fastpath ÷ baseline            ", ratio(lambda m: m["fastpath"] / m["baseline"]))
        print("  fastpath ÷ contrib             ", ratio(lambda m: m["fastpath"] / m["contrib"]))
        print("  tailsift ÷ contrib             ", ratio(lambda m: m["tailsift"] / m["contrib"]))


if __name__ == "__main__":
    main(sys.argv[1:])
