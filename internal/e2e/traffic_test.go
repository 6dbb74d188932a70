package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// traceClass is what a test trace should make the sampler do.
type traceClass int

const (
	// classFast: root 10–100 ms, no error; only the probabilistic baseline keeps it.
	classFast traceClass = iota
	// classError: an ERROR status on a non-root span; root OK and short.
	classError
	// classSlow: root lasts 1.2–3 s (by its timestamps), no error.
	classSlow
)

func (c traceClass) String() string {
	switch c {
	case classFast:
		return "fast"
	case classError:
		return "error"
	case classSlow:
		return "slow"
	}
	return fmt.Sprintf("class(%d)", int(c))
}

var (
	frontend = resource.NewSchemaless(attribute.String("service.name", "e2e-frontend"))
	backend  = resource.NewSchemaless(attribute.String("service.name", "e2e-backend"))
	scope    = instrumentation.Scope{Name: "github.com/tailsift/tailsift/internal/e2e", Version: "0.0.1"}
)

// testTrace is one generated trace and the export requests it is split into.
type testTrace struct {
	id    trace.TraceID
	class traceClass
	spans []tracetest.SpanStub // spans[0] is the root
	// chunks are the spans of each export request carrying this trace, in
	// sending order; the root is alone in the last chunk, as an SDK that
	// flushes children before their parent ends would send it.
	chunks [][]sdktrace.ReadOnlySpan
}

func (tt *testTrace) pid() pcommon.TraceID { return pcommon.TraceID(tt.id) }

// newTrace generates a trace of class c with 3–8 children split into 2–4
// requests, plus one request for the root. Its timestamps are around now.
func newTrace(rng *rand.Rand, c traceClass, now time.Time) *testTrace {
	tt := &testTrace{class: c}
	for !tt.id.IsValid() {
		putRandom(rng, tt.id[:])
	}
	var rootDur time.Duration
	switch c {
	case classSlow:
		rootDur = 1200*time.Millisecond + time.Duration(rng.Int64N(int64(1800*time.Millisecond)))
	default:
		rootDur = 10*time.Millisecond + time.Duration(rng.Int64N(int64(90*time.Millisecond)))
	}
	rootStart := now.Add(-rootDur)
	rootCtx := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tt.id, SpanID: newSpanID(rng), TraceFlags: trace.FlagsSampled,
	})
	root := tracetest.SpanStub{
		Name:                 "GET /" + c.String(),
		SpanContext:          rootCtx,
		SpanKind:             trace.SpanKindServer,
		StartTime:            rootStart,
		EndTime:              rootStart.Add(rootDur),
		Status:               sdktrace.Status{Code: codes.Ok},
		Resource:             frontend,
		InstrumentationScope: scope,
	}
	tt.spans = append(tt.spans, root)

	nChildren := 3 + rng.IntN(6)
	errorChild := -1
	if c == classError {
		errorChild = rng.IntN(nChildren)
	}
	for i := range nChildren {
		// Children lie inside the root: start in its first half, last up
		// to the rest of it.
		off := time.Duration(rng.Int64N(int64(rootDur / 2)))
		dur := time.Duration(1 + rng.Int64N(int64(rootDur-off)))
		child := tracetest.SpanStub{
			Name: fmt.Sprintf("query-%d", i),
			SpanContext: trace.NewSpanContext(trace.SpanContextConfig{
				TraceID: tt.id, SpanID: newSpanID(rng), TraceFlags: trace.FlagsSampled,
			}),
			Parent:               rootCtx,
			SpanKind:             trace.SpanKindClient,
			StartTime:            rootStart.Add(off),
			EndTime:              rootStart.Add(off + dur),
			Attributes:           []attribute.KeyValue{attribute.Int("e2e.child", i)},
			Resource:             backend,
			InstrumentationScope: scope,
		}
		if i == errorChild {
			child.Status = sdktrace.Status{Code: codes.Error, Description: "backend failed"}
		}
		tt.spans = append(tt.spans, child)
	}

	// Split the children into 2–4 requests, then the root alone.
	nChunks := min(2+rng.IntN(3), nChildren)
	children := tt.spans[1:]
	for k := range nChunks {
		lo, hi := k*len(children)/nChunks, (k+1)*len(children)/nChunks
		chunk := make([]sdktrace.ReadOnlySpan, 0, hi-lo)
		for _, st := range children[lo:hi] {
			chunk = append(chunk, st.Snapshot())
		}
		tt.chunks = append(tt.chunks, chunk)
	}
	tt.chunks = append(tt.chunks, []sdktrace.ReadOnlySpan{root.Snapshot()})
	return tt
}

func newSpanID(rng *rand.Rand) trace.SpanID {
	var id trace.SpanID
	for !id.IsValid() {
		putRandom(rng, id[:])
	}
	return id
}

func putRandom(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}

// newTraces generates traces of the given classes in random order.
func newTraces(rng *rand.Rand, counts map[traceClass]int) []*testTrace {
	now := time.Now()
	var tts []*testTrace
	for _, c := range []traceClass{classFast, classError, classSlow} {
		for range counts[c] {
			tts = append(tts, newTrace(rng, c, now))
		}
	}
	rng.Shuffle(len(tts), func(i, j int) { tts[i], tts[j] = tts[j], tts[i] })
	return tts
}

// byClass returns the traces of class c.
func byClass(tts []*testTrace, c traceClass) []*testTrace {
	var out []*testTrace
	for _, tt := range tts {
		if tt.class == c {
			out = append(out, tt)
		}
	}
	return out
}

// exportRequest is one ExportSpans call and the traces it carries parts of.
type exportRequest struct {
	spans  []sdktrace.ReadOnlySpan
	traces []*testTrace
}

// interleave turns a group of traces into a sequence of export requests in
// which the traces' chunks are mixed: request r carries chunk r of every
// trace, aligned so that all roots travel in the last request.
func interleave(group []*testTrace) []exportRequest {
	rounds := 0
	for _, tt := range group {
		rounds = max(rounds, len(tt.chunks))
	}
	reqs := make([]exportRequest, rounds)
	for _, tt := range group {
		offset := rounds - len(tt.chunks)
		for k, chunk := range tt.chunks {
			r := &reqs[offset+k]
			r.spans = append(r.spans, chunk...)
			r.traces = append(r.traces, tt)
		}
	}
	return reqs
}

// transport is how a test reaches the collector's OTLP receiver.
type transport string

const (
	overGRPC transport = "grpc"
	overHTTP transport = "http"
)

var transports = []transport{overGRPC, overHTTP}

// newExporter returns an SDK exporter sending to the collector over tr,
// with retries off so that every ExportSpans result is the collector's
// answer to exactly one request.
func newExporter(t testing.TB, tr transport, col *collector) sdktrace.SpanExporter {
	t.Helper()
	ctx := context.Background()
	var (
		exp sdktrace.SpanExporter
		err error
	)
	switch tr {
	case overGRPC:
		exp, err = otlptracegrpc.New(ctx,
			otlptracegrpc.WithEndpoint(col.grpcAddr),
			otlptracegrpc.WithInsecure(),
			otlptracegrpc.WithTimeout(15*time.Second),
			otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}),
		)
	case overHTTP:
		exp, err = otlptracehttp.New(ctx,
			otlptracehttp.WithEndpoint(col.httpAddr),
			otlptracehttp.WithInsecure(),
			otlptracehttp.WithCompression(otlptracehttp.GzipCompression),
			otlptracehttp.WithTimeout(15*time.Second),
			otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}),
		)
	default:
		t.Fatalf("unknown transport %q", tr)
	}
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = exp.Shutdown(ctx)
	})
	return exp
}

// sendStats counts the outcome of export requests; it is safe for
// concurrent use.
type sendStats struct {
	mu       sync.Mutex
	requests int
	failed   int
	firstErr error
	// failedTraces holds the traces with at least one failed request.
	failedTraces map[trace.TraceID]bool
}

func (s *sendStats) record(req exportRequest, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if err == nil {
		return
	}
	s.failed++
	if s.firstErr == nil {
		s.firstErr = err
	}
	if s.failedTraces == nil {
		s.failedTraces = make(map[trace.TraceID]bool)
	}
	for _, tt := range req.traces {
		s.failedTraces[tt.id] = true
	}
}

// accepted reports whether every request carrying tt succeeded.
func (s *sendStats) accepted(tt *testTrace) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.failedTraces[tt.id]
}

// sendAll sends tts through exp from workers goroutines, in interleaved
// groups of groupSize traces, and returns the outcome of every request.
func sendAll(ctx context.Context, exp sdktrace.SpanExporter, tts []*testTrace, groupSize, workers int) *sendStats {
	stats := &sendStats{}
	groups := make(chan []*testTrace)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for group := range groups {
				for _, req := range interleave(group) {
					stats.record(req, exp.ExportSpans(ctx, req.spans))
				}
			}
		}()
	}
	for lo := 0; lo < len(tts); lo += groupSize {
		groups <- tts[lo:min(lo+groupSize, len(tts))]
	}
	close(groups)
	wg.Wait()
	return stats
}
