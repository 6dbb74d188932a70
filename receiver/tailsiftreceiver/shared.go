package tailsiftreceiver

import (
	"context"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver"

	"github.com/tailsift/tailsift/internal/clock"
)

// receivers holds one receiver per configuration, so that the same
// receiver ID in a traces and a metrics pipeline is one component, one
// buffer and one set of servers, as the otlp receiver shares its own
// (collector core's internal/sharedcomponent, which is not importable). A
// receiver leaves the map when it shuts down.
var receivers = struct {
	sync.Mutex
	m map[*Config]*tailsiftReceiver
}{m: make(map[*Config]*tailsiftReceiver)}

// sharedReceiver returns the receiver of cfg, creating it.
func sharedReceiver(set receiver.Settings, cfg *Config, clk clock.Clock) (*tailsiftReceiver, error) {
	receivers.Lock()
	defer receivers.Unlock()
	if r, ok := receivers.m[cfg]; ok {
		return r, nil
	}
	r, err := newReceiver(set, cfg, clk)
	if err != nil {
		return nil, err
	}
	r.forget = func() {
		receivers.Lock()
		delete(receivers.m, cfg)
		receivers.Unlock()
	}
	receivers.m[cfg] = r
	return r, nil
}

func createTraces(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Traces) (receiver.Traces, error) {
	r, err := sharedReceiver(set, cfg.(*Config), clock.Real{})
	if err != nil {
		return nil, err
	}
	r.nextTraces = next
	return r, nil
}

// createMetrics makes the receiver aggregate RED metrics from every span
// it accepts, and send them to next every red::interval.
func createMetrics(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Metrics) (receiver.Metrics, error) {
	if cfg.(*Config).Route.HasValue() {
		return nil, errRouteMetrics
	}
	r, err := sharedReceiver(set, cfg.(*Config), clock.Real{})
	if err != nil {
		return nil, err
	}
	r.enableRED(next)
	return r, nil
}

// consumeKept is the buffer's export: it records the kept traces'
// exemplars, then hands them to the traces pipeline (none when the
// receiver is only in a metrics pipeline).
func (r *tailsiftReceiver) consumeKept(ctx context.Context, td ptrace.Traces) error {
	if r.red != nil {
		r.red.Kept(td)
	}
	if r.nextTraces == nil {
		return nil
	}
	return r.nextTraces.ConsumeTraces(ctx, td)
}
