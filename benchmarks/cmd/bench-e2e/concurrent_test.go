package main

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestConcurrentStartsTogether: no run of a concurrent round passes the
// barrier before every run has arrived, however late the last one is, and
// the results come back in the order of the specs.
func TestConcurrentStartsTogether(t *testing.T) {
	specs := []runSpec{{Kind: kindTailsift}, {Kind: kindFastpath}, {Kind: kindContrib}, {Kind: kindBaseline}}
	var arrived, passedEarly atomic.Int32
	do := func(ctx context.Context, spec runSpec) (*runResult, error) {
		if spec.Kind == kindContrib {
			time.Sleep(100 * time.Millisecond) // the slow starter
		}
		arrived.Add(1)
		if err := spec.Start.arrive(ctx); err != nil {
			return nil, err
		}
		if arrived.Load() != int32(len(specs)) {
			passedEarly.Add(1)
		}
		return &runResult{Kind: spec.Kind}, nil
	}
	rs, err := concurrently(context.Background(), specs, do)
	require.NoError(t, err)
	assert.Zero(t, passedEarly.Load())
	require.Len(t, rs, len(specs))
	for i, r := range rs {
		assert.Equal(t, specs[i].Kind, r.Kind)
	}
}

// TestConcurrentFailureStopsTheRound: a run that fails before the barrier
// neither leaves the others waiting for it nor lets the round succeed; the
// other runs end with the round's context, at the barrier or after it.
func TestConcurrentFailureStopsTheRound(t *testing.T) {
	specs := []runSpec{{Kind: kindTailsift}, {Kind: kindContrib}, {Kind: kindBaseline}}
	boom := errors.New("collector contrib not healthy")
	var cancelled atomic.Int32
	do := func(ctx context.Context, spec runSpec) (*runResult, error) {
		if spec.Kind == kindContrib {
			time.Sleep(50 * time.Millisecond)
			spec.Start.done() // what run's deferred leave does on an early error
			return nil, boom
		}
		if err := spec.Start.arrive(ctx); err != nil {
			cancelled.Add(1) // the round's context ended first
			return nil, err
		}
		// Past the barrier, a run goes on until its context ends.
		select {
		case <-ctx.Done():
			cancelled.Add(1)
			return nil, ctx.Err()
		case <-time.After(10 * time.Second):
			return &runResult{Kind: spec.Kind}, nil
		}
	}
	start := time.Now()
	rs, err := concurrently(context.Background(), specs, do)
	require.ErrorIs(t, err, boom)
	assert.Nil(t, rs)
	assert.Equal(t, int32(2), cancelled.Load())
	assert.Less(t, time.Since(start), 5*time.Second)
}

// TestFreePortsDistinct: ports handed out in one process are never handed
// out again, even when their listeners are closed.
func TestFreePortsDistinct(t *testing.T) {
	seen := map[int]bool{}
	for range 20 {
		ps, err := freePorts(7)
		require.NoError(t, err)
		for _, p := range ps {
			assert.False(t, seen[p], "port %d handed out twice", p)
			seen[p] = true
		}
	}
}
