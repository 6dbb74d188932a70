package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.yaml.in/yaml/v3"

	"github.com/tailsift/tailsift/internal/workload"
)

// lateErrorRun is what one run of the benchmark workload with late spans
// through the default configuration delivered, per the generator's ground
// truth.
type lateErrorRun struct {
	errorTraces int // error traces whose every request was accepted
	lateError   int // of those, with their ERROR span among the late spans
	complete    int // error traces that arrived with all their spans
	// lateComplete is how many of the lateError traces arrived complete,
	// and rescued how many error traces carry tailsift=rescue.
	lateComplete, rescued int
	refused               int // traces with a refused request, not counted
	duplicates            int // spans of error traces that arrived more than once
	incomplete            []string
}

// TestDefaultConfigKeepsLateErrors is the target of issue #11's "late errors
// kept by default": on config/default.yaml (its exporters replaced by one to
// an in-test sink, its store moved to a temporary directory) the benchmark
// workload with late spans, late ERROR spans included, brings every error
// trace complete to the backend, through a graceful shutdown right after the
// last span. The same run with `storage` removed from the processor shows
// what the store fixes: error traces whose ERROR span came after the
// trace's decision arrive incomplete (or not at all).
func TestDefaultConfigKeepsLateErrors(t *testing.T) {
	t.Parallel()
	require.True(t, haveHealthCheck, "the distribution must include health_check: the default config uses it")
	var withStore, noStore lateErrorRun
	t.Run("runs", func(t *testing.T) {
		t.Run("store", func(t *testing.T) {
			t.Parallel()
			withStore = runLateErrors(t, true)
		})
		t.Run("no_store", func(t *testing.T) {
			t.Parallel()
			noStore = runLateErrors(t, false)
		})
	})
	if t.Failed() {
		return
	}
	for _, r := range []struct {
		name string
		run  *lateErrorRun
	}{{"storage: tailsift (default)", &withStore}, {"storage removed", &noStore}} {
		t.Logf("%-27s %d error traces, %d with a late ERROR span; complete %d (late-error ones %d); rescued by a late span %d; duplicate spans %d; refused traces (not counted) %d",
			r.name, r.run.errorTraces, r.run.lateError, r.run.complete, r.run.lateComplete, r.run.rescued, r.run.duplicates, r.run.refused)
	}
	require.Positive(t, withStore.lateError, "no error trace had a late ERROR span: the workload does not test the target")
	assert.Equal(t, withStore.errorTraces, withStore.complete,
		"error traces incomplete with the default config:\n  %s", strings.Join(withStore.incomplete, "\n  "))
	// A late-error trace another policy kept at once (slow, anomalies)
	// needs no rescue.
	assert.Positive(t, withStore.rescued, "no error trace was rescued by its late span (tailsift=rescue)")
	assert.LessOrEqual(t, withStore.rescued, withStore.lateError, "rescued error traces whose ERROR span was not late")
	// Without the store nothing keeps a trace whose ERROR came after its
	// decision (unless another policy kept it anyway).
	if noStore.lateError >= 5 {
		assert.Less(t, noStore.lateComplete, noStore.lateError,
			"without the store every late-error trace arrived complete: the store is not what keeps them")
	}
	assert.Zero(t, noStore.rescued, "rescued without a store")
}

// lateErrorMix is the benchmark workload's class mix with more error traces
// and late spans than by default (2 % and 0.6 %), so that a 10 s run holds
// enough error traces whose ERROR span is late.
var lateErrorMix = workload.Mix{Error: 20, Slow: 5, Anomaly: 0.5, Late: 25}

const (
	lateErrorRate     = 2000             // spans/s
	lateErrorDuration = 10 * time.Second // traces start during this long
)

// runLateErrors runs the collector on the default configuration, with its
// store or with storage removed, sends it the workload, stops it with
// SIGTERM once the last error trace's spans are sent, and counts what the
// sink received of the error traces.
func runLateErrors(t *testing.T, store bool) lateErrorRun {
	snk := newSink(t)
	dir := t.TempDir()
	c := &collector{
		grpcAddr: freeAddr(t), httpAddr: freeAddr(t), healthAddr: freeAddr(t),
		output: &syncBuffer{}, exited: make(chan struct{}),
	}
	config := defaultConfigTo(t, c, snk.addr, filepath.Join(dir, "store"), store)
	require.NoError(t, c.launch(t, filepath.Join(dir, "config.yaml"), dir, config))

	wcfg := workload.Config{Seed: 11, Rate: lateErrorRate, Duration: lateErrorDuration, Templates: 200}
	wcfg.SetMix(lateErrorMix)
	gen, err := workload.NewGenerator(wcfg)
	require.NoError(t, err)
	sent := sendWorkload(t, ctxFor(t, 90*time.Second), gen, "http://"+c.httpAddr+"/v1/traces")

	require.NoError(t, c.terminate())
	exited, exitErr := c.waitExit(30 * time.Second)
	require.True(t, exited, "the collector did not exit within 30s of SIGTERM")
	require.NoError(t, exitErr, "the collector did not exit cleanly")
	return countErrorTraces(snk, sent)
}

// defaultConfigTo returns config/default.yaml with its listeners moved to
// c's addresses (and free ports), its store directory to storeDir, its
// exporters replaced by one otlp_grpc exporter to sinkAddr and, when store
// is false, the processor's storage key removed.
func defaultConfigTo(t testing.TB, c *collector, sinkAddr, storeDir string, store bool) []byte {
	t.Helper()
	raw, err := os.ReadFile(defaultConfigPath(t))
	require.NoError(t, err)
	var cfg map[string]any
	require.NoError(t, yaml.Unmarshal(raw, &cfg))
	// at returns the mapping at path: keys, or indexes into sequences.
	at := func(path ...any) map[string]any {
		var node any = cfg
		for _, k := range path {
			switch k := k.(type) {
			case string:
				m, _ := node.(map[string]any)
				node = m[k]
			case int:
				if l, _ := node.([]any); k < len(l) {
					node = l[k]
				} else {
					node = nil
				}
			}
		}
		m, ok := node.(map[string]any)
		require.True(t, ok, "config/default.yaml has no mapping at %v; update this test", path)
		return m
	}
	set := func(key string, v any, path ...any) {
		m := at(path...)
		require.Contains(t, m, key, "config/default.yaml has no %s under %v; update this test", key, path)
		m[key] = v
	}
	set("endpoint", c.grpcAddr, "receivers", "otlp", "protocols", "grpc")
	set("endpoint", c.httpAddr, "receivers", "otlp", "protocols", "http")
	set("endpoint", c.healthAddr, "extensions", "health_check")
	set("endpoint", freeAddr(t), "extensions", "tailsift")
	set("directory", storeDir, "extensions", "tailsift")
	_, portStr, err := net.SplitHostPort(freeAddr(t))
	require.NoError(t, err)
	metricsPort, err := strconv.Atoi(portStr)
	require.NoError(t, err)
	set("port", metricsPort, "service", "telemetry", "metrics", "readers", 0, "pull", "exporter", "prometheus")
	set("storage", "tailsift", "processors", "tailsift")
	if !store {
		delete(at("processors", "tailsift"), "storage")
	}
	cfg["exporters"] = map[string]any{
		"otlp_grpc": map[string]any{"endpoint": sinkAddr, "tls": map[string]any{"insecure": true}},
	}
	set("exporters", []string{"otlp_grpc"}, "service", "pipelines", "traces")
	out, err := yaml.Marshal(cfg)
	require.NoError(t, err)
	return out
}

// sentWorkload is the generator's ground truth for the traces it sent.
type sentWorkload struct {
	traces  map[pcommon.TraceID]*workload.Instance
	refused map[pcommon.TraceID]bool // a request carrying it was refused
}

// sendWorkload sends gen's requests over OTLP/HTTP to url on their
// schedule, until every error trace's spans, late ones included, are sent.
func sendWorkload(t testing.TB, ctx context.Context, gen *workload.Generator, url string) *sentWorkload {
	t.Helper()
	sent := &sentWorkload{traces: map[pcommon.TraceID]*workload.Instance{}, refused: map[pcommon.TraceID]bool{}}
	var mu sync.Mutex
	work := make(chan *workload.Request, 256)
	client := &http.Client{Timeout: 10 * time.Second}
	wall := time.Now()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for r := range work {
				err := postOTLP(ctx, client, url, gen.AppendRequest(nil, r, wall.UnixNano()))
				if err == nil {
					continue
				}
				mu.Lock()
				for _, tr := range r.Traces {
					sent.refused[tr.Inst.TraceID] = true
				}
				mu.Unlock()
			}
		})
	}
	// Error traces not yet sent whole: the run ends when none is left.
	unsentErr := map[*workload.Instance]int{}
	started := false
	for r := gen.Next(); r != nil; r = gen.Next() {
		if d := time.Until(wall.Add(time.Duration(r.SendV))); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
		mu.Lock()
		for _, tr := range r.Traces {
			in := tr.Inst
			sent.traces[in.TraceID] = in
			if in.T.Class != workload.ClassError {
				continue
			}
			if _, ok := unsentErr[in]; !ok {
				unsentErr[in] = len(in.T.Spans)
			}
			if unsentErr[in] -= int(tr.Spans); unsentErr[in] == 0 {
				delete(unsentErr, in)
			}
			started = true
		}
		mu.Unlock()
		work <- r
		if started && len(unsentErr) == 0 && r.SendV > int64(lateErrorDuration) {
			break
		}
	}
	close(work)
	wg.Wait()
	require.NoError(t, ctx.Err(), "the workload was not sent in time")
	return sent
}

// postOTLP sends one OTLP/HTTP protobuf request.
func postOTLP(ctx context.Context, client *http.Client, url string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("send request: %w", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("collector answered %s", resp.Status)
	}
	return nil
}

// countErrorTraces compares what snk received with the error traces sent.
func countErrorTraces(snk *sink, sent *sentWorkload) lateErrorRun {
	var r lateErrorRun
	for id, in := range sent.traces {
		if in.T.Class != workload.ClassError {
			continue
		}
		if sent.refused[id] {
			r.refused++
			continue
		}
		r.errorTraces++
		late := false
		for _, sp := range in.T.Spans {
			late = late || (sp.Error && sp.Late)
		}
		if late {
			r.lateError++
		}
		got := snk.trace(id)
		rescued := false
		for _, rs := range got {
			r.duplicates += rs.count - 1
			rescued = rescued || strings.HasPrefix(rs.traceState, "tailsift=rescue")
		}
		if rescued {
			r.rescued++
		}
		if len(got) == len(in.T.Spans) {
			r.complete++
			if late {
				r.lateComplete++
			}
		} else if len(r.incomplete) < 10 {
			r.incomplete = append(r.incomplete, fmt.Sprintf("trace %s: %d of %d spans arrived (late ERROR span: %t, %d late spans)",
				id, len(got), len(in.T.Spans), late, in.T.Late))
		}
	}
	return r
}
