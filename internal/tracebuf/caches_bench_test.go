package tracebuf

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkDropFilterAdd: a shard's dropped filter at the default size (a
// million IDs, one shard), both generations full, taking fresh IDs as every
// dropped trace does; an op is one add.
func BenchmarkDropFilterAdd(b *testing.B) {
	f := newDropFilter(1_000_000, 0)
	r := rand.New(rand.NewPCG(1, 2))
	for range 2 * f.perGen {
		f.add(r.Uint64(), 0)
	}
	ids := make([]uint64, 1<<16)
	for i := range ids {
		ids[i] = r.Uint64()
	}
	for i := 0; b.Loop(); i++ {
		f.add(ids[i&(len(ids)-1)]^uint64(i>>16), 0)
	}
}
