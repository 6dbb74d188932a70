package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tailsift/tailsift/internal/workload"
)

// sink collects what the loadgen sends and can refuse some requests.
type sink struct {
	ptraceotlp.UnimplementedGRPCServer
	mu       sync.Mutex
	spans    int64
	reqs     int64
	perTrace map[string]int    // trace ID -> spans
	seqOf    map[string]int64  // trace ID -> seq attribute
	classOf  map[string]string // trace ID -> class attribute
	bad      string
	// refuseEvery > 0 refuses every n-th request (Unavailable / 503);
	// rejectEvery > 0 accepts every n-th request with partial_success of 1 span.
	refuseEvery, rejectEvery int64
	// refuseOnce refuses a request (known by its first span) at most once,
	// so that a retrying client always gets through.
	refuseOnce        bool
	refusedKeys       map[string]bool
	refused, rejected int64
	n                 atomic.Int64
	maxResourceSpans  int // most ResourceSpans in one request
}

func newSink() *sink {
	return &sink{perTrace: map[string]int{}, seqOf: map[string]int64{}, classOf: map[string]string{}}
}

// refusedBefore reports, with refuseOnce, whether the request was refused
// already, and remembers it as refused.
func (s *sink) refusedBefore(td ptrace.Traces) bool {
	if !s.refuseOnce || td.SpanCount() == 0 {
		return false
	}
	sp := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	tid, sid := sp.TraceID(), sp.SpanID()
	key := string(tid[:]) + string(sid[:])
	if s.refusedKeys[key] {
		return true
	}
	if s.refusedKeys == nil {
		s.refusedKeys = map[string]bool{}
	}
	s.refusedKeys[key] = true
	return false
}

// take records a request; it returns (refuse, reject).
func (s *sink) take(td ptrace.Traces) (bool, int64) {
	n := s.n.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxResourceSpans = max(s.maxResourceSpans, td.ResourceSpans().Len())
	if s.refuseEvery > 0 && n%s.refuseEvery == 0 && !s.refusedBefore(td) {
		s.refused += int64(td.SpanCount())
		return true, 0
	}
	var rej int64
	if s.rejectEvery > 0 && n%s.rejectEvery == 0 {
		rej = 1
		s.rejected++
	}
	s.reqs++
	s.spans += int64(td.SpanCount())
	rss := td.ResourceSpans()
	for i := range rss.Len() {
		sss := rss.At(i).ScopeSpans()
		for j := range sss.Len() {
			sp := sss.At(j).Spans()
			for k := range sp.Len() {
				span := sp.At(k)
				id := span.TraceID().String()
				s.perTrace[id]++
				seq, ok1 := span.Attributes().Get(workload.AttrSeq)
				cls, ok2 := span.Attributes().Get(workload.AttrClass)
				if !ok1 || !ok2 {
					s.bad = "span without labels"
					continue
				}
				if old, ok := s.seqOf[id]; ok && old != seq.Int() {
					s.bad = "trace with two seq values"
				}
				s.seqOf[id] = seq.Int()
				s.classOf[id] = cls.Str()
			}
		}
	}
	return false, rej
}

func (s *sink) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	refuse, rej := s.take(req.Traces())
	if refuse {
		return ptraceotlp.NewExportResponse(), status.Error(codes.Unavailable, "test refusal")
	}
	resp := ptraceotlp.NewExportResponse()
	if rej > 0 {
		resp.PartialSuccess().SetRejectedSpans(rej)
		resp.PartialSuccess().SetErrorMessage("test rejection")
	}
	return resp, nil
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/traces" || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalProto(body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	refuse, rej := s.take(req.Traces())
	if refuse {
		http.Error(w, "test refusal", http.StatusServiceUnavailable)
		return
	}
	resp := ptraceotlp.NewExportResponse()
	if rej > 0 {
		resp.PartialSuccess().SetRejectedSpans(rej)
	}
	b, _ := resp.MarshalProto()
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(b)
}

func startGRPCSink(t testing.TB, s *sink) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(srv, s)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

func smokeOptions(t *testing.T, protocol, endpoint string) options {
	dir := t.TempDir()
	return options{
		Endpoint: endpoint, Protocol: protocol, Rate: 5000, Duration: time.Second,
		Seed: 3, ErrorPct: 5, Connections: 2, Templates: 100, Quiet: true,
		Manifest: filepath.Join(dir, "manifest.jsonl"), SummaryJSON: filepath.Join(dir, "summary.json"),
		Linger: 100 * time.Millisecond,
		// Send on schedule for 0.5 s after the 1 s run, then send what is
		// still pending (batching delays, late spans) at once.
		Drain: 500 * time.Millisecond,
	}
}

// checkRun checks the summary against what the sink saw and the manifest.
func checkRun(t *testing.T, o options, s *Summary, snk *sink) {
	t.Helper()
	snk.mu.Lock()
	defer snk.mu.Unlock()
	if snk.bad != "" {
		t.Fatal(snk.bad)
	}
	if s.OfferedSpans == 0 || snk.spans == 0 {
		t.Fatalf("nothing sent: %+v", s)
	}
	if s.OfferedSpans != s.AcceptedSpans+s.RefusedSpans {
		t.Fatalf("offered %d != accepted %d + refused %d", s.OfferedSpans, s.AcceptedSpans, s.RefusedSpans)
	}
	// The sink counts spans of accepted requests including partially rejected ones.
	if s.AcceptedSpans != snk.spans-snk.rejected {
		t.Fatalf("summary accepted %d spans, sink got %d (rejected %d)", s.AcceptedSpans, snk.spans, snk.rejected)
	}
	if s.AcceptedRequests != snk.reqs {
		t.Fatalf("summary accepted %d requests, sink got %d", s.AcceptedRequests, snk.reqs)
	}
	if got := s.Refusals["Unavailable"].Spans + s.Refusals["http_503"].Spans; got != snk.refused {
		t.Fatalf("summary refused %d spans, sink refused %d", got, snk.refused)
	}
	if s.Refusals["partial_success"].Spans != snk.rejected {
		t.Fatalf("partial_success %d, sink rejected %d", s.Refusals["partial_success"].Spans, snk.rejected)
	}

	hdr, traces := readManifest(t, o.Manifest)
	if !hdr.Header || hdr.Seed != o.Seed || hdr.Rate != o.Rate || hdr.DurationS != o.Duration.Seconds() || hdr.ErrorPct != o.ErrorPct || hdr.StartedUnixNano == 0 {
		t.Fatalf("header %+v", hdr)
	}
	if int64(len(traces)) != s.Traces {
		t.Fatalf("manifest has %d traces, summary %d", len(traces), s.Traces)
	}
	var spans, refusedInManifest int64
	seen := map[int64]bool{}
	for _, tr := range traces {
		if seen[tr.Seq] {
			t.Fatalf("seq %d twice", tr.Seq)
		}
		seen[tr.Seq] = true
		spans += int64(tr.Spans)
		refusedInManifest += int64(tr.RefusedSpans)
		got := snk.perTrace[tr.TraceID]
		if got+tr.RefusedSpans != tr.Spans {
			t.Fatalf("trace %d: sink got %d spans, manifest says %d (refused %d)", tr.Seq, got, tr.Spans, tr.RefusedSpans)
		}
		if got > 0 && (snk.seqOf[tr.TraceID] != tr.Seq || snk.classOf[tr.TraceID] != tr.Class) {
			t.Fatalf("trace %d: labels seq %d class %s, manifest class %s", tr.Seq, snk.seqOf[tr.TraceID], snk.classOf[tr.TraceID], tr.Class)
		}
		if tr.LastSendUnixNano < hdr.StartedUnixNano {
			t.Fatalf("trace %d: last send before start", tr.Seq)
		}
	}
	if spans != s.OfferedSpans {
		t.Fatalf("manifest spans %d, offered %d", spans, s.OfferedSpans)
	}
	if refusedInManifest != s.RefusedSpans-s.Refusals["partial_success"].Spans {
		t.Fatalf("manifest refused %d, summary %d", refusedInManifest, s.RefusedSpans)
	}
	var js Summary
	b, err := os.ReadFile(o.SummaryJSON)
	if err == nil {
		err = json.Unmarshal(b, &js)
	}
	if err != nil || js.OfferedSpans != s.OfferedSpans || js.AcceptedSpans != s.AcceptedSpans {
		t.Fatalf("summary json: %v %+v", err, js)
	}
	t.Logf("offered %d spans / %d requests, accepted %d, refused %d %v, %d traces, %.3f µs/span CPU",
		s.OfferedSpans, s.OfferedRequests, s.AcceptedSpans, s.RefusedSpans, s.Refusals, s.Traces, s.CPUMicrosSpan)
}

func runMain(t *testing.T, o options) *Summary {
	t.Helper()
	var out bytes.Buffer
	s, err := run(context.Background(), o, &out, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeJSON(o.SummaryJSON, s); err != nil {
		t.Fatal(err)
	}
	t.Log(out.String())
	return s
}

func TestSmokeGRPC(t *testing.T) {
	snk := newSink()
	o := smokeOptions(t, "grpc", startGRPCSink(t, snk))
	s := runMain(t, o)
	if s.RefusedSpans != 0 {
		t.Fatalf("refusals in a clean run: %v", s.Refusals)
	}
	checkRun(t, o, s, snk)
	// About rate*duration spans are offered (late spans and batching delays
	// are flushed at the end with --drain 0).
	if s.OfferedSpans < 3000 || s.OfferedSpans > 8000 {
		t.Fatalf("offered %d spans at 5000/s for 1s", s.OfferedSpans)
	}
}

// TestSmokeGRPCShapeSDK: --shape sdk runs end to end over gRPC, and every
// request is one service's batch (one ResourceSpans), unlike the default
// shape's.
func TestSmokeGRPCShapeSDK(t *testing.T) {
	for _, c := range []struct {
		shape   string
		maxRess func(int) bool
	}{
		{"sdk", func(n int) bool { return n == 1 }},
		{"bench", func(n int) bool { return n > 1 }},
	} {
		t.Run(c.shape, func(t *testing.T) {
			snk := newSink()
			o := smokeOptions(t, "grpc", startGRPCSink(t, snk))
			o.Shape = c.shape
			s := runMain(t, o)
			checkRun(t, o, s, snk)
			if hdr, _ := readManifest(t, o.Manifest); hdr.Shape != c.shape {
				t.Errorf("manifest header shape %q, want %q", hdr.Shape, c.shape)
			}
			snk.mu.Lock()
			defer snk.mu.Unlock()
			if !c.maxRess(snk.maxResourceSpans) {
				t.Fatalf("--shape %s: up to %d ResourceSpans per request", c.shape, snk.maxResourceSpans)
			}
		})
	}
}

func TestSmokeHTTP(t *testing.T) {
	snk := newSink()
	srv := httptest.NewServer(snk)
	t.Cleanup(srv.Close)
	o := smokeOptions(t, "http", srv.Listener.Addr().String())
	s := runMain(t, o)
	if s.RefusedSpans != 0 {
		t.Fatalf("refusals in a clean run: %v", s.Refusals)
	}
	checkRun(t, o, s, snk)
}

func TestRefusalsCounted(t *testing.T) {
	t.Run("grpc", func(t *testing.T) {
		snk := newSink()
		snk.refuseEvery, snk.rejectEvery = 5, 7
		o := smokeOptions(t, "grpc", startGRPCSink(t, snk))
		s := runMain(t, o)
		if s.Refusals["Unavailable"].Requests == 0 || s.Refusals["partial_success"].Spans == 0 {
			t.Fatalf("refusals %v", s.Refusals)
		}
		checkRun(t, o, s, snk)
	})
	t.Run("http", func(t *testing.T) {
		snk := newSink()
		snk.refuseEvery, snk.rejectEvery = 5, 7
		srv := httptest.NewServer(snk)
		t.Cleanup(srv.Close)
		o := smokeOptions(t, "http", srv.URL)
		s := runMain(t, o)
		if s.Refusals["http_503"].Requests == 0 || s.Refusals["partial_success"].Spans == 0 {
			t.Fatalf("refusals %v", s.Refusals)
		}
		checkRun(t, o, s, snk)
	})
	t.Run("retry", func(t *testing.T) {
		snk := newSink()
		snk.refuseEvery = 4   // a retried request is a new request to the sink
		snk.refuseOnce = true // and is not refused again: 5 retries always suffice
		o := smokeOptions(t, "grpc", startGRPCSink(t, snk))
		o.Retry = true
		s := runMain(t, o)
		if s.Retries == 0 || s.RefusedSpans != 0 {
			t.Fatalf("retries %d, refused %v", s.Retries, s.Refusals)
		}
		snk.mu.Lock()
		snk.refused = 0 // refused attempts were retried successfully
		snk.mu.Unlock()
		checkRun(t, o, s, snk)
	})
}

func TestNoReceiver(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	o := smokeOptions(t, "http", addr)
	o.Duration = 300 * time.Millisecond
	s := runMain(t, o)
	if s.AcceptedSpans != 0 || s.RefusedSpans != s.OfferedSpans || s.Refusals["conn_error"].Spans != s.OfferedSpans {
		t.Fatalf("%+v", s)
	}
}

func TestTarget(t *testing.T) {
	for _, c := range []struct{ proto, ep, want string }{
		{"grpc", "", "127.0.0.1:4317"},
		{"grpc", "collector:5317", "collector:5317"},
		{"http", "", "http://127.0.0.1:4318/v1/traces"},
		{"http", "collector:9999", "http://collector:9999/v1/traces"},
		{"http", "collector", "http://collector:4318/v1/traces"},
		{"http", "http://h:1", "http://h:1/v1/traces"},
		{"http", "http://h:1/custom", "http://h:1/custom"},
	} {
		o := options{Protocol: c.proto, Endpoint: c.ep}
		if got := o.target(); got != c.want {
			t.Errorf("%s %q: %q, want %q", c.proto, c.ep, got, c.want)
		}
	}
}

func TestParseResponse(t *testing.T) {
	resp := ptraceotlp.NewExportResponse()
	resp.PartialSuccess().SetRejectedSpans(42)
	resp.PartialSuccess().SetErrorMessage("nope")
	b, _ := resp.MarshalProto()
	if n, msg := parseExportResponse(b); n != 42 || msg != "nope" {
		t.Fatalf("%d %q", n, msg)
	}
	if n, _ := parseExportResponse(nil); n != 0 {
		t.Fatal(n)
	}
}

func TestBufPool(t *testing.T) {
	for _, n := range []int{1, 4096, 4097, 100000, 1 << 20} {
		b := pool.Get(n)
		if len(*b) != n || cap(*b) < n {
			t.Fatalf("%d: len %d cap %d", n, len(*b), cap(*b))
		}
		pool.Put(b)
	}
}

// TestHelperSink is not a test: with TAILSIFT_HELPER_SINK=host:port it runs a
// counting OTLP gRPC receiver in its own process (so that its CPU does not
// count as the loadgen's) for TAILSIFT_HELPER_SINK_SECONDS (default 120);
// with TAILSIFT_HELPER_SINK_HTTP=host:port also an OTLP HTTP one.
//
//	go test -c -o /tmp/lg.test ./cmd/tailsift-loadgen
//	TAILSIFT_HELPER_SINK=127.0.0.1:14317 /tmp/lg.test -test.run TestHelperSink -test.v &
//	go run ./cmd/tailsift-loadgen --endpoint 127.0.0.1:14317 --rate 20000 --duration 10s
func TestHelperSink(t *testing.T) {
	addr := os.Getenv("TAILSIFT_HELPER_SINK")
	if addr == "" {
		t.Skip("helper process only")
	}
	secs := 120 * time.Second
	if v := os.Getenv("TAILSIFT_HELPER_SINK_SECONDS"); v != "" {
		d, err := time.ParseDuration(v + "s")
		if err != nil {
			t.Fatal(err)
		}
		secs = d
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := &countingSink{}
	srv := grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(srv, c)
	go func() { _ = srv.Serve(lis) }()
	if h := os.Getenv("TAILSIFT_HELPER_SINK_HTTP"); h != "" {
		hl, err := net.Listen("tcp", h)
		if err != nil {
			t.Fatal(err)
		}
		hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			req := ptraceotlp.NewExportRequest()
			if err := req.UnmarshalProto(body); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			_, _ = c.Export(r.Context(), req)
			w.Header().Set("Content-Type", "application/x-protobuf")
		})}
		go func() { _ = hs.Serve(hl) }()
		defer func() { _ = hs.Close() }()
	}
	time.Sleep(secs)
	srv.Stop()
	t.Logf("helper sink: %d requests, %d spans", c.reqs.Load(), c.spans.Load())
}

type countingSink struct {
	ptraceotlp.UnimplementedGRPCServer
	reqs, spans atomic.Int64
}

func (c *countingSink) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	c.reqs.Add(1)
	c.spans.Add(int64(req.Traces().SpanCount()))
	return ptraceotlp.NewExportResponse(), nil
}

// readManifest reads the manifest a run wrote.
func readManifest(t *testing.T, path string) (workload.ManifestHeader, []workload.ManifestTrace) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	hdr, traces, err := workload.ReadManifest(f)
	if err != nil {
		t.Fatal(err)
	}
	return hdr, traces
}
