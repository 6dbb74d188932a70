#!/bin/bash
# SDK shape at the users' keep rate (0.01 %) and at the benchmark's (5 %), alternated.
Q=/tmp/q8; cd /work/main/benchmarks
COMMON="-mode quick -sat=false -drain 3s -idle 1s -profile never -loadgen-bin $Q/tailsift-loadgen -sink-bin $Q/tailsift-sink -contrib-bin ../bin/otelcol-contrib-bench -tailsift-bin /tmp/q9/otelcol-tailsift"
uptime > /tmp/q9/keep-uptime.txt
/tmp/q9/bench-e2e $COMMON -shape sdk -pairs 2 -warmup 30s -fastpath -fast-percent 0.01 -tag keep001-sdk > /tmp/q9/keep001.log 2>&1
uptime >> /tmp/q9/keep-uptime.txt
/tmp/q9/bench-e2e $COMMON -shape sdk -pairs 2 -warmup 30s -fastpath -tag keep5-sdk > /tmp/q9/keep5.log 2>&1
uptime >> /tmp/q9/keep-uptime.txt
