package statuspage

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/tailsift/tailsift/internal/tracebuf"
)

type routeSink struct {
	tracebuf.NopObserver
	got []tracebuf.RouteCompletion
}

func (s *routeSink) RouteCompletion(c tracebuf.RouteCompletion) { s.got = append(s.got, c) }

// The recorder sums each route's completion counts for the snapshot and
// passes every report on.
func TestRecorderRouteCompletion(t *testing.T) {
	next := &routeSink{}
	r := NewRecorder("tailsift", "processor", 1<<20, next)
	r.RouteCompletion(tracebuf.RouteCompletion{Route: "svc / GET", Traces: 10, PartialTraces: 1, LateSpans: 2})
	r.RouteCompletion(tracebuf.RouteCompletion{Route: "svc / GET", Traces: 5, PartialTraces: 2, LateSpans: 2})
	assert.Equal(t, tracebuf.RouteCompletion{Route: "svc / GET", Traces: 15, PartialTraces: 3, LateSpans: 4}, r.routeCompletion("svc / GET"))
	assert.Zero(t, r.routeCompletion("other / x"))
	assert.Len(t, next.got, 2)
	for i := range 5 * maxRoutes {
		r.RouteCompletion(tracebuf.RouteCompletion{Route: string(rune('a' + i)), Traces: 1})
	}
	assert.Len(t, r.routeCounts, 4*maxRoutes, "bounded")
}
