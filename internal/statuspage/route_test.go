package statuspage

import (
	"fmt"
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

// TestRecorderRouteCountsKeepBusiest: the summed counts are bounded, but
// they used to keep only the first 4 × maxRoutes routes ever seen: a route
// that became busy later showed 0 decided traces for the process's life,
// while routes seen once held their places. The least busy route makes
// room for a new one: a busy route stays, whatever arrives after it, and
// a route that stopped leaves.
func TestRecorderRouteCountsKeepBusiest(t *testing.T) {
	r := NewRecorder("tailsift", "processor", 1<<20, nil)
	r.RouteCompletion(tracebuf.RouteCompletion{Route: "old / GET", Traces: 5})
	for i := range 4 * maxRoutes {
		r.RouteCompletion(tracebuf.RouteCompletion{Route: fmt.Sprintf("cold %d", i), Traces: 1})
	}
	busy := tracebuf.RouteCompletion{Route: "busy / GET", Traces: 10, PartialTraces: 1, LateSpans: 3}
	r.RouteCompletion(busy)
	assert.Equal(t, busy, r.routeCompletion("busy / GET"), "a route seen after the first 4 × maxRoutes")

	reports := int64(1)
	for i := range 20 * maxRoutes {
		r.RouteCompletion(tracebuf.RouteCompletion{Route: fmt.Sprintf("new %d", i), Traces: 1})
		if i%10 == 9 {
			r.RouteCompletion(busy)
			reports++
		}
	}
	assert.Equal(t, tracebuf.RouteCompletion{Route: "busy / GET", Traces: 10 * reports, PartialTraces: reports, LateSpans: 3 * reports},
		r.routeCompletion("busy / GET"), "the busy route kept its counts")
	assert.Zero(t, r.routeCompletion("old / GET"), "a route that stopped left")
	assert.Len(t, r.routeCounts, 4*maxRoutes, "bounded")
}
