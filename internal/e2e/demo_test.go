package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// jaegerBinary returns the Jaeger binary `make demo` runs: $JAEGER_BIN (the
// Makefile builds it into bin/jaeger and sets it for make test), else
// bin/jaeger if it was built.
func jaegerBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("JAEGER_BIN")
	if bin == "" {
		bin = filepath.Join("..", "..", "bin", "jaeger")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("no Jaeger binary at %s (%v): `make jaeger` builds it from internal/tools/jaeger "+
			"(make test does this first)", bin, err)
	}
	return bin
}

// readConfig reads a file of config/ and replaces each address of from with
// its value, failing when the file no longer holds one.
func readConfig(t *testing.T, name string, from map[string]string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "config", name))
	require.NoError(t, err)
	return []byte(replaceAll(t, string(raw), from, "config/"+name))
}

// jaegerSpan is the part of a span of Jaeger's /api/traces JSON the test reads.
type jaegerSpan struct {
	SpanID string `json:"spanID"`
	Tags   []struct {
		Key   string `json:"key"`
		Value any    `json:"value"`
	} `json:"tags"`
	References []struct {
		RefType string `json:"refType"`
	} `json:"references"`
}

func (s jaegerSpan) tag(key string) (string, bool) {
	for _, t := range s.Tags {
		if t.Key == key {
			return fmt.Sprint(t.Value), true
		}
	}
	return "", false
}

// jaegerTrace fetches one trace from Jaeger's HTTP API; nil when Jaeger does
// not have it (yet).
func jaegerTrace(t *testing.T, base, traceID string) []jaegerSpan {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(base + "/api/traces/" + traceID)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode == http.StatusNotFound {
		return nil
	}
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var body struct {
		Data []struct {
			Spans []jaegerSpan `json:"spans"`
		} `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	if len(body.Data) == 0 {
		return nil
	}
	return body.Data[0].Spans
}

// TestDemoKeptTracesInJaeger runs what `make demo` runs, Jaeger and the
// collector on config/demo-jaeger.yaml and config/demo.yaml (on free ports),
// sends error and slow traces, and checks that Jaeger's API has each of them
// whole, every span with tailsift's threshold in its tracestate and the root
// with the policy that kept it. Jaeger's /api/traces JSON has no tracestate
// field: it shows the tracestate as the span tag w3c.tracestate; its
// /api/v3/traces (OTLP JSON) has it as traceState. The collector's
// retrieval API, which the status page's trace view reads, has each trace
// too.
func TestDemoKeptTracesInJaeger(t *testing.T) {
	t.Parallel()
	jaegerBin := jaegerBinary(t)
	require.True(t, haveHealthCheck, "config/demo.yaml uses health_check")

	jaegerOTLP, jaegerHTTP, jaegerGRPC := freeAddr(t), freeAddr(t), freeAddr(t)
	dir := t.TempDir()
	jaegerCfg := filepath.Join(dir, "demo-jaeger.yaml")
	require.NoError(t, os.WriteFile(jaegerCfg, readConfig(t, "demo-jaeger.yaml", map[string]string{
		"127.0.0.1:4327": jaegerOTLP, "127.0.0.1:16686": jaegerHTTP, "127.0.0.1:16685": jaegerGRPC,
	}), 0o600))
	jaeger := exec.Command(jaegerBin, "--config", jaegerCfg)
	jaegerOut := &syncBuffer{}
	jaeger.Stdout, jaeger.Stderr = jaegerOut, jaegerOut
	setChildAttrs(jaeger)
	require.NoError(t, jaeger.Start())
	t.Cleanup(func() {
		_ = jaeger.Process.Kill()
		_ = jaeger.Wait()
		if t.Failed() {
			t.Logf("jaeger output:\n%s", jaegerOut.String())
		}
	})
	base := "http://" + jaegerHTTP
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/api/services")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, time.Minute, 100*time.Millisecond, "Jaeger's API did not come up")

	col := &collector{
		grpcAddr: freeAddr(t), httpAddr: freeAddr(t), healthAddr: freeAddr(t),
		output: &syncBuffer{}, exited: make(chan struct{}),
	}
	metrics, ext := freeAddr(t), freeAddr(t)
	_, metricsPort, _ := strings.Cut(metrics, ":")
	cfg := readConfig(t, "demo.yaml", map[string]string{
		"127.0.0.1:4317": col.grpcAddr, "127.0.0.1:4318": col.httpAddr, "127.0.0.1:13133": col.healthAddr,
		"127.0.0.1:4327": jaegerOTLP, "port: 8888": "port: " + metricsPort, "127.0.0.1:13134": ext,
	})
	require.NoError(t, col.launch(t, filepath.Join(dir, "demo.yaml"), dir, cfg))

	tts := newTraces(newRand(t), map[traceClass]int{classError: 4, classSlow: 2})
	stats := sendAll(ctxFor(t, time.Minute), newExporter(t, overGRPC, col), tts, 3, 1)
	require.Zero(t, stats.failed, "requests refused: %v", stats.firstErr)

	want := map[traceClass]string{classError: "errors", classSlow: "slow"}
	for _, tt := range tts {
		id := tt.pid().String()
		var spans []jaegerSpan
		// quiet is 2s: a kept trace reaches Jaeger a few seconds after its last span.
		require.Eventually(t, func() bool {
			spans = jaegerTrace(t, base, id)
			return len(spans) == len(tt.spans)
		}, 30*time.Second, 200*time.Millisecond, "%s trace %s: Jaeger has %d of its %d spans", tt.class, id, len(spans), len(tt.spans))
		rule := ""
		for _, s := range spans {
			ts, ok := s.tag("w3c.tracestate")
			if assert.True(t, ok, "trace %s span %s has no w3c.tracestate tag", id, s.SpanID) {
				assert.Contains(t, ts, "ot=th:0", "trace %s span %s: tracestate %q lacks tailsift's threshold (kept with probability 1)", id, s.SpanID, ts)
			}
			if r, ok := s.tag("sampling.rule"); ok && len(s.References) == 0 {
				rule = r
			}
		}
		assert.Equal(t, want[tt.class], rule, "trace %s: sampling.rule on the root", id)
		// The OTLP JSON of the v3 API keeps the tracestate as it is.
		for span, ts := range jaegerTraceStates(t, base, id) {
			assert.Contains(t, ts, "ot=th:0", "trace %s span %s: /api/v3 traceState", id, span)
		}
		// The status page's trace view reads the same trace from the
		// collector's store, with the decision in the headers.
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + ext + "/api/v1/traces/" + id)
		require.NoError(t, err)
		_ = resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, "trace %s from the retrieval API", id)
		assert.Equal(t, []string{"keep", want[tt.class], "0"},
			[]string{resp.Header.Get("Tailsift-Decision"), resp.Header.Get("Tailsift-Policy"), resp.Header.Get("Tailsift-Threshold")})
	}
}

// jaegerTraceStates returns each span's traceState from Jaeger's /api/v3
// (OTLP JSON) answer for one trace.
func jaegerTraceStates(t *testing.T, base, traceID string) map[string]string {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(base + "/api/v3/traces/" + traceID)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var body struct {
		Result struct {
			ResourceSpans []struct {
				ScopeSpans []struct {
					Spans []struct {
						SpanID     string `json:"spanId"`
						TraceState string `json:"traceState"`
					} `json:"spans"`
				} `json:"scopeSpans"`
			} `json:"resourceSpans"`
		} `json:"result"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	out := map[string]string{}
	for _, rs := range body.Result.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				out[s.SpanID] = s.TraceState
			}
		}
	}
	require.NotEmpty(t, out, "/api/v3/traces/%s has no span", traceID)
	return out
}
