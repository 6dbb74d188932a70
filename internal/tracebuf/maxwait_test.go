package tracebuf

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMaxWaitBound: completion.max_wait near time.Duration's maximum was
// accepted, and a trace's first + max_wait overflowed: a trace waiting for
// its root was decided for max_wait at its first span. Validate bounds
// max_wait (24h); at the bound the rule fires on time.
func TestMaxWaitBound(t *testing.T) {
	for _, tc := range []struct {
		name    string
		maxWait time.Duration
		err     string
	}{
		{"at the bound", 24 * time.Hour, ""},
		{"near time.Duration's maximum", math.MaxInt64, "max_wait: must be at most 24h0m0s, got 2562047h47m16.854775807s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			cfg := testBufferConfig()
			cfg.Completion.MaxSpans = 1000
			cfg.Completion.MaxWait = tc.maxWait
			err := cfg.Completion.Validate()
			if tc.err != "" && err != nil {
				require.EqualError(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Empty(t, tc.err, "accepted")
			obs := &decisionLog{}
			b, clk := startBuffer(t, cfg, (&spanLog{}).emit, obs)
			clk.Advance(time.Second) // the trace's first span is not at the buffer's base
			require.NoError(t, b.Ingest(ctx, encodeSpans(t, spanSpec{trace: 1, span: 2, parent: 1})))
			require.NoError(t, b.Sync(ctx))
			clk.Advance(time.Hour)
			require.NoError(t, b.Sync(ctx))
			require.Zero(t, obs.count(ReasonMaxWait+"/drop"), "decided before max_wait (%v)", tc.maxWait)
			clk.Advance(tc.maxWait - time.Hour)
			require.NoError(t, b.Sync(ctx))
			assert.Equal(t, 1, obs.count(ReasonMaxWait+"/drop"), "decided at max_wait")
		})
	}
}
