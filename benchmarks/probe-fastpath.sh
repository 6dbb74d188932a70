#!/bin/bash
# probe-fastpath.sh TAG BIN CMD [bench-e2e args]: runs BIN's fast path alone under bench-e2e (one
# round, no processor, contrib or baseline; pass -shape, -warmup, -rate ... as args) and, 25 s
# after its collector starts, runs CMD (a shell command) with $PID set to the collector's pid.
# PROBE_PATH=processor probes BIN's processor path instead (otlp receiver, tailsift processor),
# and PROBE_PATH=contrib contrib's distribution (CONTRIB). (bench-e2e runs the otlp -> nop baseline
# only beside one of them.)
# CMD's output goes to $OUT/TAG.out, bench-e2e's to $OUT/TAG.e2e.log.
# Environment: BENCH_E2E (the bench-e2e binary), LOADGEN and SINK (tailsift-loadgen, -sink),
# CONTRIB (only checked when contrib runs), OUT (default /tmp/probe).
# Example, 20 s of perf at 2 000 SDK spans/s:
#   probe-fastpath.sh low2000 bin/otelcol-tailsift 'perf record -F 4999 -g -p $PID -o /tmp/low.data -- sleep 20' \
#     -shape sdk -warmup 30s -rate 2000 -output-exporter tailsift
set -u
tag=$1 bin=$2 cmd=$3
shift 3
out=${OUT:-/tmp/probe}
path=${PROBE_PATH:-fastpath}
case $path in
fastpath) which=(-fastpath) dir=fastpath ;;
processor) which=(-processor) dir=tailsift ;;
contrib) which=(-contrib) dir=contrib ;;
*) echo "probe-fastpath: PROBE_PATH must be fastpath, processor or contrib, not $path" >&2; exit 2 ;;
esac
mkdir -p "$out"
cd "$(dirname "$0")" || exit 1
"${BENCH_E2E:?}" -mode quick -sat=false -drain 3s -idle 1s -profile never -no-write \
  -loadgen-bin "${LOADGEN:?}" -sink-bin "${SINK:?}" -contrib-bin "${CONTRIB:-../bin/otelcol-contrib-bench}" \
  -tailsift-bin "$bin" -pairs 1 -processor=false -fastpath=false -contrib=false -baseline=false "${which[@]}" "$@" > "$out/$tag.e2e.log" 2>&1 &
e2e=$!
pid=""
while [ -z "$pid" ] && kill -0 $e2e 2>/dev/null; do
  pid=$(pgrep -f -- "--config /tmp/bench-e2e-[0-9]*/pair1-$dir/collector.yaml" | head -1)
  sleep 0.5
done
[ -n "$pid" ] || { echo "probe-fastpath: the collector did not start; see $out/$tag.e2e.log" >&2; wait $e2e; exit 1; }
sleep 25
PID=$pid bash -c "$cmd" > "$out/$tag.out" 2>&1
wait $e2e
