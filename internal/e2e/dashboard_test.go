package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// dashboardPath is the Grafana dashboard the test checks.
var dashboardPath = filepath.Join("..", "..", "docs", "dashboards", "tailsift.json")

// grafanaDashboard is the part of a dashboard the test reads.
type grafanaDashboard struct {
	Templating struct {
		List []struct {
			Name    string `json:"name"`
			Type    string `json:"type"`
			Query   any    `json:"query"`
			Options []struct {
				Value string `json:"value"`
			} `json:"options"`
		} `json:"list"`
	} `json:"templating"`
	Panels []dashboardPanel `json:"panels"`
}

type dashboardPanel struct {
	Title   string           `json:"title"`
	Type    string           `json:"type"`
	Panels  []dashboardPanel `json:"panels"` // a collapsed row's panels
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

// dashboardQueries returns every PromQL query of the dashboard, once per
// value of each custom variable, with the other variables substituted.
func dashboardQueries(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(dashboardPath)
	require.NoError(t, err)
	var d grafanaDashboard
	require.NoError(t, json.Unmarshal(raw, &d))

	// Each variable's values: custom ones all their options, textboxes and
	// constants their value, Grafana's interval a duration.
	vars := map[string][]string{"__rate_interval": {"1m"}, "__interval": {"1m"}, "__range": {"1h"}}
	for _, v := range d.Templating.List {
		q, _ := v.Query.(string)
		switch v.Type {
		case "custom":
			for _, o := range v.Options {
				vars[v.Name] = append(vars[v.Name], o.Value)
			}
			if len(vars[v.Name]) == 0 {
				vars[v.Name] = strings.Split(q, ",")
			}
		case "textbox", "constant":
			vars[v.Name] = []string{q}
		}
	}
	var exprs []string
	var walk func([]dashboardPanel)
	walk = func(ps []dashboardPanel) {
		for _, p := range ps {
			walk(p.Panels)
			if p.Type != "row" {
				assert.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				exprs = append(exprs, tg.Expr)
			}
		}
	}
	walk(d.Panels)
	var out []string
	for _, e := range exprs {
		out = append(out, expandVars(t, e, vars)...)
	}
	return out
}

var grafanaVar = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)`)

// expandVars returns expr with each variable replaced, once per combination
// of the values of the variables it uses.
func expandVars(t *testing.T, expr string, vars map[string][]string) []string {
	t.Helper()
	m := grafanaVar.FindStringSubmatchIndex(expr)
	if m == nil {
		return []string{expr}
	}
	var name string
	if m[2] >= 0 {
		name = expr[m[2]:m[3]]
	} else {
		name = expr[m[4]:m[5]]
	}
	values, ok := vars[name]
	require.True(t, ok, "query %q uses the variable %q, which the dashboard does not define", expr, name)
	var out []string
	for _, v := range values {
		out = append(out, expandVars(t, expr[:m[0]]+v+expr[m[1]:], vars)...)
	}
	return out
}

var (
	promString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promMatchers = regexp.MustCompile(`\{[^}]*\}`)
	promRange    = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promToken    = regexp.MustCompile(`[0-9][\w.]*|[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promKeywords = map[string]bool{"and": true, "or": true, "unless": true, "offset": true, "bool": true, "inf": true, "nan": true,
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}
)

// promMetricNames returns the metric names a PromQL expression reads: the
// identifiers that are not functions, keywords, labels or numbers.
func promMetricNames(expr string) []string {
	e := promString.ReplaceAllString(expr, `""`)
	e = promMatchers.ReplaceAllString(e, " ")
	e = promRange.ReplaceAllString(e, " ")
	e = promGrouping.ReplaceAllString(e, " ")
	var names []string
	for _, loc := range promToken.FindAllStringIndex(e, -1) {
		tok := e[loc[0]:loc[1]]
		rest := strings.TrimLeft(e[loc[1]:], " \t\n")
		if tok[0] >= '0' && tok[0] <= '9' || promKeywords[tok] || strings.HasPrefix(rest, "(") {
			continue
		}
		if !slices.Contains(names, tok) {
			names = append(names, tok)
		}
	}
	return names
}

func TestPromMetricNames(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{`sum by (policy, decision) (rate(a_total{decision="keep", x=~"b|c"}[5m]))`, []string{"a_total"}},
		{`histogram_quantile(0.95, sum by (le) (rate(lat_bucket[1m])))`, []string{"lat_bucket"}},
		{`max by (exporter) (q_size / q_capacity) > 0.5 and on (exporter) up == 1`, []string{"q_size", "q_capacity", "up"}},
		{`sum(x) / 536870912 + vector(1e3) offset 5m`, []string{"x"}},
		{`sum without (instance) (rate(y[$__rate_interval]))`, []string{"y"}},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			assert.Equal(t, tt.want, promMetricNames(tt.expr))
		})
	}
}

// shrink returns the traces cut to their root and one child (the failing
// one, if any), in two requests: the child, then the root.
func shrink(tts []*testTrace) []*testTrace {
	out := make([]*testTrace, 0, len(tts))
	for _, tt := range tts {
		child := tt.spans[1]
		for _, s := range tt.spans[1:] {
			if s.Status.Code == codes.Error {
				child = s
			}
		}
		out = append(out, &testTrace{
			id: tt.id, class: tt.class, spans: []tracetest.SpanStub{tt.spans[0], child},
			chunks: [][]sdktrace.ReadOnlySpan{{child.Snapshot()}, {tt.spans[0].Snapshot()}},
		})
	}
	return out
}

// lateErrorSpans returns, for each trace, one more child span with an ERROR
// status.
func lateErrorSpans(rng *rand.Rand, tts []*testTrace) []sdktrace.ReadOnlySpan {
	out := make([]sdktrace.ReadOnlySpan, 0, len(tts))
	for _, tt := range tts {
		late := tt.spans[1]
		late.Name = "late-failure"
		late.SpanContext = late.SpanContext.WithSpanID(newSpanID(rng))
		late.Status = sdktrace.Status{Code: codes.Error, Description: "late failure"}
		out = append(out, late.Snapshot())
	}
	return out
}

// scrapeMetrics returns the sample names /metrics exposes, and the sum of
// each one's samples.
func scrapeMetrics(t *testing.T, url string) (map[string]bool, map[string]float64) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	names, sums := map[string]bool{}, map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.IndexAny(line, "{ ")
		if i <= 0 {
			continue
		}
		names[line[:i]] = true
		fields := strings.Fields(line[strings.LastIndexByte(line, '}')+1:])
		if len(fields) > 0 {
			if v, err := strconv.ParseFloat(fields[0], 64); err == nil {
				sums[line[:i]] += v
			}
		}
	}
	require.NoError(t, sc.Err())
	return names, sums
}

// decidedOnBothPaths returns the fewer of the traces the processor and the
// receiver have decided.
func decidedOnBothPaths(t *testing.T, url string) int {
	t.Helper()
	_, sums := scrapeMetrics(t, url)
	return int(min(sums["otelcol_processor_tailsift_traces_decided"], sums["otelcol_receiver_tailsift_traces_decided"]))
}

// TestDashboardMetricsExist runs a collector with every component whose
// self-metrics the Grafana dashboard shows, sends it a little traffic (late
// spans, an invalid span and a dead gateway and exporter included), and
// fails on any query naming a metric the collector does not expose.
func TestDashboardMetricsExist(t *testing.T) {
	t.Parallel()
	want := map[string][]string{} // metric name → the queries naming it
	for _, q := range dashboardQueries(t) {
		for _, n := range promMetricNames(q) {
			want[n] = append(want[n], q)
		}
	}
	require.Contains(t, want, "otelcol_processor_tailsift_traces_decided")
	require.Contains(t, want, "otelcol_receiver_tailsift_traces_decided")

	snk := newSink(t)
	gateway, dead := freeAddr(t), freeAddr(t)
	metricsAddr := freeAddr(t)
	_, metricsPort, err := net.SplitHostPort(metricsAddr)
	require.NoError(t, err)
	col := &collector{
		grpcAddr: freeAddr(t), httpAddr: freeAddr(t), healthAddr: freeAddr(t),
		output: &syncBuffer{}, exited: make(chan struct{}),
	}
	require.True(t, haveHealthCheck, "the dashboard config uses health_check")
	var cfg bytes.Buffer
	require.NoError(t, collectorTemplates.ExecuteTemplate(&cfg, "dashboard.yaml", map[string]string{
		"GRPCAddr": col.grpcAddr, "HTTPAddr": col.httpAddr, "HealthAddr": col.healthAddr,
		"GatewayAddr": gateway, "DeadAddr": dead, "SinkAddr": snk.addr, "MetricsPort": metricsPort,
	}))
	require.NoError(t, col.launch(t, filepath.Join(t.TempDir(), "dashboard.yaml"), "", cfg.Bytes()))

	rng := newRand(t)
	tts := newTraces(rng, map[traceClass]int{classFast: 60, classError: 10, classSlow: 5})
	exp := newExporter(t, overGRPC, col)
	stats := sendAll(ctxFor(t, time.Minute), exp, tts, 5, 2)
	require.Zero(t, stats.failed, "requests refused: %v", stats.firstErr)
	// Two-span traces stay under max_spans (5). Error ones are sent twice
	// over, as a client's retry would: their spans are duplicates when the
	// trace is kept. Most fast ones are dropped, then rescued by a late
	// ERROR span.
	dups := shrink(newTraces(rng, map[traceClass]int{classError: 3}))
	for _, tt := range dups {
		for _, chunk := range tt.chunks {
			for range 2 {
				require.NoError(t, exp.ExportSpans(ctxFor(t, time.Minute), chunk))
			}
		}
	}
	rescuable := shrink(newTraces(rng, map[traceClass]int{classFast: 10}))
	stats = sendAll(ctxFor(t, time.Minute), exp, rescuable, 5, 1)
	require.Zero(t, stats.failed, "requests refused: %v", stats.firstErr)

	// A span with an all-zero trace ID is refused as invalid, on both paths.
	for name, addr := range map[string]string{"otlp": col.grpcAddr, "gateway": gateway} {
		client := ptraceotlp.NewGRPCClient(dialGRPC(t, addr))
		_, err := client.Export(ctxFor(t, 10*time.Second), requestWithZeroTraceID(newTrace(rng, classError, time.Now())))
		t.Logf("all-zero trace ID to %s: %v", name, err)
	}

	url := "http://" + metricsAddr + "/metrics"
	var missing []string
	resent := false
	deadline := time.Now().Add(45 * time.Second)
	for {
		// Once every trace is decided on both paths, the same spans sent
		// again are late spans, and a late ERROR span rescues a dropped
		// trace.
		if !resent && decidedOnBothPaths(t, url) >= len(tts)+len(dups)+len(rescuable) {
			sendAll(ctxFor(t, time.Minute), exp, tts[:20], 5, 1)
			require.NoError(t, exp.ExportSpans(ctxFor(t, time.Minute), lateErrorSpans(rng, rescuable)))
			resent = true
		}
		have, _ := scrapeMetrics(t, url)
		missing = missing[:0]
		for n := range want {
			if !have[n] {
				missing = append(missing, n)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	slices.Sort(missing)
	for _, n := range missing {
		t.Errorf("%s names %s, which the running collector does not expose; queries:\n  %s",
			dashboardPath, n, strings.Join(want[n], "\n  "))
	}
}
