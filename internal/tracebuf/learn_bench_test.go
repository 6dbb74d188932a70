package tracebuf

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/store/storetest"
)

// BenchmarkIngestLearn measures ingest of the benchmark workload (as
// BenchmarkIngestRED does, shards and decisions included) without route
// tracking (routes=none: no route table, one quiet list, as before learned
// completion), with the routes tracked for the metrics only (learn
// disabled), and with learned quiet, reporting the CPU the process used per
// span and, for the last two, their ratio to routes=none of the same run.
//
//	go test -run='^$' -bench=IngestLearn -benchtime=20000x -count=6 ./internal/tracebuf/ | benchstat -col /routes -
func BenchmarkIngestLearn(b *testing.B) {
	w := storetest.Record(b, 20_000, 5*time.Second)
	var none float64 // cpu-ns/span of routes=none in this run
	for _, mode := range []string{"none", "tracked", "learned"} {
		b.Run("routes="+mode, func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.Shards = 1
			switch mode {
			case "none":
				cfg.Completion.Learn.MaxRoutes = 0
			case "tracked":
				cfg.Completion.Learn.Enabled = false
			}
			buf, err := New(cfg, func(context.Context, ptrace.Traces) error { return nil }, Settings{})
			if err != nil {
				b.Fatal(err)
			}
			buf.Start()
			ctx := context.Background()
			b.ReportAllocs()
			cpu := storetest.CPU()
			spans := replay(ctx, b, buf, w, nil)
			_ = buf.Sync(ctx)
			_ = buf.Shutdown(ctx)
			perSpan := float64((storetest.CPU() - cpu).Nanoseconds()) / float64(spans)
			b.ReportMetric(perSpan, "cpu-ns/span")
			if mode == "none" {
				none = perSpan
			} else if none > 0 {
				b.ReportMetric(perSpan/none, "vs-none")
			}
		})
	}
}

// BenchmarkCompletionQuiet measures the quiet rule's bookkeeping for a
// message of 16 spans: each a span of one of 10 000 rooted traces, drawn at
// random (touch); then, as the shard does once per message, the next
// deadline is read (next) and the due traces are looked for (quietDue).
// With one quiet class (fixed quiet) and with the traces spread over 33
// learned classes.
//
//	go test -run='^$' -bench=CompletionQuiet -count=6 ./internal/tracebuf/ | benchstat -col /classes -
func BenchmarkCompletionQuiet(b *testing.B) {
	const spansPerMessage = 16
	for _, learned := range []bool{false, true} {
		name := "classes=1"
		if learned {
			name = "classes=33"
		}
		b.Run(name, func(b *testing.B) {
			cfg := DefaultConfig().Completion
			cfg.Learn.Enabled = learned
			c := newCompletion(cfg, 0)
			c.routes = nil // classes are set by hand below
			traces := make([]*trace, 10_000)
			for i := range traces {
				t := &trace{hasRoot: true, route: -1}
				c.touch(t, nil, nil, 0)
				if learned {
					c.unquiet(t)
					c.join(t, uint8(i%int(c.learned)))
				}
				traces[i] = t
			}
			b.ReportAllocs()
			now, rnd := int64(1), uint64(1)
			for b.Loop() {
				now++
				for range spansPerMessage {
					rnd ^= rnd << 13
					rnd ^= rnd >> 7
					rnd ^= rnd << 17
					c.touch(traces[rnd%uint64(len(traces))], nil, nil, now)
				}
				_ = c.next()
				if t, _ := c.quietDue(now); t != nil {
					b.Fatal("nothing is due")
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*spansPerMessage), "ns/span")
		})
	}
}
