package selfmetrics

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/tailsift/tailsift/internal/tracebuf"
)

// noopInstruments are Instruments on a no-op meter: what is left to
// allocate is the observer's own doing.
func noopInstruments(t testing.TB) Instruments {
	return instrumentsOn(t, noop.NewMeterProvider().Meter("test"))
}

// instrumentsOn are Instruments on m.
func instrumentsOn(t testing.TB, m metric.Meter) Instruments {
	c := func(name string) metric.Int64Counter {
		x, err := m.Int64Counter(name)
		require.NoError(t, err)
		return x
	}
	u := func(name string) metric.Int64UpDownCounter {
		x, err := m.Int64UpDownCounter(name)
		require.NoError(t, err)
		return x
	}
	h := func(name string) metric.Float64Histogram {
		x, err := m.Float64Histogram(name)
		require.NoError(t, err)
		return x
	}
	return Instruments{
		SpansReceived: c("a"), SpansRefused: c("b"), TracesDecided: c("c"), SpansDecided: c("d"),
		EarlyDecisions: c("e"), LateSpans: c("f"), ExportFailures: c("g"), BufferedBytes: u("h"),
		BufferedTraces: u("i"), DecisionLatency: h("j"), DecisionLag: h("k"), HeldBytes: u("l"),
		HeldTraces: u("m"), TracesRescued: c("n"), SpansDeduped: c("o"), ArenaMapped: u("p"),
		TracesProbed: c("q"),
	}
}

// TestObserverDoesNotAllocate: the observer is called per decision and per
// message on the shards' hot path; once a policy's attributes are built,
// recording allocates nothing (a variadic option passed to an instrument,
// an interface, would allocate its slice at every call).
func TestObserverDoesNotAllocate(t *testing.T) {
	o := NewObserver(noopInstruments(t))
	o.Decided("errors", true, 16, tracebuf.ReasonMaxSpans, time.Second, time.Millisecond)
	o.(tracebuf.DecisionCounter).CountDecided("errors", true, 3, 48) // builds the policy's set
	o.Rescued("errors")
	allocs := testing.AllocsPerRun(100, func() {
		o.Probed(3, 5)
		o.Decided("errors", true, 16, tracebuf.ReasonMaxSpans, time.Second, time.Millisecond)
		o.Decided("errors", true, 16, "quiet", time.Second, -1)
		o.(tracebuf.DecisionCounter).CountDecided("errors", true, 3, 48)
		o.Late(true, 3)
		o.Late(false, 3)
		o.Refused(tracebuf.RefusedInvalid, 2)
		o.Rescued("errors")
	})
	require.Zero(t, allocs)
}

// TestAttrCacheBuildsOnce: concurrent lookups of the same keys build each
// key's options once, and every caller gets the cached ones.
func TestAttrCacheBuildsOnce(t *testing.T) {
	var c attrCache[string]
	var built sync.Map // key -> builds
	keys := []string{"a", "b", "c", "d"}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				k := keys[(g+i)%len(keys)]
				a := c.get(k, func() attribute.Set {
					n, _ := built.LoadOrStore(k, new(atomic.Int32))
					n.(*atomic.Int32).Add(1)
					return attribute.NewSet(attribute.String("k", k))
				})
				require.Len(t, a, 1)
			}
		})
	}
	wg.Wait()
	for _, k := range keys {
		n, ok := built.Load(k)
		require.True(t, ok, k)
		require.EqualValues(t, 1, n.(*atomic.Int32).Load(), k)
		first := c.get(k, func() attribute.Set { t.Fatalf("%s built again", k); return attribute.Set{} })
		require.Equal(t, first, c.get(k, nil))
	}
}

// BenchmarkObserverDecided records decisions from GOMAXPROCS goroutines, as
// the shards do: run with -cpu 1,2, the 2-core ns/op shows what the shards'
// cores pay for the cache lines they share here.
func BenchmarkObserverDecided(b *testing.B) {
	o := NewObserver(noopInstruments(b))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			o.Decided("errors", false, 16, "quiet", time.Second, time.Millisecond)
		}
	})
}

// TestObserverProbed: the shards' probe counts land on traces_probed by
// decision, and an empty side records nothing.
func TestObserverProbed(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { require.NoError(t, mp.Shutdown(context.Background())) })
	o := NewObserver(instrumentsOn(t, mp.Meter("test")))
	o.Probed(3, 5)
	o.Probed(0, 2)
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "q" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				v, _ := dp.Attributes.Value("decision")
				got[v.AsString()] = dp.Value
			}
		}
	}
	require.Equal(t, map[string]int64{"keep": 3, "drop": 7}, got)
}
