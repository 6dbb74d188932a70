#!/bin/bash
# usage: perfpair.sh tag [extra bench-e2e args]; perfs each collector of pair 1, 20 s after it starts, for 20 s
Q=/tmp/q8; tag=$1; shift
cd /work/main/benchmarks
/tmp/q9/bench-e2e -mode quick -sat=false -drain 3s -idle 1s -profile never -no-write \
  -loadgen-bin $Q/tailsift-loadgen -sink-bin $Q/tailsift-sink -contrib-bin /work/main/bin/otelcol-contrib-bench \
  -tailsift-bin /tmp/q9/otelcol-tailsift -pairs 1 -processor=false -fastpath "$@" > $Q/perf/$tag.e2e.log 2>&1 &
e2e=$!
for c in fastpath contrib baseline; do
  pid=""
  while [ -z "$pid" ] && kill -0 $e2e 2>/dev/null; do
    pid=$(pgrep -f -- "--config /tmp/bench-e2e-[0-9]*/pair1-$c/collector.yaml" | head -1); sleep 0.5
  done
  [ -z "$pid" ] && break
  sleep 25
  perf record -F 4999 -g -p $pid -o $Q/perf/$tag-$c.data -- sleep 20 >/dev/null 2>&1
  grep ctxt /proc/$pid/status > $Q/perf/$tag-$c.ctx 2>/dev/null
  while kill -0 $pid 2>/dev/null; do sleep 0.5; done
done
wait $e2e
for c in fastpath contrib baseline; do
  perf script -i $Q/perf/$tag-$c.data > $Q/perf/$tag-$c.script 2>/dev/null
done
