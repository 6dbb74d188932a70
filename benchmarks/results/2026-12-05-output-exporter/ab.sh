#!/bin/sh
# A/B of output::exporter (W) against the pdata output (P), SDK shape then bench shape.
Q=/tmp/q8; cd /work/main/benchmarks
COMMON="-mode quick -sat=false -drain 3s -idle 1s -profile never -loadgen-bin $Q/tailsift-loadgen -sink-bin $Q/tailsift-sink -contrib-bin ../bin/otelcol-contrib-bench -tailsift-bin /tmp/q10/otelcol-tailsift"
SDK="-shape sdk -pairs 2 -warmup 30s -fastpath"
BENCH="-shape bench -rate 10000 -pairs 2 -warmup 10s -window 20s -fastpath"
for step in "W sdk1" "P sdk1" "W sdk2" "P sdk2" "W bench1" "P bench1"; do
  set -- $step
  case $2 in sdk*) W="$SDK";; *) W="$BENCH";; esac
  case $1 in W) O="-output-exporter tailsift"; T=wire;; *) O=""; T=pdata;; esac
  echo "== $(date +%T) $1 $2 load $(cut -d' ' -f1-3 /proc/loadavg)"
  /tmp/q10/bench-e2e $COMMON $W $O -tag $T-$2 > /tmp/q10/$T-$2.log 2>&1
  grep -A8 "CPU µs/span ratios per round" /tmp/q10/$T-$2.log | tail -4
done
echo "== done $(date +%T)"
