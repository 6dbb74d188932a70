package tailsiftprocessor

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/tailsift/tailsift/processor/tailsiftprocessor/internal/metadata"
)

// benchBatches builds n batches of realistic spans (about 500 bytes each,
// 10 attributes, 9 resource attributes), 12 spans per trace, each trace's
// spans spread over three batches.
func benchBatches(n, tracesPerBatch int) []ptrace.Traces {
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([]ptrace.Traces, n)
	for b := range out {
		td := ptrace.NewTraces()
		for svc := range 3 {
			rs := td.ResourceSpans().AppendEmpty()
			attrs := rs.Resource().Attributes()
			attrs.PutStr("service.name", fmt.Sprintf("service-%02d", svc))
			attrs.PutStr("service.version", "1.42.7")
			attrs.PutStr("service.namespace", "shop")
			attrs.PutStr("deployment.environment", "production")
			attrs.PutStr("host.name", fmt.Sprintf("ip-10-0-%d-%d.ec2.internal", svc, b%7))
			attrs.PutStr("k8s.pod.name", fmt.Sprintf("service-%02d-7d9f8c6b5-x%04d", svc, b%97))
			attrs.PutStr("k8s.namespace.name", "shop-prod")
			attrs.PutStr("telemetry.sdk.language", "go")
			attrs.PutStr("telemetry.sdk.version", "1.47.0")
			ss := rs.ScopeSpans().AppendEmpty()
			ss.Scope().SetName("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp")
			ss.Scope().SetVersion("0.60.0")
			spans := ss.Spans()
			for t := range tracesPerBatch {
				var tid pcommon.TraceID
				for i := range tid {
					tid[i] = byte(rng.Uint32())
				}
				tid[0], tid[1] = byte(b), byte(t)
				for k := range 4 {
					sp := spans.AppendEmpty()
					sp.SetTraceID(tid)
					sp.SetSpanID(pcommon.SpanID{byte(svc), byte(k), byte(t), byte(b), 1, 2, 3, 4})
					if svc != 0 || k != 0 {
						sp.SetParentSpanID(pcommon.SpanID{0, 0, byte(t), byte(b), 1, 2, 3, 4})
					}
					sp.SetName(fmt.Sprintf("GET /api/v1/items/{id}/op-%d", k))
					sp.SetKind(ptrace.SpanKindServer)
					start := time.Unix(1700000000, int64(rng.IntN(1e9)))
					sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
					sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Duration(rng.IntN(200)) * time.Millisecond)))
					a := sp.Attributes()
					a.PutStr("http.request.method", "GET")
					a.PutStr("http.route", "/api/v1/items/{id}")
					a.PutStr("url.full", fmt.Sprintf("https://shop.example.com/api/v1/items/%d?ref=home", rng.IntN(1e6)))
					a.PutInt("http.response.status_code", 200)
					a.PutStr("server.address", "shop.example.com")
					a.PutInt("server.port", 443)
					a.PutStr("network.protocol.version", "1.1")
					a.PutStr("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36")
					a.PutStr("client.address", fmt.Sprintf("10.1.%d.%d", rng.IntN(255), rng.IntN(255)))
					a.PutInt("http.response.body.size", int64(rng.IntN(1e5)))
				}
			}
		}
		out[b] = td
	}
	return out
}

// BenchmarkConsumeTraces measures ConsumeTraces alone: encoding, scanning,
// routing and taking spans into the shards (traces stay buffered).
//
//	go test -run='^$' -bench=ConsumeTraces -count=10 ./processor/tailsiftprocessor/ | tee new.txt
//	benchstat old.txt new.txt
func BenchmarkConsumeTraces(b *testing.B) {
	for _, shards := range []int{1, 2} {
		b.Run(fmt.Sprintf("shards=%d", shards), func(b *testing.B) {
			batches := benchBatches(64, 40)
			spans := 0
			for _, td := range batches {
				spans += td.SpanCount()
			}
			cfg := createDefaultConfig().(*Config)
			cfg.Shards = shards
			cfg.Buffer.MaxBytes = 256 << 20
			p, err := newProcessor(processortest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop())
			if err != nil {
				b.Fatal(err)
			}
			if err := p.Start(context.Background(), componenttest.NewNopHost()); err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				td := batches[i%len(batches)]
				if i >= len(batches) {
					// Fresh trace IDs, so that traces do not grow across rounds.
					b.StopTimer()
					renumber(td, uint32(i/len(batches)))
					b.StartTimer()
				}
				if err := p.ConsumeTraces(ctx, td); err != nil {
					b.Fatal(err)
				}
				i++
			}
			_ = p.buf.Sync(ctx)
			b.StopTimer()
			perBatch := float64(spans) / float64(len(batches))
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/(float64(i)*perBatch), "ns/span")
			_ = p.Shutdown(ctx)
		})
	}
}

// renumber rewrites bytes 2..5 of every trace ID in td with round.
func renumber(td ptrace.Traces, round uint32) {
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		ss := rss.At(i).ScopeSpans().At(0).Spans()
		for j := 0; j < ss.Len(); j++ {
			sp := ss.At(j)
			id := sp.TraceID()
			id[2], id[3], id[4], id[5] = byte(round), byte(round>>8), byte(round>>16), byte(round>>24)
			sp.SetTraceID(id)
		}
	}
}
