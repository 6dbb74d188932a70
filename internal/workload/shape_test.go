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
