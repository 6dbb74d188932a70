package tailsiftextension

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensioncapabilities"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	"golang.org/x/sync/semaphore"

	"github.com/tailsift/tailsift/extension/tailsiftextension/internal/metadata"
	"github.com/tailsift/tailsift/internal/store"
)

// Extension is the tailsift extension. Components reach it through
// host.GetExtensions() under the ID their `storage` key names.
type Extension struct {
	cfg      *Config
	set      extension.Settings
	mux      *http.ServeMux
	mu       sync.Mutex
	patterns map[string]bool
	server   *http.Server
	addr     string
	served   chan struct{}

	// st is the open store, nil before Start and after Shutdown: handlers
	// and attached components read it while Shutdown clears it.
	st        atomic.Pointer[store.Store]
	keepers   keepers
	telemetry *metadata.TelemetryBuilder
	// handlers counts the requests being served: Shutdown waits for them
	// (at most handlerWait past its deadline) before it closes the store,
	// which http.Server.Close does not.
	handlers sync.WaitGroup
	// responses holds max_concurrent_response_bytes; each GET of a trace
	// takes max_response_bytes of it (responses.go).
	responses *semaphore.Weighted
	// responseWait bounds a GET's wait for room in responses.
	responseWait time.Duration
	// keeps holds max_concurrent_keeps; each keep takes one (keeps.go).
	keeps *semaphore.Weighted
	// keepWait bounds a keep's wait for one of keeps; keepTime bounds a
	// keep's whole time, from its request's start.
	keepWait, keepTime time.Duration
	// responsesRefused counts the GETs and keeps refused for lack of
	// room; set in Start before the server serves, never cleared
	// (telemetry is).
	responsesRefused metric.Int64Counter
}

// handlerWait bounds Shutdown's wait for the requests still served once
// its own deadline has passed.
const handlerWait = 5 * time.Second

// counted serves h, counted in e.handlers.
func (e *Extension) counted(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.handlers.Add(1)
		defer e.handlers.Done()
		h.ServeHTTP(w, r)
	})
}

// Addr is the address the HTTP server listens on, once started.
func (e *Extension) Addr() string { return e.addr }

var (
	_ extension.Extension = (*Extension)(nil)
	// The collector calls Ready once every pipeline started (see Ready).
	_ extensioncapabilities.PipelineWatcher = (*Extension)(nil)
)

func newExtension(set extension.Settings, cfg *Config) (*Extension, error) {
	e := &Extension{
		cfg: cfg, set: set, mux: http.NewServeMux(), patterns: map[string]bool{},
		responses:    semaphore.NewWeighted(int64(cfg.MaxConcurrentResponseBytes)),
		responseWait: defaultResponseWait,
		keeps:        semaphore.NewWeighted(int64(cfg.MaxConcurrentKeeps)),
		keepWait:     defaultKeepWait,
		keepTime:     keepTime(cfg.ServerConfig.WriteTimeout),
	}
	for _, r := range builtinRoutes(e) {
		if err := e.Handle(r.pattern, r.handler); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// Handle mounts h on the extension's HTTP server at pattern (an
// http.ServeMux pattern such as "GET /api/v1/status" or "/"). Any tailsift
// component may call it, before or after Start: this is how the status page
// is served next to the retrieval API, on the same confighttp server (so TLS
// and auth apply). A pattern mounted twice is an error, not a panic.
func (e *Extension) Handle(pattern string, h http.Handler) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.patterns[pattern] {
		return fmt.Errorf("tailsift extension: route %q is already mounted", pattern)
	}
	if err := register(e.mux, pattern, h); err != nil {
		return fmt.Errorf("tailsift extension: mount route %q: %w", pattern, err)
	}
	e.patterns[pattern] = true
	return nil
}

// register turns ServeMux's panic on a conflicting pattern into an error.
func register(mux *http.ServeMux, pattern string, h http.Handler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	mux.Handle(pattern, h)
	return nil
}

// Start opens the store (locking its directory), then listens on the
// configured endpoint and serves the routes.
func (e *Extension) Start(ctx context.Context, host component.Host) error {
	if err := e.openStore(); err != nil {
		return err
	}
	tb, err := metadata.NewTelemetryBuilder(e.set.TelemetrySettings)
	if err == nil {
		e.telemetry = tb
		e.responsesRefused = tb.ExtensionTailsiftAPIResponsesRefused
		err = registerMetrics(tb, e.st.Load())
	}
	if err != nil {
		return errors.Join(fmt.Errorf("tailsift extension: %w", err), e.closeStore())
	}
	ln, err := e.cfg.ServerConfig.ToListener(ctx)
	if err != nil {
		return errors.Join(fmt.Errorf("tailsift extension: listen on endpoint %q: %w", e.cfg.ServerConfig.NetAddr.Endpoint, err), e.closeStore())
	}
	e.server, err = e.cfg.ServerConfig.ToServer(ctx, host.GetExtensions(), e.set.TelemetrySettings, e.counted(e.mux))
	if err != nil {
		_ = ln.Close()
		return errors.Join(fmt.Errorf("tailsift extension: create HTTP server: %w", err), e.closeStore())
	}
	e.addr = ln.Addr().String()
	e.set.Logger.Info("tailsift extension serving", zap.String("endpoint", e.addr))
	e.served = make(chan struct{})
	go func() {
		defer close(e.served)
		if err := e.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(err))
		}
	}()
	return nil
}

// Shutdown stops the HTTP server and closes the store (sealing what it
// holds). It is safe to call twice, and without Start.
func (e *Extension) Shutdown(ctx context.Context) error {
	var err error
	if e.server != nil {
		err = e.server.Shutdown(ctx)
		if err != nil {
			err = errors.Join(err, e.server.Close())
		}
		<-e.served
		e.server = nil
		// Close does not wait for the handlers still running: a slow
		// read would use the store after it was closed.
		done := make(chan struct{})
		go func() {
			e.handlers.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(handlerWait):
			e.set.Logger.Warn("tailsift extension: API requests still running as the store closes")
		}
	}
	return errors.Join(err, e.closeStore())
}

func (e *Extension) closeStore() error {
	if e.telemetry != nil {
		e.telemetry.Shutdown()
		e.telemetry = nil
	}
	st := e.st.Swap(nil)
	if st == nil {
		return nil
	}
	if err := st.Close(); err != nil {
		return fmt.Errorf("tailsift extension: close store: %w", err)
	}
	return nil
}
