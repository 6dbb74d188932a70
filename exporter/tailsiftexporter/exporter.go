package tailsiftexporter

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/tailsift/tailsift/exporter/tailsiftexporter/internal/metadata"
	"github.com/tailsift/tailsift/internal/clock"
	"github.com/tailsift/tailsift/internal/membership"
	"github.com/tailsift/tailsift/internal/router"
	"github.com/tailsift/tailsift/internal/statuspage"
)

// tailsiftExporter is a router fed with pdata, marshalled once, and a
// membership watcher telling it the member set. Once started, its router is
// registered under the exporter's ID, so that a tailsift receiver in route
// mode hands it the bytes it receives instead (router.Lookup).
type tailsiftExporter struct {
	id         component.ID
	router     *router.Router
	unregister func() // nil before start
	watcher    *membership.Watcher
	telemetry  *metadata.TelemetryBuilder
	logger     *zap.Logger
	view       *clusterView // the members on the status page
	unlist     func()       // removes view from the page; nil before start
	attrs      sync.Map     // member address → metric.MeasurementOption
}

func newTailsiftExporter(set exporter.Settings, cfg *Config) (*tailsiftExporter, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, fmt.Errorf("create the tailsift exporter's telemetry: %w", err)
	}
	e := &tailsiftExporter{
		id:        set.ID,
		watcher:   membership.NewWatcher(cfg.Members, clock.Real{}, set.Logger),
		telemetry: tb,
		logger:    set.Logger,
	}
	e.router = router.New(set, router.Settings{
		GRPC: cfg.GRPC, Failover: cfg.Failover, Timeout: cfg.Timeout, Queue: cfg.Queue, Retry: cfg.Retry,
		MaxRequestBytes: cfg.MaxRequestBytes,
	}, e)
	e.view = &clusterView{id: set.ID.String(), router: e.router}
	return e, nil
}

func newExporter(ctx context.Context, set exporter.Settings, cfg *Config) (exporter.Traces, error) {
	e, err := newTailsiftExporter(set, cfg)
	if err != nil {
		return nil, err
	}
	// The members have their own queues and retries: the outer helper only
	// reports what came in.
	return exporterhelper.NewTraces(ctx, set, cfg, e.consumeTraces,
		exporterhelper.WithStart(e.start),
		exporterhelper.WithShutdown(e.shutdown),
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
		exporterhelper.WithTimeout(exporterhelper.TimeoutConfig{}),
	)
}

func (e *tailsiftExporter) start(ctx context.Context, host component.Host) error {
	e.router.Start(host)
	e.unlist = statuspage.Default.AddCluster(e.view)
	if err := e.watcher.Start(ctx, e.router.SetMembers); err != nil {
		return err
	}
	e.unregister = router.Register(e.id, e.router)
	return nil
}

func (e *tailsiftExporter) consumeTraces(ctx context.Context, td ptrace.Traces) error {
	buf, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	if err != nil {
		return consumererror.NewPermanent(fmt.Errorf("marshal traces: %w", err))
	}
	_, invalid, err := e.router.Forward(ctx, buf)
	if invalid > 0 {
		// Every gateway refuses them; they are not sent (route mode
		// answers its sender with them instead).
		e.logger.Warn("Spans without a valid trace_id and span_id not routed", zap.Int("spans", invalid))
	}
	return err
}

func (e *tailsiftExporter) shutdown(ctx context.Context) error {
	if e.unregister != nil {
		e.unregister()
	}
	err := errors.Join(e.watcher.Shutdown(ctx), e.router.Shutdown(ctx))
	if e.unlist != nil {
		e.unlist()
	}
	e.telemetry.Shutdown()
	return err
}

// Routed implements router.Observer.
func (e *tailsiftExporter) Routed(ctx context.Context, member string, spans, rerouted int) {
	opt, ok := e.attrs.Load(member)
	if !ok {
		opt, _ = e.attrs.LoadOrStore(member, metric.WithAttributeSet(attribute.NewSet(attribute.String("member", member))))
	}
	e.telemetry.ExporterTailsiftSpansRouted.Add(ctx, int64(spans), opt.(metric.MeasurementOption))
	e.view.routed(member, spans, rerouted)
	if rerouted > 0 {
		e.telemetry.ExporterTailsiftSpansRerouted.Add(ctx, int64(rerouted))
	}
}

// Oversized implements router.Observer.
func (e *tailsiftExporter) Oversized(ctx context.Context, _ string, spans int) {
	e.telemetry.ExporterTailsiftSpansOversized.Add(ctx, int64(spans))
}

// MembersUp implements router.Observer.
func (e *tailsiftExporter) MembersUp(delta int) {
	e.telemetry.ExporterTailsiftMembersUp.Add(context.Background(), int64(delta))
}

// Members implements router.Observer.
func (e *tailsiftExporter) Members(delta int) {
	e.telemetry.ExporterTailsiftMembers.Add(context.Background(), int64(delta))
}
