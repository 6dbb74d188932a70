#!/bin/bash
# usage: perfwire.sh tag [extra bench-e2e args]; perfs the fast path of pair 1, 25 s after it starts, for 20 s
Q=/tmp/q8; tag=$1; shift
mkdir -p /tmp/q10/perf
cd /work/main/benchmarks
/tmp/q10/bench-e2e -mode quick -sat=false -drain 3s -idle 1s -profile never -no-write \
  -loadgen-bin $Q/tailsift-loadgen -sink-bin $Q/tailsift-sink -contrib-bin /work/main/bin/otelcol-contrib-bench \
  -tailsift-bin /tmp/q10/otelcol-tailsift-h -pairs 1 -processor=false -contrib=false -baseline=false -fastpath "$@" > /tmp/q10/perf/$tag.e2e.log 2>&1 &
e2e=$!
pid=""
while [ -z "$pid" ] && kill -0 $e2e 2>/dev/null; do
  pid=$(pgrep -f -- "--config /tmp/bench-e2e-[0-9]*/pair1-fastpath/collector.yaml" | head -1); sleep 0.5
done
sleep 25
perf record -F 4999 -g -p $pid -o /tmp/q10/perf/$tag.data -- sleep 20 >/dev/null 2>&1
wait $e2e
perf script -i /tmp/q10/perf/$tag.data > /tmp/q10/perf/$tag.script 2>/dev/null
