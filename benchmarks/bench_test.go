package benchmarks

import (
	"fmt"
	"testing"
)

// shardCounts are the shard/num_shards settings every benchmark runs with.
var shardCounts = []int{1, 2}

// BenchmarkConsumeTraces feeds the same pre-built batches to the tailsift
// and contrib tail_sampling processors (decision waits of 30 s, so every
// trace stays buffered) and reports ns/span, spans/s, ingest-ns/span,
// cpu-ns/span, allocs/span and alloc-B/span; see runConsume. MB/s is based
// on the OTLP protobuf size of the batches.
//
// Compare the implementations with benchstat:
//
//	cd benchmarks
//	go test -run='^$' -bench=. -benchmem -count=5 ./... | tee results.txt
//	go tool benchstat -col /impl results.txt
func BenchmarkConsumeTraces(b *testing.B) {
	w := benchWorkload(b)
	res, cpuRes, ingestRes := results{}, results{}, results{}
	for _, im := range implRegistry {
		b.Run("impl="+im.name, func(b *testing.B) {
			for _, shards := range shardCounts {
				b.Run(fmt.Sprintf("shards=%d", shards), func(b *testing.B) {
					r := runConsume(b, im, shards, w)
					res.add(im.name, shards, r.nsPerSpan)
					ingestRes.add(im.name, shards, r.ingestNsPerSpan)
					cpuRes.add(im.name, shards, r.cpuNsPerSpan)
				})
			}
		})
	}
	ratioLine("ns/span", shardCounts, res)
	ratioLine("ingest-ns/span", shardCounts, ingestRes)
	ratioLine("cpu-ns/span", shardCounts, cpuRes)
}

// BenchmarkRetainedBytes reports the heap retained per buffered span
// (retained-B/span) after feeding the whole workload with decision waits
// long enough that nothing is decided; see runRetained. It also prints a
// one-line tailsift/contrib ratio per shard count.
func BenchmarkRetainedBytes(b *testing.B) {
	w := benchWorkload(b)
	res := results{}
	for _, im := range implRegistry {
		b.Run("impl="+im.name, func(b *testing.B) {
			for _, shards := range shardCounts {
				b.Run(fmt.Sprintf("shards=%d", shards), func(b *testing.B) {
					res.add(im.name, shards, runRetained(b, im, shards, w).retainedPerSpan)
				})
			}
		})
	}
	ratioLine("retained-B/span", shardCounts, res)
}
