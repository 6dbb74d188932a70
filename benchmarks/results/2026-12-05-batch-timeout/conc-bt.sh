#!/bin/bash
cd /work/main/benchmarks
COMMON="-mode quick -sat=false -drain 3s -idle 1s -profile never -loadgen-bin /tmp/q8/tailsift-loadgen -sink-bin /tmp/q8/tailsift-sink -contrib-bin ../bin/otelcol-contrib-bench -tailsift-bin /tmp/q11/otelcol-tailsift -concurrent -fastpath"
/tmp/q11/bench-e2e $COMMON -shape sdk -pairs 3 -warmup 30s -output-exporter tailsift -output-batch-timeout 200ms -tag conc-wire-bt200-sdk > /tmp/q11/conc-wire-bt200-sdk.log 2>&1
/tmp/q11/bench-e2e $COMMON -shape sdk -pairs 3 -warmup 30s -output-exporter tailsift -output-batch-timeout 100ms -tag conc-wire-bt100-sdk > /tmp/q11/conc-wire-bt100-sdk.log 2>&1
