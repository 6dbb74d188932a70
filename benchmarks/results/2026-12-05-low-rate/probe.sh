#!/bin/bash
# probe.sh tag bin "cmd with PID" [extra bench-e2e args]: runs the fast path alone (SDK shape unless overridden), runs cmd 25 s after start
tag=$1; bin=$2; cmd=$3; shift 3
Q=/tmp/q8; mkdir -p /tmp/q12/probe
cd /work/main/benchmarks
/tmp/q12/bench-e2e -mode quick -sat=false -drain 3s -idle 1s -profile never -no-write \
  -loadgen-bin $Q/tailsift-loadgen -sink-bin $Q/tailsift-sink -contrib-bin /work/main/bin/otelcol-contrib-bench \
  -tailsift-bin $bin -pairs 1 -processor=false -contrib=false -baseline=false -fastpath -shape sdk -warmup 30s "$@" > /tmp/q12/probe/$tag.e2e.log 2>&1 &
e2e=$!
pid=""
while [ -z "$pid" ] && kill -0 $e2e 2>/dev/null; do
  pid=$(pgrep -f -- "--config /tmp/bench-e2e-[0-9]*/pair1-fastpath/collector.yaml" | head -1); sleep 0.5
done
sleep 25
PID=$pid bash -c "$cmd" > /tmp/q12/probe/$tag.out 2>&1
wait $e2e
