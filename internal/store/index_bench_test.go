package store

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkIndex indexes what the writer indexes per request of the
// benchmark workload: a spans record of 100 new traces (160 spans), then a
// decision on each, into an index that already holds a million traces (a
// few minutes of the store at 10 000 spans/s), and reports ns per trace.
//
//	go test -run='^$' -bench=Index -benchtime=2000x ./internal/store/
func BenchmarkIndex(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	newID := func() (id [16]byte) {
		for i := 0; i < 16; i += 8 {
			v := rng.Uint64()
			for k := range 8 {
				id[i+k] = byte(v >> (8 * k))
			}
		}
		return id
	}
	x := newIndex()
	at := ref{seg: 1}
	ids := make([][16]byte, 100)
	fill := func() {
		for i := range ids {
			ids[i] = newID()
		}
		at.off += 20_000
		x.apply(&Record{Kind: KindSpans, IDs: ids}, at)
		for i := range ids {
			x.apply(&Record{Kind: KindDecision, IDs: ids[i : i+1], Decision: Decision{Policy: "baseline", Reason: "probabilistic"}}, at)
		}
	}
	for range 10_000 {
		fill()
	}
	b.ReportAllocs()
	for b.Loop() {
		fill()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ids)), "ns/trace")
	b.ReportMetric(0, "ns/op")
}
