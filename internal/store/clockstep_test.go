package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tailsift/tailsift/internal/clock/clocktest"
)

// TestClockSteppedBackDoesNotPinRetention: a segment is evicted once its
// newest record is past the retention, oldest first. A clock stepped back
// an hour left the segments written before the step dated an hour in the
// future: the oldest of them held every later segment on disk (and its
// traces in the API) for the hour and the retention, well past the
// retention of a minute. A segment dated in the future is dated now, so
// that it goes the retention after the step.
func TestClockSteppedBackDoesNotPinRetention(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	clk := clocktest.NewFake(start)
	s := openStore(t, t.TempDir(), func(o *Options) {
		o.Clock = clk
		o.Retention = time.Minute
		o.MaxBytes = 16 << 20 // segments of 1 MiB
	})
	defer func() { require.NoError(t, s.Close()) }()
	ctx := context.Background()
	req, ids := request(t, []int{1}, 3, 0)
	require.True(t, s.AppendSpans(ids, req))
	require.NoError(t, s.Sync(ctx))

	clk.Advance(-time.Hour)
	// Past a segment's size: the later records go to the next segment.
	for n := 2; n < 12; n++ {
		req, ids := request(t, []int{n}, 10, 20_000)
		require.True(t, s.AppendSpans(ids, req))
		require.NoError(t, s.Sync(ctx))
	}
	s.mu.RLock()
	segs := len(s.segs)
	s.mu.RUnlock()
	require.Greater(t, segs, 1)

	// Fake time runs 20 times faster than the writer's tick of a second.
	var advanced time.Duration
	require.Eventually(t, func() bool {
		clk.Advance(2 * time.Second)
		advanced += 2 * time.Second
		_, err1 := s.Trace(traceID(1))
		_, err2 := s.Trace(traceID(2))
		return errors.Is(err1, ErrNotFound) && errors.Is(err2, ErrNotFound)
	}, 15*time.Second, 100*time.Millisecond, "the traces before and after the step go once past the retention")
	t.Logf("evicted %v after the step (retention 1m)", advanced)
	assert.Less(t, advanced, 10*time.Minute, "not held until the clock catches up (1h)")
}
