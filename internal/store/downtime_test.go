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

// downtimeImage writes trace 1 (undecided) in a first run and trace 2 in a
// second, a minute later, each run in a segment of its own, and returns the
// directory as a kill -9 leaves it.
func downtimeImage(t *testing.T, clk *clocktest.Fake, modify func(*Options)) string {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	for n := 1; n <= 2; n++ {
		s := openStore(t, dir, modify)
		req, ids := request(t, []int{n}, 3, 0)
		require.True(t, s.AppendSpans(ids, req))
		require.NoError(t, s.Sync(ctx))
		require.NoError(t, s.Close())
		clk.Advance(time.Minute)
	}
	return dir
}

// TestRetentionHeldUntilReplayed: a store opened after more than its
// retention of downtime keeps the segments past it until the component
// that claimed the recovery has read it back and the traces it took in
// had the time to be decided (Recovery.Replayed), or until nothing
// claimed it (ReleaseRecovery); they went at Open. max_bytes is enforced
// all the same.
func TestRetentionHeldUntilReplayed(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(*Store)
	}{
		{"replayed", func(s *Store) { s.Claim().Replayed(0) }},
		{"replayed, decided within 5m", func(s *Store) {
			s.Claim().Replayed(5 * time.Minute)
			s.opts.Clock.(*clocktest.Fake).Advance(5*time.Minute + time.Second)
		}},
		{"released", func(s *Store) { s.ReleaseRecovery() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clocktest.NewFake(time.Unix(1_700_000_000, 0))
			modify := func(o *Options) { o.Clock, o.Retention = clk, 10*time.Minute }
			dir := downtimeImage(t, clk, modify)
			clk.Advance(time.Hour)
			s := openStore(t, dir, modify)
			defer func() { require.NoError(t, s.Close()) }()
			_, err := s.Trace(traceID(1))
			require.NoError(t, err, "the oldest segment stays for the components to read it back")

			tc.end(s)
			require.Eventually(t, func() bool { // the writer's next tick (1 s)
				_, err := s.Trace(traceID(1))
				return errors.Is(err, ErrNotFound)
			}, 10*time.Second, 50*time.Millisecond, "past the retention once read back")
		})
	}

	t.Run("bounded", func(t *testing.T) {
		clk := clocktest.NewFake(time.Unix(1_700_000_000, 0))
		modify := func(o *Options) { o.Clock, o.Retention = clk, 10*time.Minute }
		dir := downtimeImage(t, clk, modify)
		clk.Advance(time.Hour)
		s := openStore(t, dir, modify)
		defer func() { require.NoError(t, s.Close()) }()
		_ = s.Claim() // and never read back
		clk.Advance(10*time.Minute + time.Second)
		require.Eventually(t, func() bool {
			_, err := s.Trace(traceID(1))
			return errors.Is(err, ErrNotFound)
		}, 10*time.Second, 50*time.Millisecond, "held a retention at most")
	})

	t.Run("max_bytes", func(t *testing.T) {
		clk := clocktest.NewFake(time.Unix(1_700_000_000, 0))
		dir := downtimeImage(t, clk, func(o *Options) { o.Clock, o.Retention = clk, 10*time.Minute })
		clk.Advance(time.Hour)
		s := openStore(t, dir, func(o *Options) { o.Clock, o.Retention, o.MaxBytes = clk, 10*time.Minute, 1 })
		defer func() { require.NoError(t, s.Close()) }()
		_, err := s.Trace(traceID(1))
		assert.ErrorIs(t, err, ErrNotFound, "max_bytes evicts during the hold")
		_, err = s.Trace(traceID(2))
		assert.NoError(t, err, "the newest segment stays")
	})

	t.Run("nothing to read back", func(t *testing.T) {
		clk := clocktest.NewFake(time.Unix(1_700_000_000, 0))
		modify := func(o *Options) { o.Clock, o.Retention = clk, 10*time.Minute }
		dir := t.TempDir()
		for n := 1; n <= 2; n++ { // decided and dropped: nothing to replay
			s := openStore(t, dir, modify)
			req, ids := request(t, []int{n}, 3, 0)
			require.True(t, s.AppendSpans(ids, req))
			require.True(t, s.AppendDecisions(ids, []Decision{{Policy: "p", Reason: "quiet"}}))
			require.NoError(t, s.Sync(context.Background()))
			require.NoError(t, s.Close())
			clk.Advance(time.Minute)
		}
		clk.Advance(time.Hour)
		s := openStore(t, dir, modify)
		defer func() { require.NoError(t, s.Close()) }()
		_, err := s.Trace(traceID(1))
		assert.ErrorIs(t, err, ErrNotFound, "no hold: evicted at Open, as before")
	})
}
