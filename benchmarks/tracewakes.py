#!/usr/bin/env python3
"""How often a collector's P went from idle to running, and where its goroutines blocked.

Usage: tracewakes.py FILE, FILE from `go tool trace -d=parsed trace.out > FILE` (a
runtime/trace taken from the pprof extension: curl .../debug/pprof/trace?seconds=5): how
often a second the process's P went from idle to running and each goroutine blocked, by
where it blocked. Fast path, round 3 in README.md. tracewakecause.py reads the same events
(events below) for what woke the process.
"""
import collections
import re
import sys


def events(path):
    """Yields each event of a parsed trace as (header line, stack frames)."""
    cur = None
    for line in open(path, errors='replace'):
        line = line.rstrip('\n')
        if line.startswith('M='):
            if cur:
                yield cur
            cur = [line, []]
        elif line.startswith('\t') and not line.startswith('\t\t') and cur:
            cur[1].append(line.strip().split(' @')[0])
    if cur:
        yield cur


def user_frames(stack):
    """The frames outside the runtime and the standard library's internals."""
    return [f for f in stack if not f.startswith(('runtime.', 'internal/', 'sync.'))]


def main():
    t0 = t1 = None
    block = collections.Counter()
    pidle = 0
    for head, stack in events(sys.argv[1]):
        m = re.search(r'Time=(\d+)', head)
        if m:
            t = int(m.group(1))
            t0 = t if t0 is None else t0
            t1 = t
        if 'ProcID=' in head and 'Idle->Running' in head:
            pidle += 1
        if 'GoID=' in head and 'Running->Waiting' in head:
            block[' < '.join(f.split('/')[-1] for f in user_frames(stack)[:2])] += 1
    dur = (t1 - t0) / 1e9
    print(f'{sys.argv[1]}: {dur:.1f} s, P idle->running {pidle / dur:.1f}/s, goroutine blocks {sum(block.values()) / dur:.1f}/s')
    for k, v in block.most_common(9):
        print(f'{v / dur:7.1f} {k}')


if __name__ == '__main__':
    main()
