package workload

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSDKShape checks ShapeSDK's structure: every request is one service's
// batch with one ResourceSpans of that service, traces have about 16 spans
// over 2-6 services, spans 4 attributes and resources the SDK's 4, and each
// trace travels in one request per service.
func TestSDKShape(t *testing.T) {
	const wall = int64(1_750_000_000_000_000_000)
	g, st := generate(t, Config{Seed: 3, Rate: 24000, ErrorPct: 2, Templates: 300, Shape: ShapeSDK}, 6000)
	require.Equal(t, ShapeSDK, g.Config().Shape)
	var spans, svcs, n int
	for _, in := range st.insts {
		if in.T.Class == ClassHuge {
			continue
		}
		n++
		spans += len(in.T.Spans)
		seen := map[uint8]bool{}
		for _, s := range in.T.Spans {
			seen[s.Service] = true
		}
		require.GreaterOrEqual(t, len(seen), 2)
		require.LessOrEqual(t, len(seen), 6)
		svcs += len(seen)
		assert.Len(t, st.traces[in], len(seen), "one request per service of trace %d", in.Seq)
		assert.Zero(t, in.T.Late)
	}
	mean := float64(spans) / float64(n)
	assert.InDelta(t, 16, mean, 1.5, "mean spans per trace")
	assert.InDelta(t, 4, float64(svcs)/float64(n), 0.3, "mean services per trace")
	for ri, r := range st.reqs {
		if ri%5 != 0 {
			continue
		}
		b := g.AppendRequest(nil, r, wall)
		require.Len(t, b, r.Size)
		td := decode(t, b)
		require.Equal(t, r.Spans, td.SpanCount())
		require.Equal(t, 1, td.ResourceSpans().Len(), "request %d", ri)
		rs := td.ResourceSpans().At(0)
		name, _ := rs.Resource().Attributes().Get("service.name")
		assert.Equal(t, ServiceName(r.Lane), name.Str())
		assert.Equal(t, SDKResourceAttrs, rs.Resource().Attributes().Len())
		require.Equal(t, 1, rs.ScopeSpans().Len())
		sp := rs.ScopeSpans().At(0).Spans().At(0)
		assert.Equal(t, SDKSpanAttrs, sp.Attributes().Len())
		assert.LessOrEqual(t, r.Spans, DefaultMaxSpan)
	}
}

func TestShapeInvalid(t *testing.T) {
	_, err := NewGenerator(Config{Rate: 1000, Shape: "agent"})
	require.ErrorContains(t, err, `shape "agent"`)
}

// TestSDKShapeArrivalAfterRoot measures how long after the request with a
// trace's root its other spans are sent, in virtual time. In the sdk shape
// each service flushes its own batch up to sdkBatchTimeout (5 s) after a
// span ends, so many traces get spans well after their root (a collector
// waiting 2 s after the latest span decides them before they are
// complete), but none later than the batch timeout after it: the root's
// group is ready last (the root ends last) and is sent at or after that,
// every other group at most the timeout after it is ready. A decision wait
// above 5 s sees every trace whole. In the bench shape the root comes in a
// trace's last request. bench-e2e's per-shape decision wait rests on this.
func TestSDKShapeArrivalAfterRoot(t *testing.T) {
	for _, tc := range []struct {
		shape          string
		maxAfterRoot   int64 // ns; the latest span after its root's request
		minShareOver2s float64
		maxShareOver2s float64
	}{
		{ShapeSDK, int64(sdkBatchTimeout), 0.2, 1},
		{ShapeBench, 0, 0, 0},
	} {
		t.Run(tc.shape, func(t *testing.T) {
			g, err := NewGenerator(Config{Seed: 1, Rate: 10000, Duration: 20e9, Templates: 300, ErrorPct: 2, Shape: tc.shape})
			require.NoError(t, err)
			type arrivals struct{ root, last int64 }
			seen := map[*Instance]*arrivals{}
			for r := g.Next(); r != nil; r = g.Next() {
				for _, rr := range r.runs {
					in := rr.inst
					if in.T.Late > 0 {
						continue // held back 10-30 s by design (bench shape)
					}
					a := seen[in]
					if a == nil {
						a = &arrivals{root: -1}
						seen[in] = a
					}
					if root := int32(in.T.Root); root >= rr.from && root < rr.to {
						a.root = r.SendV
					}
					a.last = max(a.last, r.SendV)
				}
			}
			var over2s, n int
			var latest int64
			for _, a := range seen {
				require.GreaterOrEqual(t, a.root, int64(0), "every trace's root is sent")
				d := a.last - a.root
				latest = max(latest, d)
				if d > 2e9 {
					over2s++
				}
				n++
			}
			require.Positive(t, n)
			share := float64(over2s) / float64(n)
			t.Logf("%s: %d traces, latest span %.2f s after its root's request, %.1f %% of traces have spans > 2 s after it",
				tc.shape, n, float64(latest)/1e9, 100*share)
			assert.LessOrEqual(t, latest, tc.maxAfterRoot)
			assert.GreaterOrEqual(t, share, tc.minShareOver2s)
			assert.LessOrEqual(t, share, tc.maxShareOver2s)
		})
	}
}
