package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"text/template"
	"time"
)

// TestSmokeE2E runs the runner's whole pipeline (collector pinned to CPU 0,
// loadgen and sink on CPU 1, counted window, decision wait, SIGTERM,
// scoring, report rendering) for a couple of seconds at a low rate. It
// needs bin/otelcol-tailsift (or $TAILSIFT_BIN) and builds the loadgen and
// the sink into a temporary directory; contrib and the baseline run when
// bin/otelcol-contrib-bench exists (`make bench-contrib-dist`), and must
// when $TAILSIFT_CONTRIB_BIN names it, as `make test` does.
func TestSmokeE2E(t *testing.T) {
	repo, err := findRepo()
	if err != nil {
		t.Fatal(err)
	}
	ts := os.Getenv("TAILSIFT_BIN")
	if ts == "" {
		ts = filepath.Join(repo, "bin", "otelcol-tailsift")
	}
	if !exists(ts) {
		t.Skipf("skipping: %s is not built (run `make build` or set TAILSIFT_BIN)", ts)
	}
	// make test sets TAILSIFT_CONTRIB_BIN after building the comparison
	// distribution, and then contrib and the baseline must run too.
	contrib, required := os.LookupEnv("TAILSIFT_CONTRIB_BIN")
	if !required {
		contrib = filepath.Join(repo, "bin", "otelcol-contrib-bench")
	}
	kinds := []kind{kindTailsift, kindFastpath} // fastpath: the tailsift receiver, same binary
	switch {
	case exists(contrib):
		kinds = append(kinds, kindContrib, kindBaseline)
	case required:
		t.Fatalf("TAILSIFT_CONTRIB_BIN=%s does not exist", contrib)
	default:
		t.Logf("%s not built (make bench-contrib-dist): running tailsift only", contrib)
	}
	o := options{Repo: repo, TailsiftBin: ts, ContribBin: contrib}
	e, cleanup, err := setup(&o, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	defer e.killAll()
	if e.taskset == "" {
		t.Log("taskset not found: running unpinned")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep := &report{Opts: o, Machine: readMachine("test"), Started: time.Now(), SatRate: map[kind]satOutcome{}}
	rep.Opts.Rate, rep.Opts.Pairs = 2000, 1
	for _, k := range kinds {
		r, err := e.run(ctx, runSpec{Kind: k, Label: "smoke", Rate: 2000, Warmup: time.Second, Window: 2 * time.Second,
			Drain: time.Second, Seed: 1, Idle: 300 * time.Millisecond})
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		t.Logf("%s: %.0f spans accepted in %.1fs, %.2f µs/span, RSS %.0f MB, buffered %.0f spans, p99 %s ms, problems %v",
			k, r.WindowAccepted, r.WindowS, r.CPUMicrosPerSpan, r.RSSMeanMB, r.BufferedSpansMean, optf(r.P99AddedMs, "%.0f"), r.Problems)
		if r.WindowAccepted <= 0 || r.CPUSeconds < 0 || r.RSSMeanMB <= 0 {
			t.Errorf("%s: window not measured: %+v", k, r)
		}
		if r.Loadgen == nil || r.Loadgen.AcceptedSpans != r.Loadgen.OfferedSpans || r.Loadgen.OfferedSpans == 0 {
			t.Errorf("%s: loadgen summary %+v", k, r.Loadgen)
		}
		if k != kindBaseline {
			if r.Score == nil || r.Score.Received.Spans == 0 {
				t.Fatalf("%s: sink received nothing: %+v", k, r.Score)
			}
			if c := r.Score.Class("error"); c == nil || (c.TracesSent > 0 && c.TracesKept == 0) {
				t.Errorf("%s: no error trace kept: %+v", k, c)
			}
			if r.UndecidedAtStop > 0 {
				t.Errorf("%s: %.0f traces undecided", k, r.UndecidedAtStop)
			}
		}
		rep.Side = append(rep.Side, r)
		rep.Sat = append(rep.Sat, judge(r))
	}
	// The same collectors at once (-concurrent), with a variant b of the
	// fast path (-b-bin: here a link to the same binary): every run
	// measured, variant b's from its own binary and directory, the windows
	// begun together (the barrier holds the loads until every collector is
	// up), and no two runs on the same port.
	e.bBin = filepath.Join(t.TempDir(), "otelcol-b")
	if err := os.Symlink(ts, e.bBin); err != nil {
		t.Fatal(err)
	}
	specs := make([]runSpec, len(kinds))
	for i, k := range kinds {
		specs[i] = runSpec{Kind: k, Label: "smokec", Rate: 2000, Warmup: time.Second, Window: 2 * time.Second,
			Drain: time.Second, Seed: 1, Idle: 300 * time.Millisecond}
	}
	vb := specs[1]
	vb.Variant = "b"
	specs = append(specs, vb)
	rs, err := concurrently(ctx, specs, e.run)
	if err != nil {
		t.Fatalf("concurrent: %v", err)
	}
	if b := rs[len(rs)-1]; b.Variant != "b" || b.Bin != e.bBin || rs[1].Bin != ts {
		t.Errorf("variant b ran %q (%q), variant a %q", b.Bin, b.Variant, rs[1].Bin)
	}
	var first, last time.Time
	for i, r := range rs {
		if r.Kind != specs[i].Kind || r.WindowAccepted <= 0 || r.Loadgen == nil || r.Loadgen.AcceptedSpans != r.Loadgen.OfferedSpans {
			t.Errorf("concurrent %s: not measured: %+v", runName(specs[i].Kind, specs[i].Variant), r)
		}
		if r.Kind != kindBaseline && (r.Score == nil || r.Score.Received.Spans == 0) {
			t.Errorf("concurrent %s: sink received nothing", r.Kind)
		}
		ws, err := time.Parse(time.RFC3339Nano, r.WindowStart)
		if err != nil {
			t.Fatalf("concurrent %s: window start %q: %v", r.Kind, r.WindowStart, err)
		}
		if first.IsZero() || ws.Before(first) {
			first = ws
		}
		if ws.After(last) {
			last = ws
		}
	}
	if d := last.Sub(first); d > 2*time.Second {
		t.Errorf("concurrent windows began %v apart", d)
	}
	t.Logf("concurrent: %d collectors, windows began within %v", len(rs), last.Sub(first))
	rep.Finished = time.Now()
	md := rep.markdown()
	if !strings.Contains(md, "collector CPU µs / accepted span") {
		t.Errorf("report lacks the CPU row:\n%s", md)
	}
	if !strings.Contains(md, "| fastpath / contrib |") && slices.Contains(kinds, kindContrib) {
		t.Errorf("report lacks the fastpath columns:\n%s", md)
	}
	if svg := rep.svg(); !strings.HasPrefix(svg, "<svg") || !strings.HasSuffix(svg, "</svg>\n") {
		t.Errorf("bad svg")
	}
}

func TestParseProm(t *testing.T) {
	in := `# HELP x
otelcol_receiver_accepted_spans{receiver="otlp",transport="grpc"} 150001
otelcol_processor_tailsift_spans_decided{decision="drop"} 135067
otelcol_processor_tailsift_spans_decided{decision="keep"} 12844
otelcol_processor_tailsift_late_spans{decision="keep"} 58
otelcol_processor_tailsift_late_spans{decision="drop"} 554
otelcol_processor_tailsift_spans_received 150001
otelcol_processor_tailsift_buffered_traces 105
otelcol_processor_tailsift_early_decisions{reason="memory"} 0
otelcol_process_memory_rss 1.52682496e+08
`
	ss, err := parseProm(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	m := &metrics{samples: ss}
	if got := m.sum(mAccepted); got != 150001 {
		t.Errorf("accepted %v", got)
	}
	if got := m.sum(mTSDecided, "decision", "keep"); got != 12844 {
		t.Errorf("keep %v", got)
	}
	if got, ok := bufferedSpans(kindTailsift, m); !ok || got != 150001-135067-12844-58-554 {
		t.Errorf("buffered %v %v", got, ok)
	}
	if got := m.sum("otelcol_process_memory_rss"); got != 152682496 {
		t.Errorf("rss %v", got)
	}
	if !m.has(mTSEarly) || m.has("nope") {
		t.Error("has")
	}
	// The fast-path receiver exports the same counters under otelcol_receiver_tailsift_.
	fast, err := parseProm(strings.NewReader(strings.ReplaceAll(in, "otelcol_processor_tailsift_", "otelcol_receiver_tailsift_")))
	if err != nil {
		t.Fatal(err)
	}
	fm := &metrics{samples: fast}
	if got, ok := bufferedSpans(kindFastpath, fm); !ok || got != 150001-135067-12844-58-554 {
		t.Errorf("fastpath buffered %v %v", got, ok)
	}
	if got, ok := bufferedTraces(kindFastpath, fm); !ok || got != 105 {
		t.Errorf("fastpath buffered traces %v %v", got, ok)
	}
	if _, ok := bufferedSpans(kindTailsift, fm); ok {
		t.Error("tailsift must not read the receiver's metrics")
	}
}

func TestJudgeAndAggregate(t *testing.T) {
	p99 := 50.0
	ok := &runResult{Kind: kindTailsift, Rate: 1000, WindowAcceptedRate: 1000, P99AddedMs: &p99,
		Loadgen: &loadgenSummary{OfferedSpans: 100, AcceptedSpans: 100}}
	if st := judge(ok); !st.Pass {
		t.Errorf("should pass: %s", st.Reason)
	}
	bad := *ok
	bad.Loadgen = &loadgenSummary{OfferedSpans: 100, AcceptedSpans: 90, RefusedSpans: 10}
	bad.EarlyMemory = 3
	if st := judge(&bad); st.Pass || !strings.Contains(st.Reason, "accepted 90.00%") || !strings.Contains(st.Reason, "memory") {
		t.Errorf("should fail: %+v", st.Reason)
	}
	slow := 1500.0
	c := *ok
	c.Kind, c.P99AddedMs = kindContrib, &slow
	if st := judge(&c); !st.Pass {
		t.Errorf("contrib 1.5 s is within its 2 s limit: %s", st.Reason)
	}
	runs := []*runResult{{Kind: kindTailsift, CPUMicrosPerSpan: 3}, {Kind: kindTailsift, CPUMicrosPerSpan: 1}, {Kind: kindTailsift, CPUMicrosPerSpan: 2}, {Kind: kindContrib, CPUMicrosPerSpan: 9}}
	a := aggregate(runs, kindTailsift, func(r *runResult) (float64, bool) { return positive(r.CPUMicrosPerSpan) })
	if a.n != 3 || a.med != 2 || a.min != 1 || a.max != 3 {
		t.Errorf("aggregate %+v", a)
	}
	if got := a.cell("%.1f"); got != "2.0 [1.0–3.0]" {
		t.Errorf("cell %q", got)
	}
}

// testConfigs are the repository's collector templates.
func testConfigs(t *testing.T) *template.Template {
	t.Helper()
	configs, err := collectorTemplates(filepath.Join("..", "..", "..", "testdata", "collector"))
	if err != nil {
		t.Fatal(err)
	}
	return configs
}

func TestCollectorConfig(t *testing.T) {
	configs := testConfigs(t)
	p := ports{OTLP: 1, Metrics: 2, Health: 3, Pprof: 4, SinkGRPC: 5, SinkHTTP: 6}
	for k, want := range map[kind][]string{
		kindTailsift: {"tailsift:", "quiet: 2s, max_wait: 30s", "sampling_percentage: 5", "compression: zstd", "processors: [tailsift]"},
		kindContrib:  {"decision_wait: 30s", "decision_wait_after_root_received: 2s", "num_traces: 2000000", "processors: [tail_sampling]"},
		kindBaseline: {"nop: {}", "exporters: [nop]"},
		kindFastpath: {"receivers:\n  tailsift:\n    protocols:\n      grpc: {endpoint: 127.0.0.1:1}", "quiet: 2s, max_wait: 30s", "sampling_percentage: 5",
			"receivers: [tailsift]", "exporters: [otlp_grpc]", "compression: zstd"},
	} {
		cfg, err := collectorConfig(configs, k, p, k == kindTailsift, completionSetting{Wait: benchWait}, 0, storeSetting{})
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if !strings.Contains(cfg, w) {
				t.Errorf("%s config lacks %q:\n%s", k, w, cfg)
			}
		}
		if k == kindFastpath && (strings.Contains(cfg, "processors") || strings.Contains(cfg, "otlp:\n")) {
			t.Errorf("fastpath config has a processor or the otlp receiver:\n%s", cfg)
		}
		if strings.Contains(cfg, "storage") {
			t.Errorf("%s config has a store without -store:\n%s", k, cfg)
		}
	}
}

// TestCollectorConfigStore renders tailsift's processor and fast path with
// the durable store (-store s2).
func TestCollectorConfigStore(t *testing.T) {
	configs := testConfigs(t)
	p := ports{OTLP: 1, Metrics: 2, Health: 3, Pprof: 4, SinkGRPC: 5, SinkHTTP: 6, StoreAPI: 7}
	for _, k := range []kind{kindTailsift, kindFastpath} {
		cfg, err := collectorConfig(configs, k, p, false, completionSetting{Wait: benchWait}, 0, storeSetting{Dir: "/tmp/run/store", Compression: "s2"})
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range []string{"  tailsift:\n    endpoint: 127.0.0.1:7\n    directory: /tmp/run/store\n", "compression: s2",
			"    storage: tailsift\n", "extensions: [health_check, tailsift]"} {
			if !strings.Contains(cfg, w) {
				t.Errorf("%s config lacks %q:\n%s", k, w, cfg)
			}
		}
	}
}

// TestCollectorConfigCompletion renders the decision wait of each shape,
// the same for every sampling collector, and tailsift without learning.
func TestCollectorConfigCompletion(t *testing.T) {
	configs := testConfigs(t)
	p := ports{OTLP: 1, Metrics: 2, Health: 3, Pprof: 4, SinkGRPC: 5, SinkHTTP: 6}
	for _, tc := range []struct {
		name    string
		cs      completionSetting
		want    map[kind]string
		notWant string
	}{
		{"bench shape", completionSetting{Wait: decisionWait("bench")}, map[kind]string{
			kindTailsift: "completion: {quiet: 2s, max_wait: 30s}", kindFastpath: "completion: {quiet: 2s, max_wait: 30s}",
			kindContrib: "decision_wait_after_root_received: 2s"}, "learn"},
		{"sdk shape", completionSetting{Wait: decisionWait("sdk")}, map[kind]string{
			kindTailsift: "completion: {quiet: 6s, max_wait: 30s}", kindFastpath: "completion: {quiet: 6s, max_wait: 30s}",
			kindContrib: "decision_wait_after_root_received: 6s"}, "learn"},
		{"no learning", completionSetting{Wait: 6 * time.Second, NoLearn: true}, map[kind]string{
			kindTailsift: "completion: {quiet: 6s, max_wait: 30s, learn: {enabled: false}}",
			kindFastpath: "completion: {quiet: 6s, max_wait: 30s, learn: {enabled: false}}",
			kindContrib:  "decision_wait_after_root_received: 6s"}, ""},
		{"fast percentage", completionSetting{Wait: 2 * time.Second, FastPercent: 0.01}, map[kind]string{
			kindTailsift: "sampling_percentage: 0.01}", kindFastpath: "sampling_percentage: 0.01}", kindContrib: "sampling_percentage: 0.01}"}, "sampling_percentage: 5"},
		{"fast path into debug", completionSetting{Wait: 2 * time.Second, FastpathDebug: true}, map[kind]string{
			kindFastpath: "exporters:\n  debug: {verbosity: basic}\nservice:", kindTailsift: "exporters: [otlp_grpc]"}, ""},
		{"output exporter", completionSetting{Wait: 2 * time.Second, WireOut: true}, map[kind]string{
			kindFastpath: "output: {exporter: tailsift/sink}", kindTailsift: "exporters: [tailsift/sink]"}, "otlp_grpc"},
		{"batch timeout", completionSetting{Wait: 2 * time.Second, BatchTimeout: 200 * time.Millisecond}, map[kind]string{
			kindFastpath: "output: {batch_timeout: 200ms}", kindTailsift: "output: {batch_timeout: 200ms}"}, "batch_timeout: 0"},
		{"output exporter and batch timeout", completionSetting{Wait: 2 * time.Second, WireOut: true, BatchTimeout: 200 * time.Millisecond}, map[kind]string{
			kindFastpath: "output: {exporter: tailsift/sink, batch_timeout: 200ms}", kindTailsift: "output: {exporter: tailsift/sink, batch_timeout: 200ms}"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, w := range tc.want {
				cfg, err := collectorConfig(configs, k, p, false, tc.cs, 0, storeSetting{})
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(cfg, w) {
					t.Errorf("%s config lacks %q:\n%s", k, w, cfg)
				}
				if tc.notWant != "" && strings.Contains(cfg, tc.notWant) {
					t.Errorf("%s config has %q:\n%s", k, tc.notWant, cfg)
				}
			}
		})
	}
}
