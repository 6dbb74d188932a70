// Package selfmetrics records the trace buffer's events as a component's
// self-metrics. The processor and the receiver each generate their own
// instruments with mdatagen and hand them to NewObserver.
package selfmetrics

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/tailsift/tailsift/internal/cowmap"
	"github.com/tailsift/tailsift/internal/tracebuf"
)

// Instruments are a component's generated instruments for the buffer's
// events; see the processor's metadata.yaml for their meaning.
type Instruments struct {
	SpansReceived   metric.Int64Counter
	SpansRefused    metric.Int64Counter
	TracesDecided   metric.Int64Counter
	SpansDecided    metric.Int64Counter
	EarlyDecisions  metric.Int64Counter
	LateSpans       metric.Int64Counter
	ExportFailures  metric.Int64Counter
	BufferedBytes   metric.Int64UpDownCounter
	BufferedTraces  metric.Int64UpDownCounter
	DecisionLatency metric.Float64Histogram
	DecisionLag     metric.Float64Histogram
	HeldBytes       metric.Int64UpDownCounter
	HeldTraces      metric.Int64UpDownCounter
	TracesRescued   metric.Int64Counter
	TracesProbed    metric.Int64Counter
	SpansDeduped    metric.Int64Counter
	ArenaMapped     metric.Int64UpDownCounter
	// Per route (route.go); optional: nil leaves them unrecorded.
	RouteTraces  metric.Int64Counter
	RoutePartial metric.Int64Counter
	RouteLate    metric.Int64Counter
}

// observer records the buffer's events as the processor's self-metrics.
// Attribute sets are built once per value and reused, and so are the
// option slices handed to Add: a variadic call through an interface would
// allocate its slice at every call. Recording does not allocate in steady
// state, and looking up a cached set writes no shared memory (attrCache):
// every shard records its decisions here, on its own core.
type observer struct {
	in Instruments

	decided attrCache[decidedKey]

	keep, drop                                addOpts
	early                                     map[string]addOpts
	refusedFull, refusedInvalid, refusedLarge addOpts
	lateKeep, lateDrop                        addOpts
	rescued                                   attrCache[string] // by policy
	routes                                    routeAttrs
}

// addOpts is the options of an Add with one attribute set, built once.
type addOpts []metric.AddOption

func withSet(set attribute.Set) addOpts {
	return addOpts{metric.WithAttributeSet(set)}
}

type decidedKey struct {
	policy string
	keep   bool
}

var (
	_ tracebuf.RouteObserver   = (*observer)(nil)
	_ tracebuf.DecisionCounter = (*observer)(nil)
)

func decisionAttr(keep bool) addOpts {
	v := "drop"
	if keep {
		v = "keep"
	}
	return withSet(attribute.NewSet(attribute.String("decision", v)))
}

// NewObserver returns a tracebuf.Observer that records on in.
func NewObserver(in Instruments) tracebuf.Observer {
	o := &observer{
		in:             in,
		keep:           decisionAttr(true),
		drop:           decisionAttr(false),
		refusedFull:    withSet(attribute.NewSet(attribute.String("reason", tracebuf.RefusedQueueFull))),
		refusedInvalid: withSet(attribute.NewSet(attribute.String("reason", tracebuf.RefusedInvalid))),
		refusedLarge:   withSet(attribute.NewSet(attribute.String("reason", tracebuf.RefusedTooLarge))),
		early:          map[string]addOpts{},
	}
	o.lateKeep, o.lateDrop = o.keep, o.drop
	for _, r := range []string{tracebuf.ReasonMaxSpans, tracebuf.ReasonMaxBytes, tracebuf.ReasonMemory, tracebuf.ReasonShutdown, tracebuf.ReasonArrival} {
		o.early[r] = withSet(attribute.NewSet(attribute.String("reason", r)))
	}
	return o
}

func (o *observer) decidedAttrs(policy string, keep bool) addOpts {
	return o.decided.get(decidedKey{policy, keep}, func() attribute.Set {
		d := "drop"
		if keep {
			d = "keep"
		}
		return attribute.NewSet(attribute.String("policy", policy), attribute.String("decision", d))
	})
}

// attrCache holds attribute options by key, built the first time a key is
// asked for. A lookup only reads (cowmap): the shards that look up
// concurrently do not write a shared cache line at every decision, as a
// read lock's reader count did (sync.RWMutex.RLock is an atomic add).
type attrCache[K comparable] struct {
	m cowmap.Map[K, addOpts]
}

// get returns k's options, building them with set the first time.
func (c *attrCache[K]) get(k K, set func() attribute.Set) addOpts {
	return c.m.LoadOrNew(k, func() addOpts { return withSet(set()) })
}

func (o *observer) Received(spans int) {
	o.in.SpansReceived.Add(context.Background(), int64(spans))
}

func (o *observer) Refused(reason string, spans int) {
	a := o.refusedFull
	switch reason {
	case tracebuf.RefusedInvalid:
		a = o.refusedInvalid
	case tracebuf.RefusedTooLarge:
		a = o.refusedLarge
	}
	o.in.SpansRefused.Add(context.Background(), int64(spans), a...)
}

// Decided records the decision's latency, lag and early reason; its trace
// and spans are counted in CountDecided (tracebuf.DecisionCounter).
func (o *observer) Decided(_ string, _ bool, _ int, reason string, latency, lag time.Duration) {
	ctx := context.Background()
	o.in.DecisionLatency.Record(ctx, float64(latency)/float64(time.Millisecond))
	if lag >= 0 {
		o.in.DecisionLag.Record(ctx, float64(lag)/float64(time.Millisecond))
	}
	if a, ok := o.early[reason]; ok {
		o.in.EarlyDecisions.Add(ctx, 1, a...)
	}
}

// CountDecided implements tracebuf.DecisionCounter: a shard's decisions of
// one policy and outcome since its last report, two Adds for all of them.
func (o *observer) CountDecided(policy string, keep bool, traces, spans int64) {
	ctx := context.Background()
	o.in.TracesDecided.Add(ctx, traces, o.decidedAttrs(policy, keep)...)
	d := o.drop
	if keep {
		d = o.keep
	}
	o.in.SpansDecided.Add(ctx, spans, d...)
}

func (o *observer) Late(kept bool, spans int) {
	a := o.lateDrop
	if kept {
		a = o.lateKeep
	}
	o.in.LateSpans.Add(context.Background(), int64(spans), a...)
}

func (o *observer) Buffered(bytes, traces int64) {
	ctx := context.Background()
	if bytes != 0 {
		o.in.BufferedBytes.Add(ctx, bytes)
	}
	if traces != 0 {
		o.in.BufferedTraces.Add(ctx, traces)
	}
}

func (o *observer) ExportFailed(spans int) {
	o.in.ExportFailures.Add(context.Background(), int64(spans))
}

func (o *observer) Held(bytes, traces int64) {
	ctx := context.Background()
	if bytes != 0 {
		o.in.HeldBytes.Add(ctx, bytes)
	}
	if traces != 0 {
		o.in.HeldTraces.Add(ctx, traces)
	}
}

func (o *observer) Mapped(bytes int64) {
	o.in.ArenaMapped.Add(context.Background(), bytes)
}

func (o *observer) Rescued(policy string) {
	a := o.rescued.get(policy, func() attribute.Set {
		return attribute.NewSet(attribute.String("policy", policy))
	})
	o.in.TracesRescued.Add(context.Background(), 1, a...)
}

func (o *observer) Probed(kept, dropped int) {
	if kept != 0 {
		o.in.TracesProbed.Add(context.Background(), int64(kept), o.keep...)
	}
	if dropped != 0 {
		o.in.TracesProbed.Add(context.Background(), int64(dropped), o.drop...)
	}
}

func (o *observer) Deduplicated(spans int) {
	o.in.SpansDeduped.Add(context.Background(), int64(spans))
}
