package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc/encoding"
)

// zstdCompressor lets the sink's gRPC server accept requests from the
// collector's otlp_grpc exporter configured with `compression: zstd`.
type zstdCompressor struct {
	enc *zstd.Encoder
	dec *zstd.Decoder
}

func init() {
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		panic(fmt.Sprintf("zstd encoder: %v", err))
	}
	dec, err := zstd.NewReader(nil)
	if err != nil {
		panic(fmt.Sprintf("zstd decoder: %v", err))
	}
	encoding.RegisterCompressor(&zstdCompressor{enc: enc, dec: dec})
}

func (*zstdCompressor) Name() string { return "zstd" }

func (c *zstdCompressor) Compress(w io.Writer) (io.WriteCloser, error) {
	return &zstdWriter{enc: c.enc, w: w}, nil
}

func (c *zstdCompressor) Decompress(r io.Reader) (io.Reader, error) {
	compressed, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read zstd message: %w", err)
	}
	plain, err := c.dec.DecodeAll(compressed, nil)
	if err != nil {
		return nil, fmt.Errorf("decode zstd message: %w", err)
	}
	return bytes.NewReader(plain), nil
}

// zstdWriter buffers a message and compresses it whole on Close.
type zstdWriter struct {
	enc *zstd.Encoder
	w   io.Writer
	buf []byte
}

func (z *zstdWriter) Write(p []byte) (int, error) {
	z.buf = append(z.buf, p...)
	return len(p), nil
}

func (z *zstdWriter) Close() error {
	_, err := z.w.Write(z.enc.EncodeAll(z.buf, nil))
	return err
}

// receivedSpan is what the sink keeps of one span.
type receivedSpan struct {
	count      int // how many times the span arrived; more than 1 is a duplicate
	traceState string
	parent     pcommon.SpanID
}

// sink is an OTLP gRPC trace server that records every span it receives,
// keyed by trace ID and span ID.
type sink struct {
	ptraceotlp.UnimplementedGRPCServer

	addr string

	mu         sync.Mutex
	traces     map[pcommon.TraceID]map[pcommon.SpanID]*receivedSpan
	spans      int // spans received, duplicates included
	lastChange time.Time
}

// newSink starts a sink on a free loopback port; it stops with the test.
func newSink(t testing.TB) *sink {
	t.Helper()
	s := &sink{traces: make(map[pcommon.TraceID]map[pcommon.SpanID]*receivedSpan)}
	s.addr = ServeTraces(t, s)
	return s
}

// Export implements ptraceotlp.GRPCServer.
func (s *sink) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	td := req.Traces()
	s.mu.Lock()
	defer s.mu.Unlock()
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				span := spans.At(k)
				byID := s.traces[span.TraceID()]
				if byID == nil {
					byID = make(map[pcommon.SpanID]*receivedSpan)
					s.traces[span.TraceID()] = byID
				}
				rs := byID[span.SpanID()]
				if rs == nil {
					rs = &receivedSpan{traceState: span.TraceState().AsRaw(), parent: span.ParentSpanID()}
					byID[span.SpanID()] = rs
				}
				rs.count++
				s.spans++
			}
		}
	}
	s.lastChange = time.Now()
	return ptraceotlp.NewExportResponse(), nil
}

// trace returns a copy of what arrived for one trace (nil if nothing).
func (s *sink) trace(id pcommon.TraceID) map[pcommon.SpanID]receivedSpan {
	s.mu.Lock()
	defer s.mu.Unlock()
	byID := s.traces[id]
	if byID == nil {
		return nil
	}
	out := make(map[pcommon.SpanID]receivedSpan, len(byID))
	for id, rs := range byID {
		out[id] = *rs
	}
	return out
}

// traceIDs returns the IDs of all traces that have at least one span.
func (s *sink) traceIDs() []pcommon.TraceID {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]pcommon.TraceID, 0, len(s.traces))
	for id := range s.traces {
		out = append(out, id)
	}
	return out
}

// stats returns the number of spans received and when the last one came.
func (s *sink) stats() (spans int, lastChange time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.spans, s.lastChange
}

// completeness checks that every span of tt arrived exactly once and
// nothing else arrived for its trace ID. It returns "" when so, and a
// description of the difference otherwise.
func (s *sink) completeness(tt *testTrace) string {
	got := s.trace(tt.pid())
	var problems []string
	want := make(map[pcommon.SpanID]bool, len(tt.spans))
	for _, st := range tt.spans {
		id := pcommon.SpanID(st.SpanContext.SpanID())
		want[id] = true
		rs, ok := got[id]
		switch {
		case !ok:
			problems = append(problems, "missing "+id.String())
		case rs.count != 1:
			problems = append(problems, fmt.Sprintf("%s arrived %d times", id, rs.count))
		}
	}
	for id := range got {
		if !want[id] {
			problems = append(problems, "unexpected span "+id.String())
		}
	}
	if len(problems) == 0 {
		return ""
	}
	sort.Strings(problems)
	return fmt.Sprintf("%s trace %s (%d spans, %d arrived): %s",
		tt.class, tt.pid(), len(tt.spans), len(got), strings.Join(problems, ", "))
}

// incomplete returns a description of each trace in tts that has not
// arrived complete, at most limit of them.
func (s *sink) incomplete(tts []*testTrace, limit int) (n int, details []string) {
	for _, tt := range tts {
		if p := s.completeness(tt); p != "" {
			n++
			if len(details) < limit {
				details = append(details, p)
			}
		}
	}
	return n, details
}

// awaitComplete polls until every trace in tts has arrived complete or
// timeout passes, and reports which happened. Tests then assert with
// incomplete, which says what is missing.
func (s *sink) awaitComplete(tts []*testTrace, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if n, _ := s.incomplete(tts, 0); n == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// assertComplete fails the test if any trace of tts has not arrived
// complete, naming the first few.
func (s *sink) assertComplete(t testing.TB, tts []*testTrace) bool {
	t.Helper()
	n, details := s.incomplete(tts, 10)
	if n != 0 {
		t.Errorf("%d of %d traces did not arrive complete; first ones:\n  %s", n, len(tts), strings.Join(details, "\n  "))
		return false
	}
	return true
}

// waitSettled waits until no time is before notBefore and the sink has
// received nothing for quietFor, failing the test after timeout.
func (s *sink) waitSettled(t testing.TB, notBefore time.Time, quietFor, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		_, last := s.stats()
		now := time.Now()
		if now.After(notBefore) && now.Sub(last) >= quietFor {
			return
		}
		if now.After(deadline) {
			n, _ := s.stats()
			t.Fatalf("sink still receiving after %s (%d spans so far, last %s ago)", timeout, n, now.Sub(last))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
