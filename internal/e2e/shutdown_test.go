package e2e

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestShutdownLosesNoErrorTrace streams traces, sends the collector SIGTERM
// while export requests are still being made, and checks that every error
// trace whose requests all succeeded arrives complete: on shutdown the
// collector must decide and flush everything it buffered. quiet and
// max_wait are long so that, without that flush, nothing would arrive. It
// runs over both transports, and over gRPC with the kept spans leaving
// through output::exporter (a tailsift exporter) instead of otlp_grpc.
func TestShutdownLosesNoErrorTrace(t *testing.T) {
	t.Parallel()
	const (
		workers   = 3
		groupSize = 4
		// SIGTERM is sent once this many error traces were accepted whole.
		acceptedBeforeSIGTERM = 40
	)
	type variant struct {
		name    string
		tr      transport
		wireOut bool
	}
	variants := []variant{{"grpc output exporter", overGRPC, true}}
	for _, tr := range transports {
		variants = append(variants, variant{string(tr), tr, false})
	}
	for _, v := range variants {
		tr := v.tr
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			snk := newSink(t)
			cfg := collectorConfig{Quiet: 30 * time.Second, MaxWait: 60 * time.Second, BaselinePct: 10, SinkAddr: snk.addr, WireOut: v.wireOut}
			col := startCollector(t, cfg)
			exp := newExporter(t, tr, col)
			base := newRand(t)
			ctx := ctxFor(t, time.Minute)

			var (
				sigtermSent  atomic.Bool
				afterSIGTERM atomic.Int64 // requests started after SIGTERM
				failedAfter  atomic.Int64 // of those, failed
			)
			// Senders stop when the collector has exited, or when the test
			// ends early; this runs before the exporter is shut down.
			load := startStream(t, ctx, exp, base, streamConfig{
				workers: workers, groupSize: groupSize, cutoff: 30 * time.Second,
				class: func(rng *rand.Rand) traceClass {
					if rng.IntN(10) < 3 {
						return classError
					}
					return classFast
				},
				export: func(ctx context.Context, req exportRequest) error {
					after := sigtermSent.Load()
					err := exp.ExportSpans(ctx, req.spans)
					if after {
						afterSIGTERM.Add(1)
						if err != nil {
							failedAfter.Add(1)
						}
					}
					return err
				},
				// Once the receiver refuses requests, a short pause keeps the
				// loop from spinning.
				pause: func(bool) time.Duration {
					if sigtermSent.Load() && failedAfter.Load() > 0 {
						return 10 * time.Millisecond
					}
					return 0
				},
			})

			require.Eventually(t, func() bool { return load.acceptedErrs.Load() >= acceptedBeforeSIGTERM },
				20*time.Second, 10*time.Millisecond, "error traces were not accepted")
			// With quiet 30s nothing should have been decided yet: all that
			// arrives from here on is the shutdown flush.
			spansBeforeSIGTERM, _ := snk.stats()
			sigtermSent.Store(true)
			sigtermAt := time.Now()
			require.NoError(t, col.terminate())

			exited, exitErr := col.waitExit(30 * time.Second)
			load.stop()
			require.True(t, exited, "collector did not exit within 30s of SIGTERM")
			t.Logf("collector exited %s after SIGTERM", time.Since(sigtermAt).Round(time.Millisecond))
			assert.NoError(t, exitErr, "collector exit status after SIGTERM")

			accepted := load.acceptedOf(func(tt *testTrace) bool { return tt.class == classError })
			t.Logf("made %d export requests (%d failed; %d after SIGTERM, %d of them failed); %d error traces accepted whole",
				load.stats.requests, load.stats.failed, afterSIGTERM.Load(), failedAfter.Load(), len(accepted))
			require.Positive(t, afterSIGTERM.Load(), "no export request was made after SIGTERM; the test did not exercise shutdown under load")
			require.GreaterOrEqual(t, len(accepted), acceptedBeforeSIGTERM)
			assert.Zero(t, spansBeforeSIGTERM, "spans were forwarded before SIGTERM although quiet is %s", cfg.Quiet)

			// The exporter got the sink's answer before the collector exited,
			// so everything flushed is already recorded.
			snk.assertComplete(t, accepted)
			snk.assertThreshold(t, accepted, "0")
		})
	}
}
