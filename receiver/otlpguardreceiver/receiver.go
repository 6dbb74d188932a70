package otlpguardreceiver

import (
	"context"
	"maps"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"

	"github.com/tailsift/tailsift/internal/cluster"
	"github.com/tailsift/tailsift/internal/otlpguard"
)

// guarded is the upstream receiver of one signal; its Start hands the
// upstream receiver a host that also holds the guard, which the upstream
// servers find through the middleware addGuard put in their config.
type guarded struct {
	component.Component
	cfg *otlpreceiver.Config
}

func (g *guarded) Start(ctx context.Context, host component.Host) error {
	return g.Component.Start(ctx, &guardHost{host: host, guard: newGuard(g.cfg, time.Now)})
}

// Shutdown first drains the gateway clusters of this process
// (cluster.DrainAll): the collector shuts receivers down before processors,
// so a tailsift processor with a cluster block needs its receiver to keep
// serving for cluster::drain while it forwards what arrives to the other
// gateways. Without a cluster block it returns at once. Only the first of
// the signals' Shutdowns waits.
func (g *guarded) Shutdown(ctx context.Context) error {
	cluster.DrainAll(ctx)
	return g.Component.Shutdown(ctx)
}

// guardHost is the collector's host with the guard added to its extensions.
// It passes status reports through (the upstream receiver reports fatal
// server errors that way).
type guardHost struct {
	host  component.Host
	guard *guard
}

var (
	_ component.Host           = (*guardHost)(nil)
	_ componentstatus.Reporter = (*guardHost)(nil)
)

func (h *guardHost) GetExtensions() map[component.ID]component.Component {
	exts := maps.Clone(h.host.GetExtensions())
	if exts == nil {
		exts = make(map[component.ID]component.Component, 1)
	}
	exts[guardID] = h.guard
	return exts
}

func (h *guardHost) Report(ev *componentstatus.Event) {
	componentstatus.ReportStatus(h.host, ev)
}

// guard is the middleware extension: a handler in front of the HTTP
// receiver, and a codec and an interceptor on the gRPC server.
type guard struct {
	component.StartFunc
	component.ShutdownFunc

	// paths maps the HTTP receiver's URL path patterns to their signals.
	paths map[string]otlpguard.Signal
	// refused carries gRPC refusals from the codec to the interceptor.
	refused *refusals
}

func newGuard(cfg *otlpreceiver.Config, now func() time.Time) *guard {
	g := &guard{paths: map[string]otlpguard.Signal{}, refused: newRefusals(now)}
	if cfg.Protocols.HTTP.HasValue() {
		h := cfg.Protocols.HTTP.Get()
		// In reverse order of the upstream receiver's registration: when two
		// signals share a path, the upstream mux refuses to start anyway.
		g.paths[profilesURLPath] = otlpguard.Profiles
		g.paths[string(h.LogsURLPath)] = otlpguard.Logs
		g.paths[string(h.MetricsURLPath)] = otlpguard.Metrics
		g.paths[string(h.TracesURLPath)] = otlpguard.Traces
	}
	return g
}

// profilesURLPath is where the upstream receiver serves profiles; unlike
// the other signals' paths it is not configurable.
const profilesURLPath = "/v1development/profiles"
