#!/bin/bash
# A/B of the output batch timeout (50 vs 200 ms) on the fast path with output.exporter, SDK shape, under perf
# (perfwire.sh runs the eed8310 build, /tmp/q10/otelcol-tailsift-h; out50.yaml is testdata/collector/output.yaml as of 49a1538)
for v in 50 200 200 50 50 200; do
  cp /tmp/q11/out$v.yaml /work/main/testdata/collector/output.yaml
  n=$((n+1))
  $(dirname "$0")/../2026-12-05-output-exporter/perfwire.sh bt$v-$n -shape sdk -warmup 30s -output-exporter tailsift
  grep -- "->" /tmp/q10/perf/bt$v-$n.e2e.log | sed "s/^/bt$v-$n /"
done
cp /tmp/q11/out50.yaml /work/main/testdata/collector/output.yaml
