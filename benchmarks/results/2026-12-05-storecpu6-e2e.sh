#!/bin/bash
# e2e section B: off / zstd base / zstd new, alternating order; $1 = rounds
Q=/tmp/storecpu6; D=$Q/e2e; mkdir -p $D; cd /work/wt/storecpu6/benchmarks
E2E="$Q/bench-e2e -mode quick -sat=false -warmup 5s -window 20s -drain 3s -idle 1s -profile never -loadgen-bin $Q/loadgen -sink-bin $Q/sink"
for r in $(seq 1 $1); do
  if [ $((r%2)) = 1 ]; then order="off:new zstd:base zstd:new"; else order="zstd:new zstd:base off:new"; fi
  for vv in $order; do
    s=${vv%%:*}; v=${vv##*:}
    echo "# round $r store=$s bin=$v $(date -u +%T) $(uptime)" >> $D/out.txt
    $E2E -pairs 1 -rate 10000 -baseline=false -fastpath -contrib=false -no-write -store $s -tailsift-bin $Q/otelcol-$v >> $D/out.txt 2>&1
  done
done
echo finished >> $D/out.txt
