package otlpguardreceiver

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configmiddleware"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/xconsumer"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/xreceiver"

	// gRPC's zstd decodes with a bounded window (internal/zstdlimit).
	_ "github.com/tailsift/tailsift/internal/zstdlimit"
	"github.com/tailsift/tailsift/receiver/otlpguardreceiver/internal/metadata"
)

// guardID is the ID under which the guard is handed to the upstream
// receiver as a middleware extension. No extension type of that name exists
// in the distribution, so it cannot clash with a configured extension.
var guardID = component.MustNewIDWithName(metadata.Type.String(), "anyvalue_depth_guard")

// NewFactory returns the factory of the `otlp` receiver. Its configuration
// is the upstream receiver's, unchanged.
func NewFactory() receiver.Factory {
	up, ok := otlpreceiver.NewFactory().(xreceiver.Factory)
	if !ok {
		panic("otlpguardreceiver: the upstream otlp receiver factory is not an xreceiver.Factory")
	}
	f := &factory{upstream: up}
	return xreceiver.NewFactory(
		metadata.Type,
		up.CreateDefaultConfig,
		xreceiver.WithTraces(f.createTraces, metadata.TracesStability),
		xreceiver.WithMetrics(f.createMetrics, metadata.MetricsStability),
		xreceiver.WithLogs(f.createLogs, metadata.LogsStability),
		xreceiver.WithProfiles(f.createProfiles, metadata.ProfilesStability),
	)
}

type factory struct {
	upstream xreceiver.Factory
}

func (f *factory) createTraces(ctx context.Context, set receiver.Settings, cfg component.Config, next consumer.Traces) (receiver.Traces, error) {
	return wrap(cfg, func() (component.Component, error) { return f.upstream.CreateTraces(ctx, set, cfg, next) })
}

func (f *factory) createMetrics(ctx context.Context, set receiver.Settings, cfg component.Config, next consumer.Metrics) (receiver.Metrics, error) {
	return wrap(cfg, func() (component.Component, error) { return f.upstream.CreateMetrics(ctx, set, cfg, next) })
}

func (f *factory) createLogs(ctx context.Context, set receiver.Settings, cfg component.Config, next consumer.Logs) (receiver.Logs, error) {
	return wrap(cfg, func() (component.Component, error) { return f.upstream.CreateLogs(ctx, set, cfg, next) })
}

func (f *factory) createProfiles(ctx context.Context, set receiver.Settings, cfg component.Config, next xconsumer.Profiles) (xreceiver.Profiles, error) {
	return wrap(cfg, func() (component.Component, error) { return f.upstream.CreateProfiles(ctx, set, cfg, next) })
}

// wrap adds the guard to cfg's servers and creates the upstream receiver,
// whose Start then gets a host that holds the guard.
func wrap(cfg component.Config, create func() (component.Component, error)) (*guarded, error) {
	oCfg, ok := cfg.(*otlpreceiver.Config)
	if !ok {
		return nil, fmt.Errorf("create otlp receiver: config is a %T, not an *otlpreceiver.Config", cfg)
	}
	addGuard(oCfg)
	r, err := create()
	if err != nil {
		return nil, err
	}
	return &guarded{Component: r, cfg: oCfg}, nil
}

// configMu serialises addGuard: the collector creates one receiver per
// signal from the same *Config, which the upstream receiver shares.
var configMu sync.Mutex

// addGuard puts the guard first in the middlewares of cfg's gRPC and HTTP
// servers, once. It edits cfg in place rather than a copy because the
// upstream receiver shares one server between signals by config pointer.
func addGuard(cfg *otlpreceiver.Config) {
	configMu.Lock()
	defer configMu.Unlock()
	if cfg.Protocols.GRPC.HasValue() {
		g := cfg.Protocols.GRPC.Get()
		g.Middlewares = withGuard(g.Middlewares)
	}
	if cfg.Protocols.HTTP.HasValue() {
		h := cfg.Protocols.HTTP.Get()
		h.ServerConfig.Middlewares = withGuard(h.ServerConfig.Middlewares)
	}
}

// withGuard returns mws with the guard first, unless it is there already.
func withGuard(mws []configmiddleware.Config) []configmiddleware.Config {
	if slices.ContainsFunc(mws, func(m configmiddleware.Config) bool { return m.ID == guardID }) {
		return mws
	}
	return slices.Insert(mws, 0, configmiddleware.Config{ID: guardID})
}
