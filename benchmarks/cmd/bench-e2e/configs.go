package main

import (
	"fmt"
	"strings"
	"time"
)

type kind string

const (
	kindTailsift kind = "tailsift"
	kindContrib  kind = "contrib"
	kindBaseline kind = "baseline"
	// kindFastpath: the tailsift receiver (raw OTLP bytes buffered, only
	// kept traces decoded) straight into otlp_grpc, no processor.
	kindFastpath kind = "fastpath"
)

// Settings shared by both sampling configurations.
const (
	quiet          = 2 * time.Second  // tailsift completion.quiet
	maxWait        = 30 * time.Second // tailsift completion.max_wait, contrib decision_wait
	afterRoot      = 2 * time.Second  // contrib decision_wait_after_root_received
	contribTick    = time.Second      // contrib's decision ticker (fixed in v0.161.0)
	fastPercentage = 5.0              // probabilistic policy
	contribTraces  = 2_000_000        // contrib num_traces: far above anything buffered here
)

// contribFeatureGates: usetracestate makes contrib write the OpenTelemetry
// sampling threshold (ot=th) into kept spans, as tailsift does, so the
// sink's adjusted counts mean the same for both; metricstatcountspanssampled
// adds count_spans_sampled, from which the buffered spans are derived.
const contribFeatureGates = "--feature-gates=+processor.tailsamplingprocessor.usetracestate," +
	"+processor.tailsamplingprocessor.metricstatcountspanssampled"

// policiesYAML is the same for both collectors. Both judge latency as
// contrib does, in whole milliseconds with the bound exclusive, so
// threshold_ms 999 keeps a trace of 1000 ms and more: the workload's slow
// class (root latency >= 1 s).
var policiesYAML = fmt.Sprintf(`    policies:
      - {name: errors,   type: status_code,   status_code:   {status_codes: [ERROR]}}
      - {name: slow,     type: latency,       latency:       {threshold_ms: 999}}
      - {name: baseline, type: probabilistic, probabilistic: {sampling_percentage: %g}}
`, fastPercentage)

// ports are the loopback ports of one run.
type ports struct {
	OTLP, Metrics, Health, Pprof, SinkGRPC, SinkHTTP int
}

// collectorConfig returns the collector YAML for one run.
// rescue > 0 sets tailsift's rescue.window (processor and fast path).
func collectorConfig(k kind, p ports, pprof bool, rescue time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# written by benchmarks/cmd/bench-e2e (%s)\n", k)
	b.WriteString("extensions:\n")
	fmt.Fprintf(&b, "  health_check: {endpoint: 127.0.0.1:%d}\n", p.Health)
	exts := "[health_check]"
	if pprof {
		fmt.Fprintf(&b, "  pprof: {endpoint: 127.0.0.1:%d}\n", p.Pprof)
		exts = "[health_check, pprof]"
	}
	receiver := "otlp"
	if k == kindFastpath {
		receiver = "tailsift"
		fmt.Fprintf(&b, "receivers:\n  tailsift:\n    protocols:\n      grpc: {endpoint: 127.0.0.1:%d}\n    completion: {quiet: %s, max_wait: %s}\n%s%s", p.OTLP, quiet, maxWait, rescueYAML(rescue), policiesYAML)
	} else {
		fmt.Fprintf(&b, "receivers:\n  otlp:\n    protocols:\n      grpc: {endpoint: 127.0.0.1:%d}\n", p.OTLP)
	}
	proc := ""
	exporter := "otlp_grpc"
	switch k {
	case kindTailsift:
		proc = "tailsift"
		fmt.Fprintf(&b, "processors:\n  tailsift:\n    completion: {quiet: %s, max_wait: %s}\n%s%s", quiet, maxWait, rescueYAML(rescue), policiesYAML)
	case kindContrib:
		proc = "tail_sampling"
		fmt.Fprintf(&b, `processors:
  tail_sampling:
    decision_wait: %s
    decision_wait_after_root_received: %s
    num_traces: %d
    sample_on_first_match: true
    decision_cache: {sampled_cache_size: 100000, non_sampled_cache_size: 1000000}
%s`, maxWait, afterRoot, contribTraces, policiesYAML)
	case kindBaseline:
		exporter = "nop"
	}
	b.WriteString("exporters:\n")
	if exporter == "nop" {
		b.WriteString("  nop: {}\n")
	} else {
		fmt.Fprintf(&b, "  otlp_grpc:\n    endpoint: 127.0.0.1:%d\n    compression: zstd\n    tls: {insecure: true}\n", p.SinkGRPC)
	}
	fmt.Fprintf(&b, `service:
  extensions: %s
  telemetry:
    logs: {level: warn}
    metrics:
      readers:
        - pull: {exporter: {prometheus: {host: 127.0.0.1, port: %d}}}
  pipelines:
    traces:
      receivers: [%s]
`, exts, p.Metrics, receiver)
	if proc != "" {
		fmt.Fprintf(&b, "      processors: [%s]\n", proc)
	}
	fmt.Fprintf(&b, "      exporters: [%s]\n", exporter)
	return b.String()
}

// rescueYAML is tailsift's rescue block, empty when rescue is off. Its
// budget is far above what a run holds, so that the window alone decides.
func rescueYAML(window time.Duration) string {
	if window <= 0 {
		return ""
	}
	return fmt.Sprintf("    rescue: {window: %s, max_bytes: 2GiB}\n", window)
}
