package tracebuf

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// BenchmarkAppendTrace encodes a buffered trace of 64 spans under 4
// resources into an output batch, as a keep decision does (appendTrace, its
// dedup included): with distinct span IDs (dups=none, the common case),
// with every span retried once (dups=retried), and with every span ID
// given to two different spans (dups=sameid, a client bug). It reads the
// shard's trace from the benchmark's goroutine: the shard is idle (fake
// clock, nothing ingested after Sync).
//
//	go test -run '^$' -bench AppendTrace -count 6 ./internal/tracebuf | benchstat -col /dups -
func BenchmarkAppendTrace(b *testing.B) {
	const n = 64
	for _, dups := range []string{"none", "retried", "sameid"} {
		b.Run("dups="+dups, func(b *testing.B) {
			ctx := context.Background()
			cfg := testBufferConfig()
			cfg.Completion.MaxSpans = 1000
			buf, _ := startBuffer(b, cfg, func(context.Context, ptrace.Traces) error { return nil }, nil)
			var specs []spanSpec
			for k := range uint64(n) {
				sp := spanSpec{trace: 1, span: 2 + k, parent: 1, service: fmt.Sprint("svc-", k%4), start: 10, end: 90}
				specs = append(specs, sp)
				switch dups {
				case "retried":
					specs = append(specs, sp)
				case "sameid":
					sp.end = 80
					specs = append(specs, sp)
				}
			}
			require.NoError(b, buf.Ingest(ctx, encodeSpans(b, specs...)))
			require.NoError(b, buf.Sync(ctx))
			s := buf.shards[0]
			tr := s.traces[tid(1)]
			require.NotNil(b, tr)
			o := outBatch{since: -1}
			b.ReportAllocs()
			for b.Loop() {
				o.reset()
				s.appendTrace(&o, tr, nil, nil, 0)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(specs)), "ns/span")
		})
	}
}
