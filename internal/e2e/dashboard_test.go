package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
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

// scrapeMetricNames returns the sample names /metrics exposes.
func scrapeMetricNames(t *testing.T, url string) map[string]bool {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	names := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	require.NoError(t, sc.Err())
	return names
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
		// Sent again once decided, the same spans are late spans.
		if !resent && snk.awaitComplete(byClass(tts, classError), 0) {
			sendAll(ctxFor(t, time.Minute), exp, tts[:20], 5, 1)
			resent = true
		}
		have := scrapeMetricNames(t, url)
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
