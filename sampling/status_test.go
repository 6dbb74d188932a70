package sampling_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/sampling"
	"github.com/tailsift/tailsift/sampling/samplingtest"
)

// rootTrace is one root span of service and name, ending at now-1s after
// lasting dur.
func rootTrace(rng *rand.Rand, service, name string, now int64, dur time.Duration) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", service)
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID(pcommon.TraceID(randomID(rng)))
	sp.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
	sp.SetName(name)
	end := now - sec
	sp.SetStartTimestamp(pcommon.Timestamp(end - int64(dur)))
	sp.SetEndTimestamp(pcommon.Timestamp(end))
	return td
}

func TestEngineRoutes(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	e := newEngine(t, statusPolicy("errors", "ERROR"), adaptivePolicy(noRareKeys))
	now := epoch
	decide := func(service, name string, dur time.Duration) sampling.Decision {
		now += 10 * int64(time.Millisecond)
		return e.Decide(samplingtest.Summarize(t, e, rootTrace(rng, service, name, now, dur), now))
	}
	for range 200 {
		decide("checkout", "GET /cart", 20*time.Millisecond)
	}
	for range 100 {
		decide("payments", "POST /pay", 200*time.Millisecond)
	}
	require.True(t, decide("checkout", "GET /cart", time.Second).Keep(), "50 times the route's latency is an anomaly")

	routes := e.Routes(nil, now, 0)
	require.Len(t, routes, 2)
	cart, pay := routes[0], routes[1]
	assert.Equal(t, "checkout / GET /cart", cart.Route, "the most observed route comes first, named by its key fields")
	assert.Equal(t, "payments / POST /pay", pay.Route)
	assert.Equal(t, "anomalies", cart.Policy)
	assert.InDelta(t, 201, cart.Observations, 1, "decay over 3 s of a 10 min half-life is small")
	assert.InEpsilon(t, float64(20*time.Millisecond), float64(cart.P50), 0.25)
	assert.InEpsilon(t, float64(200*time.Millisecond), float64(pay.P95), 0.25)
	assert.Equal(t, uint64(1), cart.Anomalies)
	assert.Zero(t, pay.Anomalies)
	assert.InDelta(t, 1, cart.Probability, 1e-9, "nothing throttled yet")

	limited := e.Routes(make([]sampling.RouteStatus, 0, 4), now, 1)
	require.Len(t, limited, 1)
	assert.Equal(t, cart.Route, limited[0].Route)

	policies := e.Policies()
	assert.Equal(t, []sampling.PolicyStatus{{Name: "errors"}, {Name: "anomalies", Adaptive: true}}, policies)
	_, ok := e.Budget()
	assert.False(t, ok)
}

func TestEngineBudgetStatus(t *testing.T) {
	e := budgetEngine(t, sampling.BudgetConfig{SpansPerSecond: 500, Classes: threeClasses(true)}, 10)
	b, ok := e.Budget()
	require.True(t, ok)
	assert.Equal(t, 500.0, b.Rate)
	assert.Equal(t, "spans", b.Unit)
	require.Len(t, b.Classes, 3)
	assert.Equal(t, "errors", b.Classes[0].Name)
	assert.Equal(t, 1.0, b.Classes[2].Probability, "no demand measured yet")
	assert.Equal(t, []sampling.PolicyStatus{
		{Name: "errors", Class: "errors"}, {Name: "slow", Class: "slow", Slow: true}, {Name: "baseline", Class: "rest"},
	}, e.Policies())
}
