#!/bin/bash
# perf trace -s of each collector of one pair, 30 s after it starts, for 10 s
tag=$1; shift; cd /work/main/benchmarks
/tmp/q9/bench-e2e -mode quick -sat=false -drain 3s -idle 1s -profile never -no-write \
  -loadgen-bin /tmp/q8/tailsift-loadgen -sink-bin /tmp/q8/tailsift-sink -contrib-bin /work/main/bin/otelcol-contrib-bench \
  -tailsift-bin /tmp/q9/otelcol-tailsift -pairs 1 -baseline=false -processor=false -fastpath -shape sdk -warmup 30s "$@" > /tmp/q9/$tag.e2e.log 2>&1 &
e2e=$!
for c in fastpath contrib; do
  pid=""
  while [ -z "$pid" ] && kill -0 $e2e 2>/dev/null; do
    pid=$(pgrep -f -- "--config /tmp/bench-e2e-[0-9]*/pair1-$c/collector.yaml" | head -1); sleep 0.5
  done
  [ -z "$pid" ] && break
  sleep 30
  perf trace -s -p $pid -o /tmp/q9/$tag-$c.ptrace -- sleep 10 >/dev/null 2>&1
  while kill -0 $pid 2>/dev/null; do sleep 0.5; done
done
wait $e2e
