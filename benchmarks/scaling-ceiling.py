#!/usr/bin/env python3
"""#13's scaling target against the machine's own ceiling.

BenchmarkParallelIngest/ids=fresh (receiver/tailsiftreceiver) with 2 shards on
2 cores against 1 shard on 1 core, each configuration in a process of its own,
and as the control two independent 1-core processes at once: they share no
memory, lock or goroutine, so their combined throughput over one alone is the
most 2 cores of this machine give this workload. The order of the three
rotates from round to round.

    benchmarks/scaling-ceiling.py -out DIR [-rounds 16] [-benchtime 20000x] [-test-bin BIN]
    benchmarks/scaling-ceiling.py -summary DIR     # the summary of a finished run

Without -test-bin it builds the receiver's test binary into DIR first. Each
run's output is kept as DIR/r<round>-<solo|two|pairA|pairB>.txt.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PKG = os.path.join(ROOT, "receiver", "tailsiftreceiver")
LINE = re.compile(r"BenchmarkParallelIngest/ids=fresh(?:-\d+)?\s+\d+\s+[\d.]+ ns/op(.*)")


def metrics(path):
    """The benchmark's reported metrics in path, or None."""
    try:
        with open(path) as f:
            for line in f:
                m = LINE.match(line)
                if m:
                    return {unit: float(v) for v, unit in re.findall(r"([\d.]+) (\S+)", m.group(1))}
    except FileNotFoundError:
        pass
    return None


def run(out, rounds, benchtime, test_bin):
    args = [test_bin, "-test.run", "^$", "-test.bench", "ParallelIngest/ids=fresh", "-test.benchtime", benchtime]

    def one(name, cpu):
        with open(os.path.join(out, name + ".txt"), "w") as f:
            return subprocess.Popen(args + ["-test.cpu", str(cpu)], cwd=PKG, stdout=f, stderr=subprocess.STDOUT)

    def solo(r):
        one(f"r{r}-solo", 1).wait()

    def two(r):
        one(f"r{r}-two", 2).wait()

    def pair(r):
        a, b = one(f"r{r}-pairA", 1), one(f"r{r}-pairB", 1)
        a.wait()
        b.wait()

    orders = [(solo, two, pair), (two, pair, solo), (pair, solo, two)]
    for r in range(1, rounds + 1):
        with open(os.path.join(out, "uptime.txt"), "a") as f:
            f.write(subprocess.run(["uptime"], capture_output=True, text=True).stdout)
        for step in orders[(r - 1) % 3]:
            step(r)
        print(f"round {r} of {rounds} done", file=sys.stderr)


def summary(out):
    rows = []
    r = 1
    while True:
        m = {k: metrics(os.path.join(out, f"r{r}-{k}.txt")) for k in ("solo", "two", "pairA", "pairB")}
        if m["solo"] is None and m["two"] is None:
            break
        r += 1
        if None in m.values():
            continue
        solo, two = m["solo"]["ns/span"], m["two"]["ns/span"]
        a, b = m["pairA"]["ns/span"], m["pairB"]["ns/span"]
        cs, ct = m["solo"]["cpu-ns/span"], m["two"]["cpu-ns/span"]
        cp = (m["pairA"]["cpu-ns/span"] + m["pairB"]["cpu-ns/span"]) / 2
        row = {"round": r - 1, "solo": solo, "two": two, "pairA": a, "pairB": b,
               "in-process 2c/1c": solo / two, "two processes/1": solo / a + solo / b,
               "cpu two/solo": ct / cs, "cpu pair/solo": cp / cs}
        row["in-process/two processes"] = row["in-process 2c/1c"] / row["two processes/1"]
        rows.append(row)
        print(f"r{row['round']}: ns/span solo {solo:.0f}, two {two:.0f}, pair {a:.0f}/{b:.0f} | "
              f"in-process 2c÷1c {row['in-process 2c/1c']:.2f}, two processes ÷ one {row['two processes/1']:.2f} | "
              f"cpu-ns/span solo {cs:.0f}, two {ct:.0f}, pair {cp:.0f}")
    if not rows:
        print("no complete round in " + out)
        return 1
    print(f"{len(rows)} rounds: median [min–max]")
    for k in ("in-process 2c/1c", "two processes/1", "in-process/two processes", "cpu two/solo", "cpu pair/solo"):
        v = [row[k] for row in rows]
        print(f"  {k}: {statistics.median(v):.2f} [{min(v):.2f}–{max(v):.2f}]")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-out", help="directory for the runs' outputs")
    p.add_argument("-rounds", type=int, default=16)
    p.add_argument("-benchtime", default="20000x")
    p.add_argument("-test-bin", help="the receiver's test binary (default: built into -out)")
    p.add_argument("-summary", metavar="DIR", help="only summarise the runs in DIR")
    a = p.parse_args()
    if a.summary:
        return summary(a.summary)
    if not a.out:
        p.error("need -out or -summary")
    os.makedirs(a.out, exist_ok=True)
    test_bin = a.test_bin
    if not test_bin:
        test_bin = os.path.join(os.path.abspath(a.out), "recv.test")
        subprocess.run(["go", "test", "-c", "-o", test_bin, "./receiver/tailsiftreceiver"], cwd=ROOT, check=True)
    run(a.out, a.rounds, a.benchtime, os.path.abspath(test_bin))
    return summary(a.out)


if __name__ == "__main__":
    sys.exit(main())
