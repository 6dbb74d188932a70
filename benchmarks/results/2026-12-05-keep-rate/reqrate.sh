#!/bin/bash
# Export requests per second the sink receives from each collector, 10 s in the window.
tag=$1; shift; cd /work/main/benchmarks
/tmp/q9/bench-e2e -mode quick -sat=false -drain 3s -idle 1s -profile never -no-write \
  -loadgen-bin /tmp/q8/tailsift-loadgen -sink-bin /tmp/q8/tailsift-sink -contrib-bin /work/main/bin/otelcol-contrib-bench \
  -tailsift-bin ${TBIN:-/tmp/q9/otelcol-tailsift} -pairs 1 -baseline=false -shape sdk -warmup 30s "$@" > /tmp/q9/$tag.e2e.log 2>&1 &
e2e=$!
for c in ${KINDS:-tailsift fastpath contrib}; do
  pid=""
  while [ -z "$pid" ] && kill -0 $e2e 2>/dev/null; do
    pid=$(pgrep -f -- "--config /tmp/bench-e2e-[0-9]*/pair1-$c/collector.yaml" | head -1); sleep 0.5
  done
  [ -z "$pid" ] && break
  port=$(pgrep -a -f tailsift-sink | grep -o -- '--http 127.0.0.1:[0-9]*' | tail -1 | cut -d: -f2)
  sleep 40
  a=$(curl -s 127.0.0.1:$port/stats); sleep 10; b=$(curl -s 127.0.0.1:$port/stats)
  python3 -c "
import json,sys; a=json.loads(sys.argv[1]); b=json.loads(sys.argv[2])
r=(b['requests']-a['requests'])/10; s=(b['span_arrivals']-a['span_arrivals'])/10
print('$c', 'requests/s %.1f'%r, 'spans/s %.0f'%s, 'spans/request %.1f'%(s/r if r else 0))" "$a" "$b" | tee -a /tmp/q9/$tag.txt
  while kill -0 $pid 2>/dev/null; do sleep 0.5; done
done
wait $e2e
