package wire

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

const benchSpans = 200

// benchBatch is a realistic export batch: one service (9 resource
// attributes), one instrumentation scope, 200 spans of 20 traces, each span
// with 10 attributes and about 520 encoded bytes.
func benchBatch(tb testing.TB) []byte {
	tb.Helper()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.SetSchemaUrl("https://opentelemetry.io/schemas/1.26.0")
	ra := rs.Resource().Attributes()
	ra.PutStr("service.name", "checkout")
	ra.PutStr("service.namespace", "shop")
	ra.PutStr("service.version", "2.14.3")
	ra.PutStr("service.instance.id", "627cc493-f310-47de-96bd-71410b7dec09")
	ra.PutStr("deployment.environment.name", "production")
	ra.PutStr("host.name", "ip-10-1-2-3.eu-west-1.compute.internal")
	ra.PutStr("k8s.pod.name", "checkout-7d9f8b6c5d-x2x7q")
	ra.PutStr("telemetry.sdk.language", "go")
	ra.PutStr("telemetry.sdk.version", "1.47.0")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp")
	ss.Scope().SetVersion("0.60.0")

	base := uint64(1_750_000_000_000_000_000)
	for i := range benchSpans {
		sp := ss.Spans().AppendEmpty()
		var t [16]byte
		binary.BigEndian.PutUint64(t[:8], uint64(i/10)*0x9e3779b97f4a7c15)
		binary.BigEndian.PutUint64(t[8:], uint64(i/10+1)*0xbf58476d1ce4e5b9)
		sp.SetTraceID(t)
		var s [8]byte
		binary.BigEndian.PutUint64(s[:], uint64(i+1)*0x94d049bb133111eb)
		sp.SetSpanID(s)
		if i%10 != 0 {
			binary.BigEndian.PutUint64(s[:], uint64(i-i%10+1)*0x94d049bb133111eb)
			sp.SetParentSpanID(s)
		}
		sp.SetName(fmt.Sprintf("GET /api/v1/carts/{cart_id}/items/%d", i%7))
		sp.SetKind(ptrace.SpanKindServer)
		sp.SetFlags(0x301)
		start := base + uint64(i)*1_000_000
		sp.SetStartTimestamp(pcommon.Timestamp(start))
		sp.SetEndTimestamp(pcommon.Timestamp(start + uint64(i%13)*7_000_000))
		if i%17 == 0 {
			sp.Status().SetCode(ptrace.StatusCodeError)
			sp.Status().SetMessage("upstream timeout")
		}
		a := sp.Attributes()
		a.PutStr("http.request.method", "GET")
		a.PutStr("url.path", fmt.Sprintf("/api/v1/carts/%08d/items/%d", 1000+i, i%7))
		a.PutStr("url.scheme", "https")
		a.PutStr("url.query", "currency=EUR&include=prices,availability,images")
		a.PutStr("server.address", "checkout.shop.svc.cluster.local")
		a.PutInt("server.port", 8443)
		a.PutStr("client.address", fmt.Sprintf("10.42.%d.%d", i%255, (i*7)%255))
		a.PutStr("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) Gecko Firefox/128.0")
		a.PutInt("http.response.status_code", 200)
		a.PutStr("network.protocol.version", "1.1")
	}
	buf := marshal(tb, td)
	var b Batch
	require.NoError(tb, Scan(buf, &b))
	require.Len(tb, b.Spans, benchSpans)
	return buf
}

func TestBenchBatchShape(t *testing.T) {
	buf := benchBatch(t)
	var b Batch
	require.NoError(t, Scan(buf, &b))
	total := 0
	for _, s := range b.Spans {
		total += len(s.Raw)
	}
	avg := total / len(b.Spans)
	t.Logf("batch %d bytes, %d spans, %d bytes per span", len(buf), len(b.Spans), avg)
	require.InDelta(t, 520, avg, 30)
}

func BenchmarkScan(b *testing.B) {
	buf := benchBatch(b)
	var batch Batch
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for b.Loop() {
		batch.Reset()
		if err := Scan(buf, &batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchSpans), "ns/span")
}

func BenchmarkUnmarshalPdata(b *testing.B) {
	buf := benchBatch(b)
	var u ptrace.ProtoUnmarshaler
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for b.Loop() {
		td, err := u.UnmarshalTraces(buf)
		if err != nil {
			b.Fatal(err)
		}
		if td.SpanCount() != benchSpans {
			b.Fatal("span count")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchSpans), "ns/span")
}

// BenchmarkReencode measures what the buffer does for a kept trace: mark
// every span's tracestate and frame the spans under their scope.
func BenchmarkReencode(b *testing.B) {
	buf := benchBatch(b)
	var batch Batch
	require.NoError(b, Scan(buf, &batch))
	var out, spans []byte
	var ends []int
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		spans, ends = spans[:0], ends[:0]
		for i := range batch.Spans {
			spans = AppendSpan(spans, batch.Spans[i].Raw, "ot=th:c")
			ends = append(ends, len(spans))
		}
		out = AppendResourceSpans(out[:0], &batch.Scopes[0], spans, ends)
	}
	b.SetBytes(int64(len(out)))
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchSpans), "ns/span")
}

// BenchmarkScanRepeated scans requests that repeat their resource and scope
// n times each (see repeated). A linear merge keeps ns/repeat flat from 1k
// to 1M repeats; a merge that re-copies its result grows it with n.
func BenchmarkScanRepeated(b *testing.B) {
	for _, n := range []int{1_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("repeats=%d", n), func(b *testing.B) {
			buf := repeated(n)
			var batch Batch
			b.ReportAllocs()
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				batch.Reset()
				if err := Scan(buf, &batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/repeat")
		})
	}
}
