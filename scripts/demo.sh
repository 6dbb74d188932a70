#!/usr/bin/env bash
# make demo: Jaeger, the tailsift collector and the load generator, together
# on loopback. Kept traces (errors, slow, anomalies, a 1% baseline) go to
# Jaeger over OTLP. Ctrl-C stops all three.
set -euo pipefail

: "${TAILSIFT_BIN:=bin/otelcol-tailsift}"
: "${JAEGER_BIN:=bin/jaeger}"
: "${LOADGEN_BIN:=bin/tailsift-loadgen}"
: "${DEMO_RATE:=300}"       # offered spans per second
: "${DEMO_DURATION:=1h}"    # how long the load generator starts traces
LOGS=data/demo
mkdir -p "$LOGS"

for port in 4317 4318 4327 8888 13133 13134 16685 16686; do
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		echo "demo: port $port on 127.0.0.1 is in use (another collector or Jaeger?); stop it first" >&2
		exit 1
	fi
done

pids=()
cleanup() {
	trap - EXIT INT TERM
	# The load generator first, Jaeger last, so the collector flushes into it.
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		kill "${pids[i]}" 2>/dev/null || true
		wait "${pids[i]}" 2>/dev/null || true
	done
}
trap cleanup EXIT INT TERM

# wait_http URL SECONDS WHAT LOG: poll until URL answers 200.
wait_http() {
	for _ in $(seq $(($2 * 5))); do
		if curl -fsS -o /dev/null "$1" 2>/dev/null; then return 0; fi
		sleep 0.2
	done
	echo "demo: $3 did not come up; its log ($4):" >&2
	tail -20 "$4" >&2
	exit 1
}

"$JAEGER_BIN" --config config/demo-jaeger.yaml >"$LOGS/jaeger.log" 2>&1 &
pids+=($!)
wait_http http://127.0.0.1:16686/api/services 60 Jaeger "$LOGS/jaeger.log"

"$TAILSIFT_BIN" --config config/demo.yaml >"$LOGS/collector.log" 2>&1 &
pids+=($!)
wait_http http://127.0.0.1:13133/ 60 "the collector" "$LOGS/collector.log"

STATUS=http://127.0.0.1:13134/status
cat <<MSG

  tailsift demo: the load generator sends $DEMO_RATE spans/s of 50 services; tailsift keeps
  errors, slow traces (> 1 s), anomalies and 1% of the rest, and exports them to Jaeger.

  Status page: $STATUS/   (live decisions; click a kept error or anomaly to see its waterfall)
  Kept traces: $STATUS/trace.html   (recent errors and anomalies; any trace by ID)
  Jaeger API:  http://127.0.0.1:16686/api/traces?service=svc-00&tags=%7B%22sampling.rule%22%3A%22errors%22%7D
               (kept roots carry sampling.rule, each span w3c.tracestate ot=th:…)
  Self-metrics http://127.0.0.1:8888/metrics   (dashboard: docs/dashboards/tailsift.json)
  Logs:        $LOGS/

  Jaeger here is v1.75.0 built from the Go module proxy, which has no UI assets: its page
  at :16686 is a placeholder. The trace view above draws the same traces; add
  &source=jaeger to its URL to read one from Jaeger's API. Ctrl-C stops the demo.

MSG

# sample_trace prints a trace view URL once the status page lists a kept
# error or anomaly (the first ones come a few seconds into the load).
sample_trace() {
	for _ in $(seq 60); do
		sleep 1
		id=$(curl -fsS http://127.0.0.1:13134/api/v1/status 2>/dev/null | grep -o '"trace_id":"[0-9a-f]*"' | head -1 | cut -d'"' -f4) || true
		if [ -n "$id" ]; then
			echo "  A kept trace: $STATUS/trace.html?id=$id"
			echo "      in Jaeger: $STATUS/trace.html?id=$id&source=jaeger"
			return
		fi
	done
}
sample_trace &
pids+=($!)

# In the background, so that the trap runs as soon as a signal comes.
"$LOADGEN_BIN" --endpoint 127.0.0.1:4317 --rate "$DEMO_RATE" --duration "$DEMO_DURATION" --retry &
pids+=($!)
wait "$!"
echo "demo: the load generator has finished; Jaeger and the collector keep running until Ctrl-C"
wait
