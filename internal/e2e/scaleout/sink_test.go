//go:build linux

package scaleout

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc/metadata"

	"github.com/tailsift/tailsift/internal/e2e"
)

// gatewayHeader names the gateway that sent a request to the sink; each
// gateway's otlp_grpc exporter sets it.
const gatewayHeader = "x-tailsift-gateway"

// arrival is what the sink keeps of one span.
type arrival struct {
	count    int       // more than 1 is a duplicate
	gateways []string  // the gateways that sent it, in order, one per arrival
	first    time.Time // when it first arrived
}

// sink is an OTLP gRPC trace server that records every span the gateways
// send it, with the gateway that sent it.
type sink struct {
	ptraceotlp.UnimplementedGRPCServer

	addr      string
	countOnly bool // count spans without recording them (benchmarks)

	mu     sync.Mutex
	spans  map[pcommon.TraceID]map[pcommon.SpanID]*arrival
	total  int
	latest time.Time
}

// startSink starts a sink on a free loopback port; it stops with the test.
func startSink(t testing.TB) *sink {
	t.Helper()
	s := &sink{spans: make(map[pcommon.TraceID]map[pcommon.SpanID]*arrival)}
	s.addr = e2e.ServeTraces(t, s)
	return s
}

// Export implements ptraceotlp.GRPCServer.
func (s *sink) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	gateway := "?"
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(gatewayHeader); len(v) > 0 {
			gateway = v[0]
		}
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latest = now
	if s.countOnly {
		s.total += req.Traces().SpanCount()
		return ptraceotlp.NewExportResponse(), nil
	}
	rss := req.Traces().ResourceSpans()
	for i := range rss.Len() {
		sss := rss.At(i).ScopeSpans()
		for j := range sss.Len() {
			spans := sss.At(j).Spans()
			for k := range spans.Len() {
				span := spans.At(k)
				byID := s.spans[span.TraceID()]
				if byID == nil {
					byID = make(map[pcommon.SpanID]*arrival)
					s.spans[span.TraceID()] = byID
				}
				a := byID[span.SpanID()]
				if a == nil {
					a = &arrival{first: now}
					byID[span.SpanID()] = a
				}
				a.count++
				a.gateways = append(a.gateways, gateway)
				s.total++
			}
		}
	}
	return ptraceotlp.NewExportResponse(), nil
}

// received is a copy of what the sink has recorded, by trace and span.
type received map[pcommon.TraceID]map[pcommon.SpanID]arrival

// snapshot copies what arrived so far, for the checker to read at leisure.
func (s *sink) snapshot() received {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(received, len(s.spans))
	for tid, byID := range s.spans {
		spans := make(map[pcommon.SpanID]arrival, len(byID))
		for sid, a := range byID {
			spans[sid] = *a
		}
		out[tid] = spans
	}
	return out
}

// quietSince returns how many spans arrived and when the last one did.
func (s *sink) quietSince() (spans int, last time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total, s.latest
}

// settle waits until it is past notBefore and nothing has arrived for
// quiet, or until timeout, and reports whether the sink settled.
func (s *sink) settle(notBefore time.Time, quiet, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		_, at := s.quietSince()
		now := time.Now()
		if now.After(notBefore) && now.Sub(at) >= quiet {
			return true
		}
		if now.After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}
