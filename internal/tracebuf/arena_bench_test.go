package tracebuf

import (
	"context"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/clock/clocktest"
)

// encodeSized builds a request with spans spans of each trace, each span
// carrying an attribute of size bytes.
func encodeSized(tb testing.TB, traces []uint64, spans, size int) []byte {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "svc")
	ss := rs.ScopeSpans().AppendEmpty().Spans()
	pad := strings.Repeat("x", size)
	for _, n := range traces {
		for k := range spans {
			sp := ss.AppendEmpty()
			sp.SetTraceID(tid(n))
			var sid [8]byte
			binary.BigEndian.PutUint64(sid[:], uint64(k)+2)
			sp.SetSpanID(sid)
			sp.SetParentSpanID(pcommon.SpanID{0, 0, 0, 0, 0, 0, 0, 1})
			sp.Attributes().PutStr("pad", pad)
		}
	}
	var m ptrace.ProtoMarshaler
	buf, err := m.MarshalTraces(td)
	require.NoError(tb, err)
	return buf
}

// BenchmarkIngestOverBudget feeds one shard with an 8 MiB budget new traces
// without end, so that every request pushes the oldest traces out for
// memory: the arena's steady churn. uniform sends one span size; mixed
// alternates small and large spans, whose blocks the other size cannot
// reuse. Compare with
//
//	go test -run '^$' -bench IngestOverBudget -count 8 ./internal/tracebuf/ | tee new.txt
//	benchstat old.txt new.txt
func BenchmarkIngestOverBudget(b *testing.B) {
	for _, bc := range []struct {
		name  string
		sizes []int
	}{
		{"uniform", []int{300}},
		{"mixed", []int{60, 60, 2000}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			const perReq, spans = 50, 4
			var reqs [][]byte
			n := uint64(0)
			for i := range 512 {
				traces := make([]uint64, perReq)
				for k := range traces {
					n++
					traces[k] = n
				}
				reqs = append(reqs, encodeSized(b, traces, spans, bc.sizes[i%len(bc.sizes)]))
			}
			cfg := testBufferConfig()
			cfg.Completion.MaxSpans = 1000
			cfg.Buffer.MaxBytes = 8 << 20
			buf, err := New(cfg, func(context.Context, ptrace.Traces) error { return nil },
				Settings{Clock: clocktest.NewFake(time.Unix(0, 0))})
			require.NoError(b, err)
			buf.Start()
			defer func() { require.NoError(b, buf.Shutdown(context.Background())) }()
			ctx := context.Background()
			var bytes int64
			i := 0
			b.ReportAllocs()
			faults := minorFaults()
			for b.Loop() {
				req := reqs[i%len(reqs)]
				bytes += int64(len(req))
				// Ingest owns what it is given: hand it a copy.
				if err := buf.Ingest(ctx, append([]byte(nil), req...)); err != nil {
					b.Fatal(err)
				}
				i++
			}
			require.NoError(b, buf.Sync(ctx))
			b.SetBytes(bytes / int64(max(i, 1)))
			b.ReportMetric(float64(i*perReq*spans)/b.Elapsed().Seconds(), "spans/s")
			b.ReportMetric(float64(minorFaults()-faults)/float64(i*perReq*spans), "faults/span")
			b.ReportMetric(float64(MappedBytes())/(1<<20), "mapped-MiB")
		})
	}
}
