package tailsiftreceiver

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configmiddleware"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/extension/extensionmiddleware"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tailsift/tailsift/internal/tracebuf/tracebuftest"
	"github.com/tailsift/tailsift/receiver/tailsiftreceiver/internal/metadata"
)

// startShutdownRig starts a receiver of cfg ending in next, with clients,
// and leaves Shutdown to the test (once called, Shutdown returns what it
// returned then: the generic cleanup would see its error again).
func startShutdownRig(t *testing.T, cfg *Config, next consumer.Traces, host component.Host) *rig {
	t.Helper()
	require.NoError(t, cfg.Validate())
	env := tracebuftest.NewEnv(next)
	set := receivertest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = env.Tel.NewTelemetrySettings()
	r, err := newTestReceiver(set, cfg, env.Next, env.Clock)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), host))
	g := &rig{t: t, r: r, clk: env.Clock, tel: env.Tel}
	g.attachClients()
	t.Cleanup(func() {
		_ = r.Shutdown(context.Background())
		assert.NoError(t, env.Tel.Shutdown(context.Background()))
	})
	return g
}

// TestShutdownBoundWhenNextIgnoresCtx: a next consumer that blocks and
// ignores its context held Shutdown forever (the shard waited in it, and
// Shutdown for the shard). Shutdown returns by output.shutdown_timeout
// (plus the grace the consumer is given to return) now, leaving the call
// blocked (logged), and counts what it could not hand on: the trace the
// consumer holds and the one still buffered.
func TestShutdownBoundWhenNextIgnoresCtx(t *testing.T) {
	cfg := testConfig()
	cfg.Shards = 1
	cfg.Output.BatchTimeout = 0
	cfg.Output.ShutdownTimeout = 200 * time.Millisecond
	next := tracebuftest.NewBlocking() // ignores ctx
	g := startShutdownRig(t, cfg, next, componenttest.NewNopHost())
	t.Cleanup(func() { close(next.Release) }) // before the rig's cleanup: a Shutdown still blocked ends
	g.sendGRPC(batch(errorTrace(1)...))
	require.NoError(t, g.r.buf.Sync(context.Background()))
	g.clk.Advance(time.Minute) // decided and kept: the shard blocks in next
	select {
	case <-next.Entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the kept trace never reached the next consumer")
	}
	g.sendGRPC(batch(errorTrace(2)...))

	took, err := tracebuftest.ShutdownWithin(t, context.Background(), g.r, 5*time.Second)
	assert.Less(t, took, cfg.Output.ShutdownTimeout+time.Second)
	require.Error(t, err, "kept spans were not handed on")
	assert.Equal(t, int64(6), g.metric("otelcol_receiver_tailsift_export_failures"), "both traces' spans")
}

// slowMiddleware is a middleware extension (an authenticator that calls
// out, say) that holds each request for hold before passing it on to the
// receiver, and records how the receiver answered.
type slowMiddleware struct {
	component.StartFunc
	component.ShutdownFunc
	hold     time.Duration
	entered  chan struct{}
	once     sync.Once
	finished atomic.Bool
	code     atomic.Int32 // the HTTP status, or the gRPC code
}

func (m *slowMiddleware) work() {
	m.once.Do(func() { close(m.entered) })
	<-time.After(m.hold) // work that outlives Shutdown's deadline
}

func (m *slowMiddleware) GetHTTPHandler(context.Context) (extensionmiddleware.WrapHTTPHandlerFunc, error) {
	return func(_ context.Context, h http.Handler) (http.Handler, error) {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			m.work()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			m.code.Store(int32(rec.Code))
			m.finished.Store(true)
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
		}), nil
	}, nil
}

func (m *slowMiddleware) GetGRPCServerOptions(context.Context) ([]grpc.ServerOption, error) {
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(
		func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			m.work()
			resp, err := h(ctx, req)
			m.code.Store(int32(status.Code(err)))
			m.finished.Store(true)
			return resp, err
		})}, nil
}

// extHost is a host with extensions.
type extHost map[component.ID]component.Component

func (h extHost) GetExtensions() map[component.ID]component.Component { return h }

// TestShutdownWaitsForHandlers: when Shutdown's deadline passed while a
// request was served (here held by a slow middleware or interceptor),
// http.Server.Close and grpc.Server.Stop returned without waiting for its
// handler, which then ran on into the closed buffer (refused) with its
// connection closed under it. Shutdown waits for it now, at most
// handlerGrace past the deadline: the request is taken in and answered.
// Requests that arrive once Shutdown has begun are refused retryably.
func TestShutdownWaitsForHandlers(t *testing.T) {
	for _, transport := range []string{"http", "grpc"} {
		t.Run(transport, func(t *testing.T) {
			id := component.MustNewID("slow")
			mw := &slowMiddleware{hold: 300 * time.Millisecond, entered: make(chan struct{})}
			cfg := testConfig()
			cfg.Protocols.HTTP.Get().ServerConfig.Middlewares = []configmiddleware.Config{{ID: id}}
			cfg.Protocols.GRPC.Get().Middlewares = []configmiddleware.Config{{ID: id}}
			g := startShutdownRig(t, cfg, nil, extHost{id: mw})
			body := marshal(t, batch(errorTrace(1)...))
			sent := make(chan error, 1)
			go func() {
				if transport == "grpc" {
					_, err := g.grpcExport(context.Background(), body)
					sent <- err
					return
				}
				resp, err := g.http.Post(g.url, pbContentType, bytes.NewReader(body))
				if err == nil {
					_ = resp.Body.Close()
				}
				sent <- err
			}()
			select {
			case <-mw.entered:
			case <-time.After(10 * time.Second):
				t.Fatal("the request never reached the middleware")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			took, _ := tracebuftest.ShutdownWithin(t, ctx, g.r, 5*time.Second)
			assert.True(t, mw.finished.Load(), "Shutdown returned (after %v) before the handler did", took)
			want := int32(http.StatusOK)
			if transport == "grpc" {
				want = int32(codes.OK)
			}
			assert.Equal(t, want, mw.code.Load(), "the request under way is taken in before the buffer closes")
			assert.NoError(t, <-sent, "its answer reaches the client")
			assert.Equal(t, int64(3), g.metric("otelcol_receiver_tailsift_spans_received"))

			// Later requests are refused, retryably.
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodPost, defaultTracesURLPath, bytes.NewReader(body))
			req.Header.Set("Content-Type", pbContentType)
			g.r.serverHTTP.Handler.ServeHTTP(rec, req)
			assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
			assert.Equal(t, "1", rec.Header().Get("Retry-After"))
			_, err := exportHandler(g.r, context.Background(), func(any) error { return nil }, nil)
			assert.Equal(t, codes.Unavailable, status.Code(err))
		})
	}
}

// blockingMetrics is a metrics consumer that holds every call until
// release is closed, ignoring its context.
type blockingMetrics struct {
	release chan struct{}
	entered atomic.Bool
}

func (b *blockingMetrics) ConsumeMetrics(context.Context, pmetric.Metrics) error {
	b.entered.Store(true)
	<-b.release
	return nil
}

func (*blockingMetrics) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

// TestShutdownBoundWhenREDConsumerIgnoresCtx: the RED metrics' last flush
// went to a metrics consumer that blocks and ignores its context, and
// Shutdown never returned. It gives the flush up 100 ms past the deadline
// now, left running.
func TestShutdownBoundWhenREDConsumerIgnoresCtx(t *testing.T) {
	cfg := testConfig()
	cfg.Output.ShutdownTimeout = 200 * time.Millisecond
	env := tracebuftest.NewEnv(nil)
	set := receivertest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = env.Tel.NewTelemetrySettings()
	r, err := newTestReceiver(set, cfg, env.Next, env.Clock)
	require.NoError(t, err)
	metrics := &blockingMetrics{release: make(chan struct{})}
	r.enableRED(metrics)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() {
		close(metrics.release) // a Shutdown still blocked ends
		_ = r.Shutdown(context.Background())
		assert.NoError(t, env.Tel.Shutdown(context.Background()))
	})
	g := newClientRig(t, r)
	g.sendGRPC(batch(errorTrace(1)...))

	took, err := tracebuftest.ShutdownWithin(t, context.Background(), r, 5*time.Second)
	assert.Less(t, took, cfg.Output.ShutdownTimeout+time.Second)
	assert.True(t, metrics.entered.Load(), "the last flush reached the consumer")
	require.ErrorContains(t, err, "RED metrics")
}
