#!/usr/bin/env python3
"""What woke the process from idle, from `go tool trace -d=parsed trace.out > FILE`.

Usage: tracewakecause.py FILE [timeline N]

For each time the collector's P went from idle to running, the first goroutine
to run after it and where that goroutine had blocked: an incoming request's
HTTP/2 reader (in), an export's answer on the client connection (resp), a
shard's timer (timer), the runtime/trace CPU reader (trace: an artifact of
tracing), a goroutine's first run (fresh), another goroutine (other: its
frames), or none before the P went idle again (none: e.g. netpoll's
millisecond timeout waking ahead of a timer). With `timeline N`, the first N
wake-ups with their times in ms. Complements tracewakes.py, which counts
where goroutines block, and reads the trace with its Timed.
"""
import collections
import re
import sys

from tracewakes import Timed, user_frames


def cause(stack):
    s = ' '.join(stack)
    if 'http2Server' in s:
        return 'in: incoming request (HTTP/2 server reader)'
    if 'http2Client' in s:
        return 'resp: export answer (HTTP/2 client reader)'
    # fdTimer: the timer of results/2026-12-06-arrivals/timerfd-experiment.patch
    if 'tracebuf.(*shard).run' in s or 'fdTimer' in s:
        return 'timer: shard wake-up'
    if 'traceStartReadCPU' in s or 'traceAdvancer' in s:
        return 'trace: runtime/trace reader (artifact)'
    frames = user_frames(stack)
    if not frames:
        return 'other: runtime frames only (' + (stack[0] if stack else 'no stack') + ')'
    return 'other: ' + ' < '.join(f.split('/')[-1] for f in frames[:2])


def main():
    blocked = {}  # goroutine -> cause of its last block
    pending = None
    wakes = []
    trace = Timed(sys.argv[1])
    for t, head, stack in trace:
        if 'ProcID=' in head and 'Idle->Running' in head:
            if pending is not None:
                wakes.append((pending, 'none: no goroutine ran'))
            pending = t
            continue
        g = re.search(r'GoID=(\d+) (\w+)->(\w+)', head)
        if not g:
            continue
        gid, _, to = g.groups()
        if to == 'Waiting':
            blocked[gid] = cause(stack)
        if pending is not None and to == 'Running':
            wakes.append((pending, blocked.get(gid, 'fresh: first run')))
            pending = None
    dur = trace.seconds()
    print(f'{sys.argv[1]}: {dur:.1f} s, wake-ups from idle {len(wakes) / dur:.1f}/s')
    for k, v in collections.Counter(w for _, w in wakes).most_common():
        print(f'{v / dur:7.1f}/s  {k}')
    if len(sys.argv) > 3 and sys.argv[2] == 'timeline':
        for t, w in wakes[:int(sys.argv[3])]:
            print(f'{(t - wakes[0][0]) / 1e6:9.2f} ms  {w.split(":")[0]}')


if __name__ == '__main__':
    main()
