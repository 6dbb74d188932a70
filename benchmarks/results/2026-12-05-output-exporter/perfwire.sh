#!/bin/bash
# W1 P1 P2 W2: d77d4ac binary (/tmp/q10/otelcol-tailsift); W3, W4: eed8310 (with RouteEncoded, /tmp/q10/otelcol-tailsift-h)
# usage: perfwire.sh tag [extra bench-e2e args]; perfs the fast path of pair 1, 25 s after it starts, for 20 s
# (as run then; the start-and-wait part is now benchmarks/probe-fastpath.sh)
Q=/tmp/q8; tag=$1; shift
OUT=/tmp/q10/perf BENCH_E2E=/tmp/q10/bench-e2e LOADGEN=$Q/tailsift-loadgen SINK=$Q/tailsift-sink CONTRIB=/work/main/bin/otelcol-contrib-bench \
  /work/main/benchmarks/probe-fastpath.sh "$tag" /tmp/q10/otelcol-tailsift-h \
  "perf record -F 4999 -g -p \$PID -o /tmp/q10/perf/$tag.data -- sleep 20 >/dev/null 2>&1" "$@"
perf script -i /tmp/q10/perf/$tag.data > /tmp/q10/perf/$tag.script 2>/dev/null
