package tracebuf

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func chunkAddrs(chunks [][]byte) map[uintptr]bool {
	m := make(map[uintptr]bool, len(chunks))
	for _, c := range chunks {
		m[uintptr(unsafe.Pointer(unsafe.SliceData(c)))] = true
	}
	return m
}

func idleAddrs(a *arena) [][]byte {
	var cs [][]byte
	for _, c := range a.idle {
		cs = append(cs, c.b)
	}
	return cs
}

// fillAndThin allocates about n chunks of blocks of 64 to 4 KiB and
// releases all but every keep-th, scattered over every chunk. It returns
// the blocks kept.
func fillAndThin(t *testing.T, a *arena, n, keep int) [][]byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(5, 6))
	var blocks [][]byte
	for len(a.chunks) < n {
		m := 64 + rng.IntN(4000)
		b := a.alloc(m)[:m]
		b[0], b[m-1] = byte(len(blocks)), byte(len(blocks))
		blocks = append(blocks, b)
	}
	var kept [][]byte
	for i, b := range blocks {
		if i%keep == 0 {
			kept = append(kept, b)
			continue
		}
		a.release(b)
	}
	return kept
}

func compactKept(a *arena, now int64, kept [][]byte) {
	a.compact(now, func(move func(*[]byte)) {
		for i := range kept {
			move(&kept[i])
		}
	})
}

// Compaction moves the blocks in use into the chunks it has just emptied:
// it maps at most one chunk (it mapped one per 4 MiB moved, here 4), and
// the chunks it leaves idle and refills take are the old ones, already
// written to.
func TestArenaCompactReusesChunks(t *testing.T) {
	a := newArena(64 << 20) // a reserve that keeps every idle chunk
	defer a.close()
	kept := fillAndThin(t, a, 12, 3)
	old := chunkAddrs(a.chunks)
	peak := a.mapped
	before := MappedBytes()

	compactKept(a, 0, kept)
	fresh := 0
	for addr := range chunkAddrs(a.chunks) {
		if !old[addr] {
			fresh++
		}
	}
	assert.LessOrEqual(t, fresh, 1, "chunks mapped anew by the compaction")
	assert.LessOrEqual(t, a.mapped, peak+chunkSize)
	require.NotEmpty(t, a.idle, "the emptied chunks wait, idle")
	for addr := range chunkAddrs(idleAddrs(a)) {
		assert.True(t, old[addr], "an idle chunk is an old one")
	}
	assert.Equal(t, a.mapped-peak, MappedBytes()-before, "idle chunks stay counted as mapped")
	assert.Equal(t, int64(len(a.idle))*chunkSize, a.idleBytes)
	for i, b := range kept {
		require.Equal(t, byte(i*3), b[0], "block %d moved whole", i)
		require.Equal(t, byte(i*3), b[len(b)-1], "block %d moved whole", i)
	}

	// New blocks fill the idle chunks before any chunk is mapped.
	idle, mapped := len(a.idle), a.mapped
	last := unsafe.SliceData(a.idle[idle-1].b)
	for len(a.idle) == idle {
		a.alloc(4096)
	}
	assert.Equal(t, idle-1, len(a.idle))
	assert.Equal(t, mapped, a.mapped, "a refill from the idle chunks maps nothing")
	assert.True(t, chunkAddrs(a.chunks)[uintptr(unsafe.Pointer(last))], "the chunk that went idle last is taken first")
}

// Idle chunks go back to the OS when the reserve does not allow them, when
// they have been idle for idleAge, and all at once when the arena holds no
// record; what stays is within the reserve.
func TestArenaTrimIdle(t *testing.T) {
	at := int64(time.Hour)
	tests := []struct {
		name    string
		reserve int64
		now     int64 // when trimIdle runs
		empty   bool  // every block released
		want    int   // idle chunks left (-1: all that compaction left; -2: what the reserve allows)
	}{
		{"within the reserve and young: kept", 64 << 20, at + int64(idleAge) - 1, false, -1},
		{"idle for idleAge: released", 64 << 20, at + int64(idleAge), false, 0},
		{"beyond the reserve: the longest idle go", 3 * chunkSize, at, false, -2},
		{"no reserve: none kept", 0, at, false, 0},
		{"no record left: all released", 64 << 20, at, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newArena(64 << 20)
			defer a.close()
			base := MappedBytes() - a.mapped
			kept := fillAndThin(t, a, 10, 50)
			compactKept(a, at, kept)
			require.GreaterOrEqual(t, len(a.idle), 8, "10 chunks emptied, 1 or 2 refilled with what they held")
			want := tt.want
			switch want {
			case -1:
				want = len(a.idle)
			case -2:
				want = int((tt.reserve - a.spare) / chunkSize)
				require.Less(t, want, len(a.idle))
			}
			a.reserve = tt.reserve
			if tt.empty {
				for _, b := range kept {
					a.release(b)
				}
				compactKept(a, at, nil)
			}
			keep := idleAddrs(a)[len(a.idle)-want:]
			gone := idleAddrs(a)[:len(a.idle)-want]
			marker := []byte("tailsift arena chunk " + tt.name)
			for _, c := range gone {
				require.GreaterOrEqual(t, len(c), len(marker))
				copy(c, marker)
			}
			a.trimIdle(tt.now)
			assert.Equal(t, want, len(a.idle), "idle chunks left")
			assert.Equal(t, chunkAddrs(keep), chunkAddrs(idleAddrs(a)), "the chunks that went idle last stay")
			assert.Equal(t, int64(want)*chunkSize, a.idleBytes)
			assert.LessOrEqual(t, a.spare+a.idleBytes, max(tt.reserve, a.spare))
			assert.Equal(t, a.mapped, MappedBytes()-base)
			for _, c := range gone {
				assertGivenBack(t, c, marker)
			}
			for _, c := range keep {
				assertMapped(t, c, true)
			}
		})
	}
}

// A shard keeps the chunks a compaction empties while records are left, within
// its reserve, and lets them go once they have been idle for idleAge, though
// records are still buffered, while the chunks in use stay mapped; the
// self-metric follows.
func TestShardReleasesIdleChunks(t *testing.T) {
	b, obs, clk := newArenaTestBuffer(t, 64<<20, func(cfg *Config) { cfg.Completion.MaxWait = time.Minute })
	ctx := context.Background()
	// The arena as the shard's goroutine sees it after its current turn.
	type view struct {
		mapped, idleBytes, spare, reserve int64
		idle, inUse                       [][]byte
		traces                            int
	}
	marker := []byte("tailsift idle chunk")
	// look returns the view; with mark, it writes marker at the start of
	// each idle chunk, in the shard's goroutine.
	look := func(mark bool) view {
		// The turn that took the clock's advance ends (its tend compacts
		// and trims the arena) before the view is taken. One sync does not
		// ensure it: the loop lets a message posted as the shard finishes
		// the sync's batch join that batch, and run before that tend (not
		// seen in 24 000 tries, but nothing prevents it). The second
		// sync's batch can hold the view's message, but it starts after
		// the first one's tend.
		require.NoError(t, b.Sync(ctx))
		require.NoError(t, b.Sync(ctx))
		var v view
		require.NoError(t, b.inShard(ctx, 0, func(_ context.Context, s *shard) {
			a := s.usage.arena
			v = view{a.mapped, a.idleBytes, a.spare, a.reserve, idleAddrs(a), slices.Clone(a.chunks), len(s.traces)}
			if mark {
				for _, c := range v.idle {
					copy(c, marker)
				}
			}
		}))
		return v
	}
	ingestSpike(t, b) // about 8 MB, decided at 1 minute
	clk.Advance(30 * time.Second)
	ingestTraces(t, b, 100, 5) // about 1 MB more, decided at 90 s
	peak := look(false).mapped

	clk.Advance(30*time.Second + time.Millisecond) // the spike is decided
	v := look(true)
	require.NotEmpty(t, v.idle, "compaction left idle chunks")
	assert.LessOrEqual(t, v.spare+v.idleBytes, v.reserve)
	assert.LessOrEqual(t, v.mapped, peak)
	assert.Equal(t, v.mapped, obs.mapped.Load())
	inUse := v.mapped - v.idleBytes

	clk.Advance(idleAge - time.Second)
	kept := look(false)
	assert.Equal(t, chunkAddrs(v.idle), chunkAddrs(kept.idle), "idle for less than idleAge: kept")

	clk.Advance(time.Second)
	after := look(false)
	assert.Empty(t, after.idle, "idle for idleAge: released")
	assert.Equal(t, inUse, after.mapped, "the chunks in use stay")
	assert.Equal(t, chunkAddrs(v.inUse), chunkAddrs(after.inUse), "the chunks in use stay")
	assert.Equal(t, after.mapped, obs.mapped.Load(), "the self-metric follows")
	assert.Positive(t, after.traces, "records are still buffered")
	// Unmapped: not the arena's memory any more. Not "nothing mapped
	// there" (/proc/self/maps): the hole an unmapped chunk leaves is where
	// the kernel puts the process's next mapping of its size or less (the
	// Go runtime's, the race detector's, a new thread's stack).
	for _, c := range v.idle {
		assertGivenBack(t, c, marker)
	}
	for _, c := range after.inUse {
		assertMapped(t, c, true)
	}
}

// ingestTraces buffers n requests of 50 traces (from r*1000), each of 4
// spans of about 1000 bytes.
func ingestTraces(t *testing.T, b *Buffer, r0, n uint64) {
	t.Helper()
	ctx := context.Background()
	for r := r0; r < r0+n; r++ {
		traces := make([]uint64, 50)
		for i := range traces {
			traces[i] = r*1000 + uint64(i)
		}
		require.NoError(t, b.Ingest(ctx, encodeSized(t, traces, 4, 1000)))
	}
	require.NoError(t, b.Sync(ctx))
}
