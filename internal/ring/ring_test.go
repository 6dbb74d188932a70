package ring

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func members(n int) []string {
	ms := make([]string, n)
	for i := range ms {
		ms[i] = fmt.Sprintf("10.0.0.%d:4317", i+1)
	}
	return ms
}

func traceHashes(n int) []uint64 {
	rng := rand.New(rand.NewPCG(1, 2))
	hs := make([]uint64, n)
	for i := range hs {
		var id [16]byte
		binary.LittleEndian.PutUint64(id[:8], rng.Uint64())
		binary.LittleEndian.PutUint64(id[8:], rng.Uint64())
		hs[i] = Hash(id)
	}
	return hs
}

// TestMembershipChangeMovesOneNth adds and removes one member of N and checks
// that about 1/N of the trace IDs move, all of them to the added member or
// from the removed one.
func TestMembershipChangeMovesOneNth(t *testing.T) {
	hs := traceHashes(200_000)
	for _, n := range []int{3, 4, 10, 100} {
		small, large := members(n), members(n+1)
		changed := large[n]
		t.Run(fmt.Sprintf("add_to_%d", n), func(t *testing.T) {
			checkMoves(t, hs, New(small), New(large), func(_, is string) bool { return is == changed }, n+1)
		})
		t.Run(fmt.Sprintf("remove_from_%d", n+1), func(t *testing.T) {
			checkMoves(t, hs, New(large), New(small), func(was, _ string) bool { return was == changed }, n+1)
		})
	}
}

// checkMoves checks that about 1/n of hs change owner from before to after,
// and that each move is one allowed says is.
func checkMoves(t *testing.T, hs []uint64, before, after *Ring, allowed func(was, is string) bool, n int) {
	t.Helper()
	moved := 0
	for _, h := range hs {
		was, is := before.Members()[before.Owner(h)], after.Members()[after.Owner(h)]
		if was != is {
			moved++
			require.True(t, allowed(was, is), "a trace moved from %s to %s", was, is)
		}
	}
	want := 1 / float64(n)
	assert.InDelta(t, want, float64(moved)/float64(len(hs)), want*0.3, "moved fraction")
}

func TestBalance(t *testing.T) {
	hs := traceHashes(200_000)
	r := New(members(8))
	counts := make([]int, r.Len())
	for _, h := range hs {
		counts[r.Owner(h)]++
	}
	for i, c := range counts {
		assert.InDelta(t, 1.0/8, float64(c)/float64(len(hs)), 0.15/8, "share of %s", r.Members()[i])
	}
}

func TestOrderAndDuplicatesDoNotMatter(t *testing.T) {
	a := New([]string{"b:1", "a:1", "c:1"})
	b := New([]string{"c:1", "a:1", "b:1", "a:1"})
	require.Equal(t, a.Members(), b.Members())
	for _, h := range traceHashes(10_000) {
		require.Equal(t, a.Owner(h), b.Owner(h))
	}
	assert.Equal(t, 1, a.Index("b:1"))
	assert.Equal(t, -1, a.Index("d:1"))
}

// TestNextSkippingIsRemoval checks that the member a trace falls back to when
// its owner is down is the owner it would have if the down member were
// removed: re-routing while a member is down agrees with the ring that
// gateways compute once it is gone.
func TestNextSkippingIsRemoval(t *testing.T) {
	ms := members(5)
	full := New(ms)
	down := full.Index(ms[2])
	without := New(append(append([]string{}, ms[:2]...), ms[3:]...))
	for _, h := range traceHashes(50_000) {
		next := full.Next(h, func(m int) bool { return m == down })
		require.NotEqual(t, down, next)
		require.Equal(t, without.Members()[without.Owner(h)], full.Members()[next])
		require.Equal(t, full.Owner(h), full.Next(h, nil))
	}
}

func TestEdges(t *testing.T) {
	empty := New(nil)
	assert.Equal(t, -1, empty.Owner(42))
	assert.Equal(t, -1, empty.Next(42, nil))
	one := New([]string{"a:1"})
	assert.Equal(t, 0, one.Owner(0))
	assert.Equal(t, 0, one.Owner(^uint64(0)))
	assert.Equal(t, -1, one.Next(7, func(int) bool { return true }))
}

// BenchmarkOwner measures one lookup on rings of growing size.
//
//	go test -run '^$' -bench Owner -count 6 ./internal/ring/ | benchstat -
func BenchmarkOwner(b *testing.B) {
	hs := traceHashes(1 << 12)
	for _, n := range []int{3, 30, 300} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			r := New(members(n))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				_ = r.Owner(hs[i&(len(hs)-1)])
				i++
			}
		})
	}
}
