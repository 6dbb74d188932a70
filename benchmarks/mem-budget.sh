#!/usr/bin/env bash
# mem-budget.sh: RSS of a tailsift collector against its memory budget under
# overload, and after the load stops (issue #9, defect 11).
#
#   benchmarks/mem-budget.sh BIN KIND OUT [RATE [YAML]]
#
# BIN is an otelcol-tailsift binary, KIND is processor (otlp receiver →
# tailsift processor) or fastpath (tailsift receiver), OUT a file prefix.
# The collector runs with buffer.max_bytes 64MiB and max_queued_bytes 64MiB
# and quiet 10s. RATE spans/s (default 90000) is about three times what the
# collector takes in on one shared core, and wants several times the buffer
# budget. It samples VmRSS from /proc and the buffer's self-metrics every
# second: 10 s idle, 60 s of load, 70 s after the load generator exits (t
# is seconds since the start, after seconds since the load ended). It writes
# OUT.yaml (the config), OUT.tsv (the samples), OUT.log (the collector's
# stderr, with GODEBUG=gctrace=1), OUT.loadgen, OUT.txt (the summary), and
# OUT.smaps and OUT.metrics (smaps_rollup and a scrape, 60 s after the load),
# OUT.idle.smaps, OUT.idle.heap, OUT.idle.memstats and OUT.memstats (the Go runtime's MemStats, from the
# pprof extension's heap?debug=1, at the end of the idle phase and 60 s after
# the load) and OUT.heap (a heap profile 60 s after: go tool pprof BIN OUT.heap).
# YAML, when given, is more of the tailsift block, one flow mapping a line,
# e.g. '    decision_cache: {kept_max_bytes: 64KiB}'.
# The collector runs on CPU 0, the load generator and the sink on CPU 1.
set -euo pipefail
bin=$1 kind=$2 out=$3 rate=${4:-90000} extra=${5:-}
here=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"' EXIT
(cd "$here" && go build -o "$tmp/loadgen" ./cmd/tailsift-loadgen && go build -o "$tmp/sink" ./cmd/tailsift-sink)

tailsift='    completion: {quiet: 10s, max_wait: 30s}
    buffer: {max_bytes: 64MiB, max_queued_bytes: 64MiB}
    policies:
      - {name: errors,   type: status_code,   status_code:   {status_codes: [ERROR]}}
      - {name: slow,     type: latency,       latency:       {threshold_ms: 999}}
      - {name: baseline, type: probabilistic, probabilistic: {sampling_percentage: 5}}'
[ -n "$extra" ] && tailsift="$tailsift
$extra"
{
	echo "receivers:"
	if [ "$kind" = fastpath ]; then
		printf '  tailsift:\n    protocols:\n      grpc: {endpoint: 127.0.0.1:14317}\n%s\n' "$tailsift"
	else
		printf '  otlp:\n    protocols:\n      grpc: {endpoint: 127.0.0.1:14317}\n'
		printf 'processors:\n  tailsift:\n%s\n' "$tailsift"
	fi
	cat <<'EOF'
extensions:
  pprof: {endpoint: 127.0.0.1:11777}
exporters:
  otlp_grpc:
    endpoint: 127.0.0.1:14327
    compression: zstd
    tls: {insecure: true}
service:
  extensions: [pprof]
  telemetry:
    logs: {level: warn}
    metrics:
      readers:
        - pull: {exporter: {prometheus: {host: 127.0.0.1, port: 18888}}}
  pipelines:
    traces:
EOF
	if [ "$kind" = fastpath ]; then
		printf '      receivers: [tailsift]\n'
	else
		printf '      receivers: [otlp]\n      processors: [tailsift]\n'
	fi
	printf '      exporters: [otlp_grpc]\n'
} >"$out.yaml"

taskset -c 1 "$tmp/sink" -quiet -grpc 127.0.0.1:14327 -http 127.0.0.1:14328 >/dev/null 2>&1 &
GODEBUG=gctrace=1 taskset -c 0 "$bin" --config "$out.yaml" 2>"$out.log" &
pid=$!
for _ in $(seq 50); do curl -fs 127.0.0.1:18888/metrics >/dev/null && break; sleep 0.2; done

metric() { # the sum of the samples of metric $1 in the scrape $2
	awk -v m="$1" '$1 ~ "^"m"(\\{|$)" {s += $NF} END {printf "%d", s}' "$2"
}
start=$(date +%s.%N)
sample() { # one line: seconds, phase, seconds after the load, RSS MB, buffered MiB, arena mapped MiB, Go heap MiB, refused spans
	local phase=$1 after=${2:-0} t rss
	t=$(echo "$(date +%s.%N) - $start" | bc -l)
	rss=$(awk '/^VmRSS/ {print $2}' /proc/$pid/status)
	curl -fs 127.0.0.1:18888/metrics >"$tmp/m" || : >"$tmp/m"
	printf '%.1f\t%s\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%d\n' "$t" "$phase" "$after" "$(echo "$rss*1024/1000000" | bc -l)" \
		"$(echo "$(metric 'otelcol_(processor|receiver)_tailsift_buffered_bytes' "$tmp/m")/1048576" | bc -l)" \
		"$(echo "$(metric 'otelcol_(processor|receiver)_tailsift_arena_mapped_bytes' "$tmp/m")/1048576" | bc -l)" \
		"$(echo "$(metric 'otelcol_process_runtime_heap_alloc_bytes' "$tmp/m")/1048576" | bc -l)" \
		"$(metric 'otelcol_(processor|receiver)_tailsift_spans_refused' "$tmp/m")"
}
printf 't\tphase\tafter\trss_mb\tbuffered_mib\tarena_mib\theap_mib\trefused\n' >"$out.tsv"
memstats() { # the MemStats block of the heap profile in text form
	curl -fs '127.0.0.1:11777/debug/pprof/heap?debug=1' | sed -n '/^# runtime.MemStats/,$p' >"$1" || :
}
for _ in $(seq 10); do sample idle >>"$out.tsv"; sleep 1; done
memstats "$out.idle.memstats"
cat /proc/$pid/smaps_rollup >"$out.idle.smaps" 2>/dev/null || :
curl -fs -o "$out.idle.heap" 127.0.0.1:11777/debug/pprof/heap || :
taskset -c 1 "$tmp/loadgen" -endpoint 127.0.0.1:14317 -rate "$rate" -duration 60s -drain 0s -quiet \
	-mix error=2,slow=1,anomaly=0.5,huge=0.01,late=0 >"$out.loadgen" 2>&1 &
lg=$!
cpu() { awk '{printf "%.2f", ($14 + $15) / 100}' /proc/$pid/stat; } # user + system seconds (USER_HZ 100)
cpu0=$(cpu)
while kill -0 $lg 2>/dev/null; do sample load >>"$out.tsv"; sleep 1; done
wait $lg || true
cpu1=$(cpu)
stop=$(date +%s.%N)
while :; do
	after=$(echo "$(date +%s.%N) - $stop" | bc -l)
	sample after "$after" >>"$out.tsv"
	if [ ! -e "$out.smaps" ] && [ "$(echo "$after >= 60" | bc)" = 1 ]; then
		# Where the RSS is a minute after the load: file-backed vs anonymous,
		# and the Go runtime's own figures.
		cat /proc/$pid/smaps_rollup >"$out.smaps" 2>/dev/null || :
		cp "$tmp/m" "$out.metrics"
		memstats "$out.memstats"
		curl -fs -o "$out.heap" 127.0.0.1:11777/debug/pprof/heap || :
	fi
	[ "$(echo "$after > 70" | bc)" = 1 ] && break
	sleep 1
done
kill "$pid"
wait "$pid" || true
accepted=$(awk '$1 == "accepted" {print $2}' "$out.loadgen")

# RSS in MB (10^6 bytes), budgets in MiB; the budget is 128 MiB = 134.2 MB.
awk -F'\t' -v kind="$kind" -v rate="$rate" -v cpu="$(echo "$cpu1 - $cpu0" | bc -l)" -v acc="$accepted" 'NR > 1 {
	if ($2 == "idle") idle = $4
	if ($2 != "idle" && $4 > peak) peak = $4
	if ($2 == "load") { if ($5 > bpeak) bpeak = $5; if ($6 > apeak) apeak = $6 }
	if ($2 == "after" && $3 >= 60 && !done) { at60 = $4; b60 = $5 * 1.048576; a60 = $6; done = 1 }
} END {
	budget = 128 * 1.048576
	printf "%s at %d spans/s: idle RSS %.1f MB, peak RSS %.1f MB (idle + %.2f x budget of %.1f MB; target <= 1.2), ", kind, rate, idle, peak, (peak - idle) / budget, budget
	printf "RSS 60 s after the load %.1f MB with buffered %.1f MB (%.0f %% above idle + buffered; target <= 25 %%), ", at60, b60, 100 * (at60 / (idle + b60) - 1)
	printf "peak buffered %.1f MiB, peak arena mapped %.1f MiB, arena mapped at +60 s %.1f MiB; ", bpeak, apeak, a60
	printf "collector CPU in the load %.1f s for %d accepted spans: %.2f us/span\n", cpu, acc, acc ? cpu * 1e6 / acc : 0
}' "$out.tsv" | tee "$out.txt"
