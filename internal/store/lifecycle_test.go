package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tailsift/tailsift/internal/clock/clocktest"
)

// TestRetentionReachesTheSegmentBeingWritten: segments rotate by size, and
// retention only ever evicted the segments before the one being written.
// At a low rate that segment filled for days, and a trace a day past a
// one-minute retention was still on disk and served. The segment is closed
// and evicted once all it holds is past the retention now, and the next
// record starts a new one.
func TestRetentionReachesTheSegmentBeingWritten(t *testing.T) {
	clk := clocktest.NewFake(time.Unix(1_700_000_000, 0))
	s := openStore(t, t.TempDir(), func(o *Options) { o.Clock = clk; o.Retention = time.Minute })
	defer func() { require.NoError(t, s.Close()) }()
	req, ids := request(t, []int{1}, 3, 0)
	require.True(t, s.AppendSpans(ids, req))
	require.True(t, s.AppendDecision(ids[0], Decision{Keep: false, Policy: "p", Reason: "quiet"}))
	require.NoError(t, s.Sync(context.Background()))
	_, err := s.Trace(traceID(1))
	require.NoError(t, err)
	clk.Advance(24 * time.Hour)
	require.Eventually(t, func() bool { // the writer's next tick (1 s)
		// The index forgets the trace before the file is removed and
		// counted off DiskBytes (evictFirst): wait for both.
		_, err := s.Trace(traceID(1))
		return errors.Is(err, ErrNotFound) && s.Stats().DiskBytes.Load() == 0
	}, 10*time.Second, 50*time.Millisecond, "a day past a one-minute retention")
	assert.Zero(t, s.Stats().DiskBytes.Load())

	req, ids = request(t, []int{2}, 3, 0)
	require.True(t, s.AppendSpans(ids, req))
	require.NoError(t, s.Sync(context.Background()))
	tr, err := s.Trace(traceID(2))
	require.NoError(t, err, "the next record starts a new segment")
	assert.Equal(t, 3, tr.Spans)
}

// TestUseAfterClose: with room in the queue, Sync after Close picked the
// send as often as the close, and waited for its context (half of 20 calls
// here); an append after Close reported success and was held for ever.
// Both are refused at once now.
func TestUseAfterClose(t *testing.T) {
	s := openStore(t, t.TempDir(), nil)
	require.NoError(t, s.Close())
	for range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := s.Sync(ctx)
		cancel()
		require.ErrorIs(t, err, errClosed)
	}
	req, ids := request(t, []int{1}, 1, 0)
	assert.False(t, s.AppendSpans(ids, req))
	assert.Zero(t, s.Queued())
}

// TestUnreadableSegmentSkipped: one segment the store cannot read at Open
// (a directory in its place here; an I/O error or a permission alike)
// failed Open, and the collector did not start. It is skipped and counted
// now, as a corrupt one is, and the new segments do not take its number.
func TestUnreadableSegmentSkipped(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	req, ids := request(t, []int{1}, 2, 0)
	require.True(t, s.AppendSpans(ids, req))
	require.NoError(t, s.Sync(context.Background()))
	require.NoError(t, s.Close())
	require.NoError(t, os.Mkdir(filepath.Join(dir, segName(2)), 0o750))

	r := openStore(t, dir, nil)
	defer func() { require.NoError(t, r.Close()) }()
	assert.Equal(t, int64(1), r.Stats().CorruptSegments.Load())
	_, err := r.Trace(traceID(1))
	require.NoError(t, err, "the readable segment is recovered")
	req, ids = request(t, []int{2}, 2, 0)
	require.True(t, r.AppendSpans(ids, req))
	require.NoError(t, r.Sync(context.Background()))
	_, err = r.Trace(traceID(2))
	require.NoError(t, err, "written to a segment after the unreadable one")
	assert.Zero(t, r.Stats().WriteErrors.Load())
}

// TestPartialWriteThenRecovery: a write that fails after writing part of a
// block (EIO) is cut off, so that the next blocks are indexed at their real
// offsets; only that record is lost, and the store reopens clean.
func TestPartialWriteThenRecovery(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	writes := 0
	s.w.writeFile = func(f *os.File, b []byte) (int, error) {
		writes++
		if writes == 2 {
			n, _ := f.Write(b[:len(b)/2])
			return n, syscall.EIO
		}
		return f.Write(b)
	}
	for n := range 2 {
		req, ids := request(t, []int{n}, 2, 100)
		s.AppendSpans(ids, req)
		require.NoError(t, s.Sync(context.Background()))
	}
	// The writer drops what comes until its next tick after a failed
	// write: trace 2 goes in once it is taken again.
	require.Eventually(t, func() bool {
		req, ids := request(t, []int{2}, 2, 100)
		s.AppendSpans(ids, req)
		require.NoError(t, s.Sync(context.Background()))
		_, err := s.Trace(traceID(2))
		return err == nil
	}, 10*time.Second, 100*time.Millisecond)
	for n, lost := range []bool{false, true, false} {
		_, err := s.Trace(traceID(n))
		if lost {
			require.True(t, errors.Is(err, ErrNotFound), "trace %d: %v", n, err)
		} else {
			require.NoError(t, err, "trace %d", n)
		}
	}
	require.NoError(t, s.Close())
	r := openStore(t, dir, nil)
	defer func() { require.NoError(t, r.Close()) }()
	assert.Zero(t, r.Stats().CorruptSegments.Load())
	for _, n := range []int{0, 2} {
		_, err := r.Trace(traceID(n))
		require.NoError(t, err, "trace %d after reopening", n)
	}
}
