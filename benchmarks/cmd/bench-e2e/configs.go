package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"text/template"
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

// isTailsift reports whether k is one of tailsift's collectors (the
// processor or the fast path), which have a variant b (-b-bin, -b-set).
func (k kind) isTailsift() bool { return k == kindTailsift || k == kindFastpath }

// runName names a run's collector in logs and notes: its kind, and
// "/b" for variant b.
func runName(k kind, variant string) string {
	if variant == "" {
		return string(k)
	}
	return string(k) + "/" + variant
}

// Settings shared by both sampling configurations.
const (
	maxWait        = 30 * time.Second // tailsift completion.max_wait, contrib decision_wait
	contribTick    = time.Second      // contrib's decision ticker (fixed in v0.161.0)
	fastPercentage = 5.0              // probabilistic policy, unless -fast-percent
	contribTraces  = 2_000_000        // contrib num_traces: far above anything buffered here
)

// contribFeatureGates: usetracestate makes contrib write the OpenTelemetry
// sampling threshold (ot=th) into kept spans, as tailsift does, so the
// sink's adjusted counts mean the same for both; metricstatcountspanssampled
// adds count_spans_sampled, from which the buffered spans are derived.
const contribFeatureGates = "--feature-gates=+processor.tailsamplingprocessor.usetracestate," +
	"+processor.tailsamplingprocessor.metricstatcountspanssampled"

// The decision wait after the root span: tailsift's completion.quiet and
// contrib's decision_wait_after_root_received, the same for both, and the
// sink's --completion (subtracted from the added latency). It depends on
// the workload's shape (-wait overrides it): in the bench shape a trace's
// root comes in its last request, so 2 s is enough; in the sdk shape every
// service sends its own batch, flushed up to 5 s (the BatchSpanProcessor's
// schedule delay) after the span ended, so spans arrive up to 5 s after the
// root (internal/workload TestSDKShapeArrivalAfterRoot), and the wait must
// exceed that or the collectors decide before the trace is complete.
const (
	benchWait = 2 * time.Second
	sdkWait   = 6 * time.Second
)

// decisionWait is the decision wait for the loadgen's shape.
func decisionWait(shape string) time.Duration {
	if shape == "sdk" {
		return sdkWait
	}
	return benchWait
}

// The policies are the same for both collectors (testdata/collector/
// policies.yaml). Both judge latency as contrib does, in whole milliseconds
// with the bound exclusive, so threshold_ms 999 keeps a trace of 1000 ms and
// more: the workload's slow class (root latency >= 1 s).
const slowThresholdMs = 999

// ports are the loopback ports of one run.
type ports struct {
	OTLP, Metrics, Health, Pprof, SinkGRPC, SinkHTTP int
	StoreAPI                                         int // the tailsift extension's retrieval API (-store)
}

// configData fills the collector templates of testdata/collector.
type configData struct {
	Ports                     ports
	Pprof                     bool          // enable the pprof extension
	Rescue                    time.Duration // tailsift's rescue.window; 0: off
	NoLearn                   bool          // tailsift's completion.learn.enabled: false
	FastpathDebug             bool          // the fast path exports into debug (basic, logs at warn: nothing), not otlp_grpc
	WireOut                   bool          // tailsift's processor and fast path: output::exporter to a tailsift exporter (testdata/collector/output.yaml)
	BatchTimeout              time.Duration // tailsift's processor and fast path: output.batch_timeout; 0: the default
	Quiet, MaxWait, AfterRoot time.Duration
	ContribTraces             int
	SlowThresholdMs           int
	BaselinePct               float64
	// Store is the tailsift extension's directory for tailsift's processor
	// and fast path (storage: tailsift); "": no store, the default.
	Store, Compression string
}

// completionSetting is the decision wait of a run: tailsift's
// completion.quiet and contrib's decision_wait_after_root_received (Wait),
// and whether tailsift learns a quiet per route (completion.learn, on by
// default).
type completionSetting struct {
	Wait    time.Duration
	NoLearn bool
	// FastpathDebug: the fast path exports its kept spans into the debug
	// exporter (verbosity basic, which the collector's warn log level
	// silences), the distribution's nearest to nop, instead of otlp_grpc
	// with zstd to the sink: the fast path then outputs nothing, as the
	// otlp → nop baseline, and the sink scores nothing for it.
	FastpathDebug bool
	// WireOut: tailsift's processor and fast path hand their kept spans
	// as bytes to a tailsift exporter whose one member is the sink
	// (output::exporter), not as pdata to otlp_grpc.
	WireOut bool
	// BatchTimeout is tailsift's output.batch_timeout (processor and fast
	// path); 0 leaves the default.
	BatchTimeout time.Duration
	// FastPercent is the probabilistic policy's sampling_percentage for
	// every collector (0: fastPercentage).
	FastPercent float64
}

// fastPercent is the probabilistic policy's sampling_percentage.
func (c completionSetting) fastPercent() float64 { return fastPercentOr(c.FastPercent) }

// fastPercentOr is p, or fastPercentage where p is unset (0): a setting
// built without -fast-percent, a report written before it.
func fastPercentOr(p float64) float64 {
	if p > 0 {
		return p
	}
	return fastPercentage
}

// storeSetting is tailsift's durable store in a run (bench-e2e -store).
type storeSetting struct {
	Dir         string // "": off
	Compression string // zstd or s2
}

// collectorTemplates reads the collector templates in dir
// (<repo>/testdata/collector).
func collectorTemplates(dir string) (*template.Template, error) {
	t, err := template.ParseGlob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, fmt.Errorf("read the collector configurations: %w", err)
	}
	return t, nil
}

// collectorConfig returns the collector YAML of kind k for one run, from
// testdata/collector/bench-<k>.yaml. cs is the decision wait (tailsift's
// completion.quiet, contrib's decision_wait_after_root_received) and
// tailsift's learning; rescue > 0 sets
// tailsift's rescue.window (processor and fast path); st.Dir != "" gives
// them the durable store (testdata/collector/store.yaml).
func collectorConfig(templates *template.Template, k kind, p ports, pprof bool, cs completionSetting, rescue time.Duration, st storeSetting) (string, error) {
	var b strings.Builder
	err := templates.ExecuteTemplate(&b, "bench-"+string(k)+".yaml", configData{
		Ports: p, Pprof: pprof, Rescue: rescue, Store: st.Dir, Compression: st.Compression,
		Quiet: cs.Wait, MaxWait: maxWait, AfterRoot: cs.Wait, NoLearn: cs.NoLearn, FastpathDebug: cs.FastpathDebug, WireOut: cs.WireOut, BatchTimeout: cs.BatchTimeout, ContribTraces: contribTraces,
		SlowThresholdMs: slowThresholdMs, BaselinePct: cs.fastPercent(),
	})
	if err != nil {
		return "", fmt.Errorf("render the %s collector configuration: %w", k, err)
	}
	return b.String(), nil
}
