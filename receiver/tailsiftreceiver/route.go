package tailsiftreceiver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tailsift/tailsift/internal/clock"
	"github.com/tailsift/tailsift/internal/router"
	"github.com/tailsift/tailsift/internal/tracebuf"
	"github.com/tailsift/tailsift/internal/wire"
	"github.com/tailsift/tailsift/receiver/tailsiftreceiver/internal/metadata"
)

// RouteConfig is the route block. With it the receiver is an agent's: it
// does not sample, and it builds no pdata. Each request's bytes, as they
// arrived (OTLP/JSON is converted to protobuf first), go to the router of
// the named tailsift exporter, which splits them by trace ID and queues each
// gateway its part, with the exporter's queue, retries, failover and
// self-metrics:
//
//	receivers:
//	  tailsift: {protocols: {grpc: {endpoint: 0.0.0.0:4317}}, route: {exporter: tailsift}}
//	exporters:
//	  tailsift: {members: {dns: {hostname: gateways.tailsift.svc, port: 4317}}}
//	service:
//	  pipelines: {traces: {receivers: [tailsift], exporters: [tailsift]}}
//
// The exporter must be in the receiver's pipeline, so that the collector
// starts it first; the pipeline never carries data.
type RouteConfig struct {
	// Exporter is the ID of the tailsift exporter that routes the spans.
	Exporter component.ID `mapstructure:"exporter"`
	// prevent unkeyed literal initialization
	_ struct{}
}

// exporterType is the type of the exporter route::exporter must name.
var exporterType = component.MustNewType("tailsift")

// errRouteMetrics refuses a receiver in route mode in a metrics pipeline: it
// has no buffer, so no RED metrics to send.
var errRouteMetrics = errors.New("route: a tailsift receiver in route mode sends no metrics; remove it from the metrics pipeline or remove its route block")

func (c *Config) validateRoute() error {
	rc := c.Route.Get()
	switch {
	case rc.Exporter == component.ID{}:
		return errors.New("route::exporter: must name the tailsift exporter that routes the spans, e.g. tailsift")
	case rc.Exporter.Type() != exporterType:
		return fmt.Errorf("route::exporter: %q is not a tailsift exporter", rc.Exporter.String())
	case c.Cluster.HasValue():
		return errors.New("route: a receiver in route mode does not sample, so it is no gateway; remove the cluster block or the route block")
	case c.Output.Exporter != nil:
		return errors.New("output::exporter: a receiver in route mode keeps nothing, its route::exporter takes every span; remove output::exporter")
	}
	return nil
}

// newRouteReceiver is newReceiver in route mode: servers and their receive
// reports, no buffer.
func newRouteReceiver(set receiver.Settings, cfg *Config, clk clock.Clock, tb *metadata.TelemetryBuilder, obsGRPC, obsHTTP *receiverhelper.ObsReport) *tailsiftReceiver {
	r := &tailsiftReceiver{
		cfg: cfg, set: set, clock: clk, telemetry: tb, obsGRPC: obsGRPC, obsHTTP: obsHTTP, pool: new(recvPool),
	}
	r.queueWait.Store(int64(maxQueueWait))
	return r
}

// startRoute finds the exporter's router. The collector has started the
// exporter already, when it is in this receiver's pipeline.
func (r *tailsiftReceiver) startRoute() error {
	id := r.cfg.Route.Get().Exporter
	r.router = router.Lookup(id)
	if r.router == nil {
		return fmt.Errorf("route::exporter: no exporter %q has started; add it to the exporters of this receiver's traces pipeline", id.String())
	}
	return nil
}

// forward is ingest in route mode: req goes to the router, which queues a
// copy of each gateway's part, so req (and free) are done with on return.
// A full queue (with block_on_overflow, after waiting as long as ingest
// would) and gateways not known yet are retryable refusals.
func (r *tailsiftReceiver) forward(ctx context.Context, obs *receiverhelper.ObsReport, format string, req []byte, free func()) outcome {
	ctx = obs.StartTracesOp(ctx)
	fctx, cancel := ctx, context.CancelFunc(nil)
	if r.router.MayWait() {
		// Bound the wait; a queue that refuses when full needs no timer.
		wait := time.Duration(r.queueWait.Load())
		if d, ok := ctx.Deadline(); ok {
			wait = min(wait, time.Until(d)/2)
		}
		fctx, cancel = context.WithTimeout(ctx, max(wait, time.Nanosecond))
	}
	spans, invalid, err := r.router.Forward(fctx, req)
	if cancel != nil {
		cancel()
	}
	if free != nil {
		free()
	}
	if err == nil && invalid > 0 {
		// As an ingesting receiver answers: the spans with bad IDs are
		// refused (every gateway refuses them), in a partial success, or
		// INVALID_ARGUMENT when no span is left.
		err = tracebuf.InvalidIDs(invalid, spans)
		return endOp(ctx, obs, format, spans, err, classify(err))
	}
	return endOp(ctx, obs, format, spans, err, classifyForward(err))
}

// classifyForward turns what Router.Forward returned into an OTLP outcome:
// malformed bytes, or a part a gateway refused as permanent (when the
// exporter sends without a queue), are INVALID_ARGUMENT, HTTP 400; the rest
// (a full queue, no gateway yet, the exporter shutting down) is UNAVAILABLE
// with a retry delay, HTTP 503 with Retry-After.
func classifyForward(err error) outcome {
	switch {
	case err == nil:
		return outcome{}
	case errors.Is(err, wire.ErrMalformed), allPermanent(err):
		return outcome{st: status.New(codes.InvalidArgument, err.Error())}
	default:
		return outcome{st: retryable(fmt.Sprintf("route spans to the gateways: %v", err))}
	}
}

// allPermanent reports whether err, and every error it joins, is permanent.
// One gateway's permanent refusal joined with another's full queue is a
// retryable refusal: answered INVALID_ARGUMENT, the sender dropped the part
// that was only refused for a moment.
func allPermanent(err error) bool {
	for err != nil {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			errs := j.Unwrap()
			for _, e := range errs {
				if !allPermanent(e) {
					return false
				}
			}
			return len(errs) > 0
		}
		inner := errors.Unwrap(err)
		if consumererror.IsPermanent(err) && (inner == nil || !consumererror.IsPermanent(inner)) {
			return true // this layer marks what it wraps permanent
		}
		err = inner
	}
	return false
}
