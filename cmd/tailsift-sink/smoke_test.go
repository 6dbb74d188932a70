package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tailsift/tailsift/internal/sinkreport"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tailsift/tailsift/internal/workload"
)

type started struct {
	grpc, http string
	done       chan struct{}
	rep        *sinkreport.Report
	err        error
}

// startSink runs the sink on free loopback ports until ctx ends.
func startSink(t *testing.T, ctx context.Context, cfg config) *started {
	t.Helper()
	s := &started{done: make(chan struct{})}
	ready := make(chan struct{})
	cfg.grpcAddr, cfg.httpAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.ready = func(g, h string) { s.grpc, s.http = g, h; close(ready) }
	var stdout bytes.Buffer
	go func() {
		defer close(s.done)
		s.rep, s.err = run(ctx, cfg, &stdout, log.New(io.Discard, "", 0))
		t.Logf("sink output:\n%s", stdout.String())
	}()
	select {
	case <-ready:
	case <-s.done:
		t.Fatalf("sink did not start: %v", s.err)
	case <-time.After(5 * time.Second):
		t.Fatal("sink did not start in 5 s")
	}
	return s
}

func (s *started) wait(t *testing.T) {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		t.Fatal("sink did not stop in 10 s")
	}
}

func postHTTP(t *testing.T, url, contentType, encoding string, body []byte) (int, []byte) {
	t.Helper()
	switch encoding {
	case "gzip":
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		_, err := zw.Write(body)
		require.NoError(t, err)
		require.NoError(t, zw.Close())
		body = b.Bytes()
	case "zstd":
		enc, err := zstd.NewWriter(nil)
		require.NoError(t, err)
		body = enc.EncodeAll(body, nil)
		require.NoError(t, enc.Close())
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", contentType)
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	out, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	return resp.StatusCode, out
}

func marshal(t *testing.T, td ptrace.Traces, asJSON bool) []byte {
	t.Helper()
	req := ptraceotlp.NewExportRequestFromTraces(td)
	var b []byte
	var err error
	if asJSON {
		b, err = req.MarshalJSON()
	} else {
		b, err = req.MarshalProto()
	}
	require.NoError(t, err)
	return b
}

func TestSmoke(t *testing.T) {
	dir := t.TempDir()
	manifest := filepath.Join(dir, "manifest.jsonl")
	outPath := filepath.Join(dir, "report.json")

	// Manifest: seq 1 error (3 spans), seq 2 fast (2 spans), seq 3 anomaly
	// (1 span), seq 4 fast (2 spans, never arrives).
	now := time.Now().UnixNano()
	mf, err := os.Create(manifest)
	require.NoError(t, err)
	mw, err := workload.NewManifestWriter(mf, workload.ManifestHeader{Seed: 7, Rate: 10, DurationS: 1, StartedUnixNano: now})
	require.NoError(t, err)
	for _, mt := range []workload.ManifestTrace{
		{Seq: 1, Class: workload.ClassError, Spans: 3},
		{Seq: 2, Class: workload.ClassFast, Spans: 2},
		{Seq: 3, Class: workload.ClassAnomaly, Spans: 1},
		{Seq: 4, Class: workload.ClassFast, Spans: 2},
	} {
		mt.TraceID = testTraceHex(mt.Seq)
		mt.LastSendUnixNano = now
		mw.Write(&mt)
	}
	require.NoError(t, mw.Flush())
	require.NoError(t, mf.Close())

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := startSink(t, ctx, config{manifest: manifest, out: outPath, fastProbability: 0.5, completion: 0})

	// gRPC with zstd: trace 1, spans 1-2.
	cc, err := grpc.NewClient(s.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer func() { _ = cc.Close() }()
	client := ptraceotlp.NewGRPCClient(cc)
	rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
	defer rcancel()
	_, err = client.Export(rctx, ptraceotlp.NewExportRequestFromTraces(traces(labelled(1, workload.ClassError, 2, th100pct)...)), grpc.UseCompressor("zstd"))
	require.NoError(t, err)
	// gRPC with gzip: trace 1, span 3, and span 1 again (a duplicate).
	t1 := labelled(1, workload.ClassError, 3, th100pct)
	_, err = client.Export(rctx, ptraceotlp.NewExportRequestFromTraces(traces(t1[2], t1[0])), grpc.UseCompressor("gzip"))
	require.NoError(t, err)

	base := "http://" + s.http
	// HTTP protobuf, gzip: trace 2 (fast, th 50 %).
	code, body := postHTTP(t, base+"/v1/traces", "application/x-protobuf", "gzip",
		marshal(t, traces(labelled(2, workload.ClassFast, 2, "ot=th:8")...), false))
	require.Equal(t, http.StatusOK, code, string(body))
	require.NoError(t, ptraceotlp.NewExportResponse().UnmarshalProto(body))
	// HTTP JSON, zstd: trace 3 (anomaly) and a foreign, unlabelled span.
	code, body = postHTTP(t, base+"/v1/traces", "application/json", "zstd",
		marshal(t, traces(append(labelled(3, workload.ClassAnomaly, 1, th100pct), span{seq: 77, id: 9, noSeq: true})...), true))
	require.Equal(t, http.StatusOK, code, string(body))
	require.NoError(t, ptraceotlp.NewExportResponse().UnmarshalJSON(body))
	// HTTP protobuf, no compression, empty request.
	code, _ = postHTTP(t, base+"/v1/traces", "application/x-protobuf", "", marshal(t, ptrace.NewTraces(), false))
	require.Equal(t, http.StatusOK, code)
	// Refused: wrong media type, undecodable body, unknown encoding.
	code, _ = postHTTP(t, base+"/v1/traces", "text/plain", "", []byte("x"))
	assert.Equal(t, http.StatusUnsupportedMediaType, code)
	code, _ = postHTTP(t, base+"/v1/traces", "application/x-protobuf", "", []byte{0xff, 0xff, 0xff})
	assert.Equal(t, http.StatusBadRequest, code)
	code, _ = postHTTP(t, base+"/v1/traces", "application/json", "br", []byte("{}"))
	assert.Equal(t, http.StatusUnsupportedMediaType, code)

	resp, err := http.Get(base + "/stats")
	require.NoError(t, err)
	var st statsJSON
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, int64(5), st.Requests)
	assert.Equal(t, int64(8), st.SpanArrivals) // 3+1 (trace 1) + 2 + 1 + 1
	assert.Equal(t, int64(7), st.Spans)
	assert.Equal(t, int64(1), st.DuplicateArrivals)
	assert.Equal(t, int64(4), st.Traces)
	assert.NotZero(t, st.LastUnixNano)

	time.Sleep(700 * time.Millisecond) // let it run ~1 s in all
	cancel()
	s.wait(t)
	require.NoError(t, s.err)
	require.NotNil(t, s.rep)

	raw, err := os.ReadFile(outPath)
	require.NoError(t, err)
	var rep sinkreport.Report
	require.NoError(t, json.Unmarshal(raw, &rep))
	assert.Equal(t, sinkreport.SchemaVersion, rep.Schema)
	assert.Equal(t, "signal", rep.StopReason)
	assert.True(t, rep.Scored)
	assert.Equal(t, s.grpc, rep.Config.GRPC)
	assert.Equal(t, int64(7), rep.Received.Spans)
	assert.Equal(t, int64(4), rep.Manifest.Traces)
	assert.Equal(t, int64(7), rep.Manifest.Header.Seed)

	byClass := map[string]sinkreport.ClassRow{}
	for _, r := range rep.Classes {
		byClass[r.Class] = r
	}
	e := byClass[workload.ClassError]
	assert.Equal(t, int64(1), e.TracesComplete)
	assert.Equal(t, int64(1), e.TracesDuplicated)
	assert.Equal(t, int64(3), e.SpansReceived)
	assert.Equal(t, 1.0, e.Adjusted.TracesEstimate)
	fast := byClass[workload.ClassFast]
	assert.Equal(t, int64(2), fast.TracesSent)
	assert.Equal(t, int64(1), fast.TracesKept)
	assert.Equal(t, 2.0, fast.Adjusted.TracesEstimate)
	assert.Equal(t, 4.0, fast.Adjusted.SpansEstimate)
	assert.Equal(t, 0.0, *fast.Adjusted.TracesRelError)
	require.NotNil(t, rep.FastCheck)
	assert.InDelta(t, 0, *rep.FastCheck.Z, 1e-12) // 1 of 2 at p=0.5
	require.NotNil(t, rep.AnomalyRecall)
	assert.Equal(t, 1.0, *rep.AnomalyRecall)
	assert.Equal(t, int64(1), rep.Foreign.TracesNotInManifest)
	assert.Equal(t, int64(1), rep.Foreign.UnlabelledSpans)
	// Latency: arrival minus a send time taken before the sink started, so
	// positive and well under the test's length.
	require.NotNil(t, rep.Total.Latency)
	assert.Equal(t, int64(3), rep.Total.Latency.Count)
	assert.Greater(t, *rep.Total.Latency.Min, 0.0)
	assert.Less(t, *rep.Total.Latency.Max, 10_000.0)
}

func TestIdleStop(t *testing.T) {
	s := startSink(t, context.Background(), config{idle: 300 * time.Millisecond, duration: 8 * time.Second, quiet: true})
	// Nothing arrived yet: idle must not stop it.
	time.Sleep(500 * time.Millisecond)
	select {
	case <-s.done:
		t.Fatal("stopped on idle before anything arrived")
	default:
	}
	code, _ := postHTTP(t, "http://"+s.http+"/v1/traces", "application/x-protobuf", "",
		marshal(t, traces(labelled(1, workload.ClassFast, 1, "")...), false))
	require.Equal(t, http.StatusOK, code)
	s.wait(t)
	require.NoError(t, s.err)
	assert.Equal(t, "idle", s.rep.StopReason)
	assert.False(t, s.rep.Scored)
	assert.Equal(t, int64(1), s.rep.Received.Spans)
	assert.Equal(t, int64(1), s.rep.MissingTh.Spans)
}

func TestDurationStop(t *testing.T) {
	s := startSink(t, context.Background(), config{duration: 200 * time.Millisecond, quiet: true})
	s.wait(t)
	require.NoError(t, s.err)
	assert.Equal(t, "duration", s.rep.StopReason)
}

func TestParseFlags(t *testing.T) {
	cfg, err := parseFlags([]string{"--manifest", "m", "--fast-probability", "0.05", "--idle", "10s", "--completion", "3s"}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:4327", cfg.grpcAddr)
	assert.Equal(t, "127.0.0.1:4328", cfg.httpAddr)
	assert.Equal(t, 0.05, cfg.fastProbability)
	assert.Equal(t, 10*time.Second, cfg.idle)
	assert.Equal(t, 3*time.Second, cfg.completion)
	_, err = parseFlags([]string{"--fast-probability", "2"}, io.Discard)
	assert.Error(t, err)
	_, err = parseFlags([]string{"--grpc", "", "--http", ""}, io.Discard)
	assert.Error(t, err)
}
