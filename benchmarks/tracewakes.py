#!/usr/bin/env python3
"""How often a collector's P went from idle to running, and where its goroutines blocked.

Usage: tracewakes.py FILE, FILE from `go tool trace -d=parsed trace.out > FILE` (a
runtime/trace taken from the pprof extension: curl .../debug/pprof/trace?seconds=5): how
often a second the process's P went from idle to running and each goroutine blocked, by
where it blocked. Fast path, round 3 in README.md. tracewakecause.py reads the same events
(Timed below) for what woke the process.
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


class Timed:
    """events(path), each with its time: `for t, head, stack in Timed(path)`; t is
    the event's Time, or the last one seen for an event without one. seconds() is
    the span from the first time to the last, once iterated."""

    TIME = re.compile(r'Time=(\d+)')

    def __init__(self, path):
        self.path, self.t0, self.t1 = path, None, None

    def __iter__(self):
        for head, stack in events(self.path):
            m = self.TIME.search(head)
            if m:
                self.t1 = int(m.group(1))
                if self.t0 is None:
                    self.t0 = self.t1
            yield self.t1, head, stack

    def seconds(self):
        return (self.t1 - self.t0) / 1e9


def user_frames(stack):
    """The frames outside the runtime and the standard library's internals."""
    return [f for f in stack if not f.startswith(('runtime.', 'internal/', 'sync.'))]


def main():
    trace = Timed(sys.argv[1])
    block = collections.Counter()
    pidle = 0
    for _, head, stack in trace:
        if 'ProcID=' in head and 'Idle->Running' in head:
            pidle += 1
        if 'GoID=' in head and 'Running->Waiting' in head:
            block[' < '.join(f.split('/')[-1] for f in user_frames(stack)[:2])] += 1
    dur = trace.seconds()
    print(f'{sys.argv[1]}: {dur:.1f} s, P idle->running {pidle / dur:.1f}/s, goroutine blocks {sum(block.values()) / dur:.1f}/s')
    for k, v in block.most_common(9):
        print(f'{v / dur:7.1f} {k}')


if __name__ == '__main__':
    main()
