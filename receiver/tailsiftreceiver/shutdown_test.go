package tailsiftreceiver

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/tailsift/tailsift/internal/tracebuf/tracebuftest"
	"github.com/tailsift/tailsift/receiver/tailsiftreceiver/internal/metadata"
)

// startShutdownRig starts a receiver of cfg ending in next, with clients,
// and leaves Shutdown to the test (once called, Shutdown returns what it
// returned then: the generic cleanup would see its error again).
func startShutdownRig(t *testing.T, cfg *Config, next *tracebuftest.Blocking) *rig {
	t.Helper()
	require.NoError(t, cfg.Validate())
	env := tracebuftest.NewEnv(next)
	set := receivertest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = env.Tel.NewTelemetrySettings()
	r, err := newTestReceiver(set, cfg, env.Next, env.Clock)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	g := &rig{t: t, r: r, clk: env.Clock, tel: env.Tel}
	g.attachClients()
	t.Cleanup(func() {
		_ = r.Shutdown(context.Background())
		assert.NoError(t, env.Tel.Shutdown(context.Background()))
	})
	return g
}

// shutdownWithin runs Shutdown on a goroutine and requires it to return
// within bound; it returns Shutdown's error and how long it took.
func shutdownWithin(t *testing.T, r *tailsiftReceiver, ctx context.Context, bound time.Duration) (error, time.Duration) {
	t.Helper()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- r.Shutdown(ctx) }()
	var err error
	require.Eventually(t, func() bool {
		select {
		case err = <-done:
			return true
		default:
			return false
		}
	}, bound, 5*time.Millisecond, "Shutdown did not return")
	return err, time.Since(start)
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
	g := startShutdownRig(t, cfg, next)
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

	err, took := shutdownWithin(t, g.r, context.Background(), 5*time.Second)
	assert.Less(t, took, cfg.Output.ShutdownTimeout+time.Second)
	require.Error(t, err, "kept spans were not handed on")
	assert.Equal(t, int64(6), g.metric("otelcol_receiver_tailsift_export_failures"), "both traces' spans")
}
