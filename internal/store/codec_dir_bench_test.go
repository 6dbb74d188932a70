package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/s2"
)

// BenchmarkCodecStoreDir compresses again the blocks of a store directory
// an end-to-end run kept (bench-e2e -keep -store zstd: <run>/pair1-fastpath/store),
// so that the encoders are compared on the requests a collector recorded
// (their random IDs compress worse than storetest's workload), one block
// per call or `group` consecutive blocks joined (a writer that waits for
// more requests before it compresses). It reports the compressed bytes as
// a fraction of the directory's own blocks (x-disk: multiply the run's
// disk B/span by it) and the encoder's ns per input byte. Skipped unless
// TAILSIFT_STORE_DIR is set:
//
//	TAILSIFT_STORE_DIR=<dir> go test -run='^$' -bench=CodecStoreDir -benchtime=1x ./internal/store/
func BenchmarkCodecStoreDir(b *testing.B) {
	dir := os.Getenv("TAILSIFT_STORE_DIR")
	if dir == "" {
		b.Skip("TAILSIFT_STORE_DIR not set")
	}
	c, err := newCodec(CompressionZstd)
	if err != nil {
		b.Fatal(err)
	}
	defer c.close()
	segs, err := filepath.Glob(filepath.Join(dir, "seg-*.tsl"))
	if err != nil || len(segs) == 0 {
		b.Fatalf("no segments in %s: %v", dir, err)
	}
	var raws [][]byte
	disk := 0
	for _, p := range segs {
		data, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		for len(data) >= blockHeader {
			h, raw, err := c.readBlock(data, nil)
			if err != nil {
				// A torn last block; anything else (a corrupt block)
				// is logged, and the rest of the segment left out.
				if !errors.Is(err, errTruncated) {
					b.Logf("%s: %v", p, err)
				}
				break
			}
			raws, disk, data = append(raws, raw), disk+blockHeader+h.compLen, data[blockHeader+h.compLen:]
		}
	}
	encoders := []struct {
		name string
		f    func(dst, src []byte) []byte
	}{
		{"zstd", func(dst, src []byte) []byte { return c.enc.EncodeAll(src, dst) }},
		{"s2", func(dst, src []byte) []byte { return s2.Encode(dst[:cap(dst)], src) }},
		{"s2-better", func(dst, src []byte) []byte { return s2.EncodeBetter(dst[:cap(dst)], src) }},
	}
	for _, group := range []int{1, 2, 4, 8} {
		var blocks [][]byte
		for i := 0; i+group <= len(raws); i += group {
			blocks = append(blocks, bytes.Join(raws[i:i+group], nil))
		}
		in := 0
		for _, r := range blocks {
			in += len(r)
		}
		// The directory's blocks hold disk bytes for all of raws; scaled
		// to the blocks joined here (the last group may be left out).
		ref := float64(disk) * float64(in) / float64(len(bytes.Join(raws, nil)))
		for _, e := range encoders {
			b.Run(fmt.Sprintf("group=%d/%s", group, e.name), func(b *testing.B) {
				var dst []byte
				out := 0
				for b.Loop() {
					out = 0
					for _, r := range blocks {
						dst = e.f(dst[:0], r)
						out += blockHeader + len(dst)
					}
				}
				b.ReportMetric(float64(out)/ref, "x-disk")
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(in), "ns/B")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}
