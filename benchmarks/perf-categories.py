#!/usr/bin/env python3
"""Where a collector's CPU goes, from `perf script` output, by the frames on each sample's stack.

Usage (collector pinned to CPU 0 by bench-e2e; 15 s of its run at 4999 Hz):
  perf record -F 4999 -g -p <collector pid> -o run.perf.data -- sleep 15
  perf script -i run.perf.data > run.script
  benchmarks/perf-categories.py run.script [seconds=15] [spans/s=10000]

Each sample goes to the first category whose rule matches (see cat()); the figures
are ms of CPU per s and us per span at the given rate.
"""
import collections
import sys


def cat(s):
    if 'tailsiftprocessor.(*tailsiftProcessor).ConsumeTraces' in s:
        if 'MarshalTraces' in s or 'MarshalProto' in s or 'SizeProto' in s:
            return 'processor: pdata -> wire marshal'
        if 'wire.Scan' in s:
            return 'processor: scan'
        # An Ingest call runs the shard inline when it is free (tracebuf's
        # tryIngest): its ingest and decisions go to the shard's categories.
        if 'tracebuf.(*shard)' not in s:
            return 'processor: Ingest other (route, queue)'
    if 'UnmarshalTraces' in s and 'decodeOut' in s:
        return 'output: decode kept spans (wire -> pdata)'
    if 'zstd' in s and ('Encoder' in s or 'encoderWrapper' in s):
        return 'output: exporter zstd'
    if 'exporterhelper' in s or 'otlpexporter' in s or 'zstd' in s:
        return 'output: exporter (queue, marshal, gRPC call)'
    # The exporter's connection: its HTTP/2 writer and reader goroutines
    # (the receiver's are NewServerTransport and http2Server).
    if 'NewHTTP2Client' in s or 'http2Client' in s:
        return 'output: exporter gRPC connection (writes, reads)'
    # output::exporter: the shard hands its output batch's bytes to the
    # tailsift exporter's router, which splits them by member and queues
    # them (its sends are exporterhelper's, its zstd and connection above).
    if 'router.(*Router)' in s or 'router.(*splitter)' in s or 'router.(*member)' in s:
        return 'output: router (split, enqueue)'
    if 'shard).flushOut' in s:
        return 'output: flush other'
    if 'otlpguard.' in s and 'UnmarshalProto' not in s and 'BufferPool' not in s:
        return 'receiver: otlp guard (depth check)'
    if 'UnmarshalProto' in s:
        return 'receiver: pdata unmarshal'
    if 'tailsamplingprocessor' in s:
        return 'contrib: tail_sampling'
    if 'selfmetrics' in s or 'statuspage' in s or 'sdk/metric' in s:
        return 'self-metrics / status page'
    if 'prometheus' in s or 'promhttp' in s:
        return 'prometheus scrape'
    if 'shard).ingest' in s:
        return 'shard: ingest'
    if 'shard).decide' in s or 'shard).keep' in s or 'shard).forget' in s:
        return 'shard: decide'
    if 'tracebuf' in s:
        return 'shard: other (loop, timers, report)'
    if 'gcBgMarkWorker' in s or 'bgsweep' in s or 'bgscavenge' in s:
        return 'runtime: GC background'
    if 'sysmon' in s:
        return 'runtime: sysmon'
    if 'schedule' in s or 'findRunnable' in s or 'netpoll' in s or 'mcall' in s or 'park_m' in s:
        return 'runtime: scheduler, idle, netpoll'
    if 'http2' in s or 'grpc' in s:
        return 'gRPC/HTTP2 (reads, writes, buffers)'
    return 'other'


def samples(path):
    cur = []
    for line in open(path, errors='replace'):
        line = line.rstrip('\n')
        if not line.strip():
            if cur:
                yield cur
            cur = []
        elif line[0] in ' \t':
            parts = line.strip().split(None, 1)
            if len(parts) == 2:
                cur.append(parts[1])
        else:
            cur = []
    if cur:
        yield cur


def main():
    path = sys.argv[1]
    secs = float(sys.argv[2]) if len(sys.argv) > 2 else 15
    rate = float(sys.argv[3]) if len(sys.argv) > 3 else 10000
    c = collections.Counter(cat(' '.join(f)) for f in samples(path))
    n = sum(c.values())
    print(f'{path}: {n} samples at 4999 Hz over {secs:.0f} s = {n / 4999 / secs * 1e3:.2f} ms CPU per s, '
          f'{n / 4999 / secs / rate * 1e6:.2f} us/span at {rate:.0f} spans/s')
    for k, v in c.most_common():
        print(f'{v:7d} {v / 4999 / secs * 1e3:7.2f} ms/s {v / 4999 / secs / rate * 1e6:6.3f} us/span  {k}')


if __name__ == '__main__':
    main()
