package selfmetrics

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/tailsift/tailsift/internal/tracebuf"
)

// maxRouteAttrs bounds the route attribute's values: the first routes
// reported get their own, the later ones share routeOther.
const (
	maxRouteAttrs = 100
	routeOther    = "other"
)

// routeAttrs holds the route attribute sets, at most maxRouteAttrs of them.
type routeAttrs struct {
	mu    sync.Mutex
	sets  map[string]metric.MeasurementOption
	other metric.MeasurementOption
}

func (r *routeAttrs) of(route string) metric.MeasurementOption {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sets == nil {
		r.sets = map[string]metric.MeasurementOption{}
		r.other = metric.WithAttributeSet(attribute.NewSet(attribute.String("route", routeOther)))
	}
	if a, ok := r.sets[route]; ok {
		return a
	}
	if len(r.sets) >= maxRouteAttrs {
		return r.other
	}
	a := metric.WithAttributeSet(attribute.NewSet(attribute.String("route", route)))
	r.sets[route] = a
	return a
}

// RouteCompletion implements tracebuf.RouteObserver: each shard reports its
// routes' counts at most once a second.
func (o *observer) RouteCompletion(c tracebuf.RouteCompletion) {
	if o.in.RouteTraces == nil {
		return
	}
	ctx := context.Background()
	a := o.routes.of(c.Route)
	if c.Traces > 0 {
		o.in.RouteTraces.Add(ctx, c.Traces, a)
	}
	if c.PartialTraces > 0 {
		o.in.RoutePartial.Add(ctx, c.PartialTraces, a)
	}
	if c.LateSpans > 0 {
		o.in.RouteLate.Add(ctx, c.LateSpans, a)
	}
}
