package tailsiftprocessor

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/tailsift/tailsift/internal/tracebuf"
	"github.com/tailsift/tailsift/processor/tailsiftprocessor/internal/metadata"
)

// observer records the buffer's events as the processor's self-metrics.
// Attribute sets are built once per value and reused, so recording does not
// allocate in steady state.
type observer struct {
	tb *metadata.TelemetryBuilder

	mu      sync.RWMutex
	decided map[decidedKey]metric.MeasurementOption

	keep, drop                  metric.MeasurementOption
	early                       map[string]metric.MeasurementOption
	refusedFull, refusedInvalid metric.MeasurementOption
	lateKeep, lateDrop          metric.MeasurementOption
}

type decidedKey struct {
	policy string
	keep   bool
}

var _ tracebuf.Observer = (*observer)(nil)

func decisionAttr(keep bool) metric.MeasurementOption {
	v := "drop"
	if keep {
		v = "keep"
	}
	return metric.WithAttributeSet(attribute.NewSet(attribute.String("decision", v)))
}

func newObserver(tb *metadata.TelemetryBuilder) *observer {
	o := &observer{
		tb:             tb,
		decided:        map[decidedKey]metric.MeasurementOption{},
		keep:           decisionAttr(true),
		drop:           decisionAttr(false),
		refusedFull:    metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", tracebuf.RefusedQueueFull))),
		refusedInvalid: metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", tracebuf.RefusedInvalid))),
		early:          map[string]metric.MeasurementOption{},
	}
	o.lateKeep, o.lateDrop = o.keep, o.drop
	for _, r := range []string{tracebuf.ReasonMaxSpans, tracebuf.ReasonMemory, tracebuf.ReasonShutdown} {
		o.early[r] = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", r)))
	}
	return o
}

func (o *observer) decidedAttrs(policy string, keep bool) metric.MeasurementOption {
	k := decidedKey{policy, keep}
	o.mu.RLock()
	a, ok := o.decided[k]
	o.mu.RUnlock()
	if ok {
		return a
	}
	d := "drop"
	if keep {
		d = "keep"
	}
	a = metric.WithAttributeSet(attribute.NewSet(attribute.String("policy", policy), attribute.String("decision", d)))
	o.mu.Lock()
	o.decided[k] = a
	o.mu.Unlock()
	return a
}

func (o *observer) Received(spans int) {
	o.tb.ProcessorTailsiftSpansReceived.Add(context.Background(), int64(spans))
}

func (o *observer) Refused(reason string, spans int) {
	a := o.refusedFull
	if reason == tracebuf.RefusedInvalid {
		a = o.refusedInvalid
	}
	o.tb.ProcessorTailsiftSpansRefused.Add(context.Background(), int64(spans), a)
}

func (o *observer) Decided(policy string, keep bool, spans int, reason string, latency, lag time.Duration) {
	ctx := context.Background()
	o.tb.ProcessorTailsiftTracesDecided.Add(ctx, 1, o.decidedAttrs(policy, keep))
	d := o.drop
	if keep {
		d = o.keep
	}
	o.tb.ProcessorTailsiftSpansDecided.Add(ctx, int64(spans), d)
	o.tb.ProcessorTailsiftDecisionLatency.Record(ctx, float64(latency)/float64(time.Millisecond))
	if lag >= 0 {
		o.tb.ProcessorTailsiftDecisionLag.Record(ctx, float64(lag)/float64(time.Millisecond))
	}
	if a, ok := o.early[reason]; ok {
		o.tb.ProcessorTailsiftEarlyDecisions.Add(ctx, 1, a)
	}
}

func (o *observer) Late(kept bool, spans int) {
	a := o.lateDrop
	if kept {
		a = o.lateKeep
	}
	o.tb.ProcessorTailsiftLateSpans.Add(context.Background(), int64(spans), a)
}

func (o *observer) Buffered(bytes, traces int64) {
	ctx := context.Background()
	if bytes != 0 {
		o.tb.ProcessorTailsiftBufferedBytes.Add(ctx, bytes)
	}
	if traces != 0 {
		o.tb.ProcessorTailsiftBufferedTraces.Add(ctx, traces)
	}
}

func (o *observer) ExportFailed(spans int) {
	o.tb.ProcessorTailsiftExportFailures.Add(context.Background(), int64(spans))
}
