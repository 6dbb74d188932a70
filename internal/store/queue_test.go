package store

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// queuedItems returns what waits in s's queue (its writer held in a write,
// holdFirstWrite), putting it back in order.
func queuedItems(s *Store) []item {
	var ps []*item
	for len(s.in) > 0 {
		ps = append(ps, <-s.in)
	}
	its := make([]item, len(ps))
	for i, p := range ps {
		its[i] = *p
		s.in <- p
	}
	return its
}

// TestQueueBoundsCapacity: QueueBytes bounds the memory the queued records
// hold, their buffers' capacity and not only their length. An owned request
// of 1 KiB in a buffer of 256 KiB (a receiver's read buffer, a request cut
// from a larger frame) holds 256 KiB until written. Before, the queue
// counted 1 KiB for each: a queue of 1 MiB held 16 of them, 4 MiB.
func TestQueueBoundsCapacity(t *testing.T) {
	const queue = 1 << 20
	s := openStore(t, t.TempDir(), func(o *Options) { o.QueueBytes = queue })
	defer func() { require.NoError(t, s.Close()) }()
	entered, gate, _ := holdFirstWrite(s)
	first, firstIDs := request(t, []int{1}, 1, 0)
	require.True(t, s.AppendSpansOwned(firstIDs, first))
	<-entered // the writer holds the first record; the others wait

	small, ids := request(t, []int{2}, 1, 900)
	require.Less(t, len(small), 1<<10)
	accepted := 0
	for range 16 {
		buf := append(make([]byte, 0, 256<<10), small...)
		if s.AppendSpansOwned(ids, buf) {
			accepted++
		}
	}
	var held int64
	for _, it := range queuedItems(s) {
		held += int64(cap(it.req))
	}
	assert.Equal(t, 3, accepted, "room for three buffers of 256 KiB and their records")
	assert.LessOrEqual(t, held, int64(queue), "the queued records hold no more than QueueBytes")
	assert.GreaterOrEqual(t, s.Queued(), held, "the queue counts what its records hold")
	assert.Equal(t, int64(16-accepted), s.Stats().Dropped.Load())
	close(gate)
	require.NoError(t, s.Sync(context.Background()))
	assert.Zero(t, s.Queued(), "what is written is counted off as it was counted on")
}

// TestCopyRightSized: AppendSpans copies a request into a buffer at most a
// quarter larger than its record needs, whatever requests came before. Before, the
// copies shared one pool: a request of 1 KiB recorded after some of 900 KiB
// got one of their buffers, and held 900 KiB while queued.
func TestCopyRightSized(t *testing.T) {
	s := openStore(t, t.TempDir(), nil)
	defer func() { require.NoError(t, s.Close()) }()
	ctx := context.Background()
	big, bigIDs := request(t, []int{1}, 1, 900<<10)
	for range 8 {
		require.True(t, s.AppendSpans(bigIDs, big))
	}
	require.NoError(t, s.Sync(ctx)) // their copies are back in the pool
	entered, gate, _ := holdFirstWrite(s)
	require.True(t, s.AppendSpans(bigIDs, big))
	<-entered

	small, ids := request(t, []int{2}, 1, 900)
	for range 8 {
		require.True(t, s.AppendSpans(ids, small))
	}
	need := frameHeader + payloadHeader + len(small) + blockTail
	var held int64
	for _, it := range queuedItems(s) {
		assert.GreaterOrEqual(t, cap(it.req), need)
		assert.LessOrEqual(t, cap(it.req), need+need/4, "a copy's buffer")
		held += it.held()
	}
	assert.Equal(t, held, s.Queued(), "the queue counts what its records hold")
	close(gate)
	require.NoError(t, s.Sync(ctx))
}

// TestCopyClasses: a class's buffers hold what it is asked for, at most a
// quarter more, and a buffer of a class's size goes back to that class.
func TestCopyClasses(t *testing.T) {
	prev := 0
	for n := 1; n <= 1<<maxCopyBits+1; n += 1 + n/61 {
		class, size, ok := copyClass(n)
		if n > 1<<maxCopyBits {
			assert.False(t, ok, "%d bytes: not pooled", n)
			continue
		}
		require.True(t, ok, "%d bytes", n)
		assert.GreaterOrEqual(t, size, n)
		if n > 1<<minCopyBits {
			assert.LessOrEqual(t, size, n+n/4, "%d bytes", n)
		}
		assert.GreaterOrEqual(t, class, prev, "classes grow with the size")
		prev = class
		back, backSize, _ := copyClass(size)
		assert.Equal(t, class, back, "a buffer of %d bytes goes back to its class", size)
		assert.Equal(t, size, backSize)
	}
	assert.Equal(t, len(copies)-1, prev)
}
