package red

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/connector/spanmetricsconnector"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/wire"
)

// point is one series as both sides report it.
type point struct {
	calls   int64
	count   uint64
	sum     float64
	buckets []uint64
}

// workload builds requests of spans across services, names, kinds and
// statuses, with durations on every side of every bucket bound (bounds
// themselves included), zero and negative durations, and a resource
// without service.name.
func workload(seed uint64, requests, spansPer int) []ptrace.Traces {
	rng := rand.New(rand.NewPCG(seed, 1))
	durs := []int64{-5, 0, 1}
	for _, b := range DefaultBucketsMs {
		ns := int64(b * 1e6)
		durs = append(durs, ns-1, ns, ns+1)
	}
	durs = append(durs, 20_000_000_000)
	out := make([]ptrace.Traces, requests)
	for r := range out {
		td := ptrace.NewTraces()
		for _, svc := range []string{"cart", "checkout", ""} {
			rs := td.ResourceSpans().AppendEmpty()
			if svc != "" {
				rs.Resource().Attributes().PutStr("service.name", svc)
			}
			rs.Resource().Attributes().PutStr("host.name", "h1")
			spans := rs.ScopeSpans().AppendEmpty().Spans()
			for range spansPer {
				sp := spans.AppendEmpty()
				var tid [16]byte
				binary.LittleEndian.PutUint64(tid[:], rng.Uint64()|1)
				sp.SetTraceID(tid)
				sp.SetSpanID([8]byte{1, byte(rng.Uint32())})
				sp.SetName([]string{"GET /a", "POST /b", "db.query"}[rng.IntN(3)])
				sp.SetKind(ptrace.SpanKind(rng.IntN(6)))
				sp.Status().SetCode(ptrace.StatusCode(rng.IntN(3)))
				start := int64(1_700_000_000_000_000_000) + rng.Int64N(1e9)
				var d int64
				if rng.IntN(2) == 0 {
					d = durs[rng.IntN(len(durs))]
				} else {
					d = rng.Int64N(16_000_000_000)
				}
				sp.SetStartTimestamp(pcommon.Timestamp(start))
				sp.SetEndTimestamp(pcommon.Timestamp(start + d))
			}
		}
		out[r] = td
	}
	return out
}

// collect sums the calls and duration points of md by their attributes.
func collect(t *testing.T, md pmetric.Metrics) map[string]*point {
	t.Helper()
	got := make(map[string]*point)
	at := func(attrs pcommon.Map) *point {
		k := attrs.AsRaw()
		key := ""
		for _, name := range []string{"service.name", "span.name", "span.kind", "status.code", "otel.metric.overflow"} {
			if v, ok := k[name]; ok {
				key += name + "=" + toString(v) + ";"
			}
		}
		p, ok := got[key]
		if !ok {
			p = &point{}
			got[key] = p
		}
		return p
	}
	for _, rm := range md.ResourceMetrics().All() {
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				switch {
				case strings.HasSuffix(m.Name(), "calls"):
					for _, dp := range m.Sum().DataPoints().All() {
						p := at(dp.Attributes())
						if dp.ValueType() == pmetric.NumberDataPointValueTypeDouble {
							p.calls += int64(dp.DoubleValue())
						} else {
							p.calls += dp.IntValue()
						}
					}
				case strings.HasSuffix(m.Name(), "duration"):
					for _, dp := range m.Histogram().DataPoints().All() {
						p := at(dp.Attributes())
						p.count += dp.Count()
						p.sum += dp.Sum()
						if p.buckets == nil {
							p.buckets = make([]uint64, dp.BucketCounts().Len())
						}
						for i, c := range dp.BucketCounts().All() {
							p.buckets[i] += c
						}
					}
				}
			}
		}
	}
	return got
}

func toString(v any) string {
	val := pcommon.NewValueEmpty()
	_ = val.FromRaw(v)
	return val.AsString()
}

// The table, fed the scanned requests, reports what contrib's spanmetrics
// connector reports fed the same requests as pdata: the same calls per
// series, and the same histogram (count, buckets, and sum to float
// rounding).
func TestMatchesSpanmetrics(t *testing.T) {
	reqs := workload(7, 20, 50)

	table := NewTable(DefaultConfig(), 1)
	var batch wire.Batch
	marshaler := ptrace.ProtoMarshaler{}
	for _, td := range reqs {
		buf, err := marshaler.MarshalTraces(td)
		require.NoError(t, err)
		batch.Reset()
		require.NoError(t, wire.Scan(buf, &batch))
		table.Observe(&batch)
	}
	ours := collect(t, table.Flush(2))

	f := spanmetricsconnector.NewFactory()
	cfg := f.CreateDefaultConfig().(*spanmetricsconnector.Config)
	cfg.MetricsFlushInterval = 5 * time.Millisecond
	sink := new(consumertest.MetricsSink)
	conn, err := f.CreateTracesToMetrics(context.Background(), connectortest.NewNopSettings(f.Type()), cfg, sink)
	require.NoError(t, err)
	require.NoError(t, conn.Start(context.Background(), componenttest.NewNopHost()))
	for _, td := range reqs {
		require.NoError(t, conn.ConsumeTraces(context.Background(), td))
	}
	// The connector flushes only on its own ticker (also while the spans
	// above were going in, on a busy machine), and writes 0 as the first
	// cumulative calls point of a series: compare with a flush that
	// started after the last span went in (the second from now: one may
	// be under way), and at least its second.
	consumed := len(sink.AllMetrics())
	require.Eventually(t, func() bool { n := len(sink.AllMetrics()); return n > 1 && n > consumed+1 }, 10*time.Second, time.Millisecond)
	require.NoError(t, conn.Shutdown(context.Background()))
	all := sink.AllMetrics()
	last := all[len(all)-1]
	theirs := collect(t, last)
	m := last.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	t.Logf("spanmetrics writes %s and %s", m.At(0).Name(), m.At(1).Name())

	require.NotEmpty(t, theirs)
	require.Len(t, ours, len(theirs))
	var total int64
	for k, want := range theirs {
		got, ok := ours[k]
		if !assert.True(t, ok, "series %s missing", k) {
			continue
		}
		assert.Equal(t, want.calls, got.calls, "calls of %s", k)
		assert.Equal(t, want.count, got.count, "count of %s", k)
		assert.Equal(t, want.buckets, got.buckets, "buckets of %s", k)
		assert.InDelta(t, want.sum, got.sum, 1e-6*want.sum+1e-9, "sum of %s", k)
		total += got.calls
	}
	assert.Equal(t, int64(20*50*2), total, "every span with a service.name, once")
}
