package browser

import (
	"context"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// route is a service and root span name, with its usual latency.
type route struct {
	service, name string
	median        time.Duration
}

var routes = []route{
	{"checkout", "GET /cart", 20 * time.Millisecond},
	{"checkout", "POST /order", 80 * time.Millisecond},
	{"payments", "POST /charge", 150 * time.Millisecond},
	{"search", "GET /search", 40 * time.Millisecond},
}

// Load shape: every tick a batch of tracesPerTick traces of four spans,
// each one ending now. Of them errorPct % carry an ERROR span, anomalyPct %
// last 20 times their route's median, and latePct % get a span again
// lateAfter later, once they are decided.
const (
	tick          = 100 * time.Millisecond
	tracesPerTick = 20
	errorPct      = 3
	anomalyPct    = 1
	latePct       = 2
	lateAfter     = 1500 * time.Millisecond
)

// sendLoad sends the load to the collector's OTLP gRPC endpoint until the
// test ends; it returns a function that stops it and waits.
func sendLoad(t *testing.T, addr string) (stop func()) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	client := ptraceotlp.NewGRPCClient(conn)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(14, 14))
		type late struct {
			due   time.Time
			trace pcommon.TraceID
			r     route
		}
		var pending []late
		tk := time.NewTicker(tick)
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tk.C:
				td := ptrace.NewTraces()
				for range tracesPerTick {
					r := routes[rng.IntN(len(routes))]
					dur := time.Duration(float64(r.median) * math.Exp(0.3*rng.NormFloat64()))
					if rng.Float64() < anomalyPct/100.0 {
						dur *= 20
					}
					id := appendTrace(td, rng, r, now, dur, rng.Float64() < errorPct/100.0)
					if rng.Float64() < latePct/100.0 {
						pending = append(pending, late{now.Add(lateAfter), id, r})
					}
				}
				for len(pending) > 0 && !pending[0].due.After(now) {
					appendSpan(td, rng, pending[0].r, pending[0].trace, now, 5*time.Millisecond, false, false)
					pending = pending[1:]
				}
				rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
				if _, err := client.Export(rctx, ptraceotlp.NewExportRequestFromTraces(td)); err != nil && ctx.Err() == nil {
					t.Logf("export: %v", err)
				}
				rcancel()
			}
		}
	})
	return func() {
		cancel()
		wg.Wait()
		_ = conn.Close()
	}
}

// appendTrace appends a trace of r ending at end: a root and three
// children, one of them an ERROR when failed; it returns its ID.
func appendTrace(td ptrace.Traces, rng *rand.Rand, r route, end time.Time, dur time.Duration, failed bool) pcommon.TraceID {
	var id pcommon.TraceID
	for i := range id {
		id[i] = byte(rng.Uint32())
	}
	root := appendSpan(td, rng, r, id, end, dur, true, false)
	for i := range 3 {
		child := appendSpan(td, rng, r, id, end, dur/4, false, failed && i == 2)
		child.SetParentSpanID(root.SpanID())
	}
	return id
}

func appendSpan(td ptrace.Traces, rng *rand.Rand, r route, id pcommon.TraceID, end time.Time, dur time.Duration, root, failed bool) ptrace.Span {
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", r.service)
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID(id)
	var sid pcommon.SpanID
	for i := range sid {
		sid[i] = byte(rng.Uint32())
	}
	sp.SetSpanID(sid)
	if root {
		sp.SetName(r.name)
	} else {
		sp.SetName("db.query")
		sp.SetParentSpanID(pcommon.SpanID{1}) // a late span's parent; appendTrace sets the root
	}
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(end.Add(-dur)))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
	if failed {
		sp.Status().SetCode(ptrace.StatusCodeError)
	}
	return sp
}
