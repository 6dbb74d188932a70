#!/bin/sh
# A/B of output::exporter (W) against the pdata output (P) at the users' keep rate (0.01 %), SDK shape, HEAD (eed8310+) binary
Q=/tmp/q8; cd /work/main/benchmarks
COMMON="-mode quick -sat=false -drain 3s -idle 1s -profile never -loadgen-bin $Q/tailsift-loadgen -sink-bin $Q/tailsift-sink -contrib-bin ../bin/otelcol-contrib-bench -tailsift-bin /tmp/q10/otelcol-tailsift-h"
SDK="-shape sdk -pairs 2 -warmup 30s -fastpath -fast-percent 0.01"
for step in "W 1" "P 1" "W 2" "P 2"; do
  set -- $step
  case $1 in W) O="-output-exporter tailsift"; T=wire001;; *) O=""; T=pdata001;; esac
  echo "== $(date +%T) $1 $2 load $(cut -d' ' -f1-3 /proc/loadavg)"
  /tmp/q10/bench-e2e $COMMON $SDK $O -tag $T-sdk$2 > /tmp/q10/$T-sdk$2.log 2>&1
  grep -A5 "CPU µs/span ratios per round" /tmp/q10/$T-sdk$2.log | tail -2
done
echo "== done $(date +%T)"
