package tracebuf

import (
	"context"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tailsift/tailsift/internal/clock/clocktest"
	"github.com/tailsift/tailsift/internal/wire"
	"github.com/tailsift/tailsift/sampling"
)

// A trace fed by several messages keeps each message's records in a
// segment of its own: the records already buffered stay where they are (no
// copy per message), every record is kept in order, and the kept trace
// goes out whole.
func TestTraceSegmentsAcrossMessages(t *testing.T) {
	cfg := testBufferConfig()
	cfg.Completion.MaxSpans = 1000
	cfg.Policies = []sampling.PolicyConfig{sampling.NewPolicyConfig("all", "always_sample", &sampling.AlwaysSampleConfig{})}
	clk := clocktest.NewFake(time.Unix(0, 0))
	out := &collector{spans: map[[16]byte]int{}}
	b, err := New(cfg, out.emit, Settings{Clock: clk})
	require.NoError(t, err)
	b.Start()
	t.Cleanup(func() { require.NoError(t, b.Shutdown(context.Background())) })
	ctx := context.Background()
	s := b.shards[0]

	const messages, spansPer = 7, 3
	var first *byte
	for m := range messages {
		require.NoError(t, b.Ingest(ctx, encodeSized(t, []uint64{1, 2}, spansPer, 100+m)))
		require.NoError(t, b.Sync(ctx))
		tr := s.traces[tid(1)]
		require.NotNil(t, tr)
		if m == 0 {
			first = unsafe.SliceData(tr.recs)
			assert.Equal(t, tr.size-traceOverhead, int64(cap(tr.recs)), "the first segment is all the trace holds")
		}
		assert.Same(t, first, unsafe.SliceData(tr.recs), "message %d moved the records before it", m)
		// Segments beyond segmentsExact also leave room for an eighth: a
		// message may fit in the last one.
		assert.LessOrEqual(t, len(tr.more), m)
		assert.GreaterOrEqual(t, len(tr.more), min(m, segmentsExact))
		var n, total int
		tr.forEachRecord(func(gid uint32, raw []byte) {
			n++
			total += len(raw)
		})
		assert.Equal(t, (m+1)*spansPer, n)
		assert.Less(t, total, tr.recordBytes())
		segs, segBytes := 0, int64(0)
		tr.eachSegment(func(seg *[]byte) { segs, segBytes = segs+1, segBytes+int64(cap(*seg)) })
		assert.Equal(t, 1+len(tr.more), segs)
		assert.Equal(t, traceOverhead+segBytes+int64(cap(tr.more))*segmentRefBytes, tr.size,
			"the trace counts its struct, its segments and its list of later segments")
	}
	clk.Advance(time.Minute)
	require.NoError(t, b.Sync(ctx))
	require.Empty(t, s.traces)
	clk.Advance(time.Second) // the output batch's timeout
	require.NoError(t, b.Sync(ctx))
	assert.Equal(t, messages*spansPer, out.count(tid(1)))
	assert.Equal(t, messages*spansPer, out.count(tid(2)))
	assert.Zero(t, s.usage.arena.inUse(), "every segment went back to the arena")
	assert.Empty(t, s.usage.groups.byHash, "every record's group reference dropped")
	assert.Zero(t, s.usage.groups.bytes)
}

// A trace of more groups than it counts drops its group references walking
// its records; either way every reference goes.
func TestTraceGroupCountsOverflow(t *testing.T) {
	for _, groups := range []int{1, traceGroups, traceGroups + 3} {
		in := newInterner()
		s := &shard{usage: usage{groups: in, arena: newArena(1 << 20)}}
		tr := &trace{}
		for g := range groups {
			sc := wire.Scope{Resource: []byte{byte(g)}}
			gid := in.lookup(&sc)
			for range 3 {
				sp := &wire.Span{Raw: []byte("span bytes")}
				tr.pending = recordSize(gid, sp)
				s.appendRecord(tr, sp, gid)
			}
		}
		assert.Equal(t, groups > traceGroups, tr.groups.more)
		assert.Len(t, in.byHash, groups)
		tr.unrefGroups(in)
		assert.Empty(t, in.byHash, "%d groups", groups)
		assert.Zero(t, in.bytes)
		s.usage.arena.close()
	}
}
