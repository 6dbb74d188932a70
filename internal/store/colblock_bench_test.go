package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"

	"github.com/tailsift/tailsift/internal/workload"
)

// colBlocks is the raw blocks the columnar benchmarks compress and the
// spans they hold: a kept store directory's (TAILSIFT_STORE_DIR, as
// BenchmarkCodecStoreDir reads it) or the recorded workload's requests of
// shape, one request framed per block.
func colBlocks(tb testing.TB, shape string) (raws [][]byte, disk int) {
	tb.Helper()
	if dir := os.Getenv("TAILSIFT_STORE_DIR"); dir != "" && shape == "dir" {
		c, err := newCodec(CompressionZstd)
		if err != nil {
			tb.Fatal(err)
		}
		defer c.close()
		segs, _ := filepath.Glob(filepath.Join(dir, "seg-*.tsl"))
		for _, p := range segs {
			data, err := os.ReadFile(p)
			if err != nil {
				tb.Fatal(err)
			}
			for len(data) >= blockHeader {
				h, raw, err := c.readBlock(data, nil)
				if err != nil {
					if !errors.Is(err, errTruncated) {
						tb.Logf("%s: %v", p, err)
					}
					break
				}
				raws, disk, data = append(raws, raw), disk+blockHeader+h.compLen, data[blockHeader+h.compLen:]
			}
		}
		return raws, disk
	}
	if shape == "dir" {
		return nil, 0
	}
	rec, err := workload.Record(workload.Config{Seed: 1, Rate: 20_000, Duration: 5 * time.Second, ErrorPct: 1, Shape: shape},
		time.Unix(1_700_000_000, 0))
	if err != nil {
		tb.Fatal(err)
	}
	for i, req := range rec.Requests {
		raw := appendSpansFrame(nil, 1_700_000_000e9+int64(i)*1e6, req)
		sealFrame(raw, uint64(i+1))
		raws = append(raws, raw)
	}
	return raws, 0
}

// colSpans counts the spans the columnar transform finds in raws and
// checks that each block round-trips.
func colSpans(tb testing.TB, raws [][]byte) int {
	tb.Helper()
	var e colEnc
	spans := 0
	for _, raw := range raws {
		enc := e.encode(nil, raw)
		spans += e.spans
		out, err := colDecode(nil, enc, len(raw))
		if err != nil || !bytes.Equal(out, raw) {
			tb.Fatalf("block of %d bytes does not round-trip: %v", len(raw), err)
		}
	}
	return spans
}

// BenchmarkColBlock compares the store's block encoders (zstd, s2, s2col:
// s2 of the columnar form, colblock.go) and others on the workload's
// requests (shape bench and sdk, one request per block, as the writer
// seals them at a low rate) and on a kept store directory's blocks (shape
// dir, with TAILSIFT_STORE_DIR): compressed bytes per span (block header
// included) and the calls' CPU per input byte (cpu-ns/B: the thread's CPU
// time; ns/B is the wall clock's, which on a shared machine counts other
// processes' time too). cols is the transform alone. idle=16ms sleeps
// between calls as BenchmarkCodecWake does.
//
//	go test -run='^$' -bench=ColBlock -benchtime=3x -cpu=1 ./internal/store/
func BenchmarkColBlock(b *testing.B) {
	codecs := map[string]*codec{}
	for _, comp := range []string{CompressionZstd, CompressionS2, CompressionS2Col} {
		c, err := newCodec(comp)
		if err != nil {
			b.Fatal(err)
		}
		defer c.close()
		codecs[comp] = c
	}
	seal := func(comp string) func(dst, src []byte) []byte {
		c := codecs[comp]
		var buf []byte
		return func(_, src []byte) []byte {
			buf = c.seal(buf[:0], src, 1, 1)
			return buf[blockHeader:]
		}
	}
	var enc colEnc
	var scratch []byte
	zs := codecs[CompressionZstd].enc
	encoders := []struct {
		name string
		f    func(dst, src []byte) []byte
	}{
		{"zstd", seal(CompressionZstd)},
		{"s2", seal(CompressionS2)},
		{"s2-better", func(dst, src []byte) []byte { return s2.EncodeBetter(dst[:cap(dst)], src) }},
		{"cols", enc.encode},
		{"s2col", seal(CompressionS2Col)},
		{"cols+zstd", func(dst, src []byte) []byte {
			scratch = enc.encode(scratch[:0], src)
			return zs.EncodeAll(scratch, dst)
		}},
	}
	for _, shape := range []string{workload.ShapeBench, workload.ShapeSDK, "dir"} {
		raws, disk := colBlocks(b, shape)
		if len(raws) == 0 {
			continue
		}
		spans := colSpans(b, raws)
		in := 0
		for _, r := range raws {
			in += len(r)
		}
		for _, idle := range []time.Duration{0, 16 * time.Millisecond} {
			for _, e := range encoders {
				if idle > 0 && e.name != "zstd" && e.name != "s2" && e.name != "s2col" {
					continue
				}
				b.Run(fmt.Sprintf("shape=%s/idle=%v/%s", shape, idle, e.name), func(b *testing.B) {
					runtime.LockOSThread()
					defer runtime.UnlockOSThread()
					var dst []byte
					var spent, cpu time.Duration
					out, nin, calls := 0, 0, 0
					for b.Loop() {
						if idle == 0 {
							out = 0
							t0, c0 := time.Now(), threadCPU()
							for _, r := range raws {
								dst = e.f(dst[:0], r)
								out += blockHeader + len(dst)
							}
							spent, cpu = spent+time.Since(t0), cpu+threadCPU()-c0
							nin += in
							continue
						}
						// One block per wake-up, 200 per b.N.
						for range 200 {
							time.Sleep(idle)
							r := raws[calls%len(raws)]
							t0, c0 := time.Now(), threadCPU()
							dst = e.f(dst[:0], r)
							spent, cpu = spent+time.Since(t0), cpu+threadCPU()-c0
							nin, calls = nin+len(r), calls+1
						}
					}
					if idle == 0 {
						b.ReportMetric(float64(out)/float64(spans), "B/span")
						if disk > 0 {
							b.ReportMetric(float64(out)/float64(disk), "x-disk")
						}
					}
					b.ReportMetric(float64(spent.Nanoseconds())/float64(nin), "ns/B")
					b.ReportMetric(float64(cpu.Nanoseconds())/float64(nin), "cpu-ns/B")
					b.ReportMetric(float64(in)/float64(spans), "in-B/span")
					b.ReportMetric(0, "ns/op")
				})
			}
		}
	}
}

// BenchmarkColOpen is the read side of BenchmarkColBlock: the store's
// codec opening (checking and decompressing) each block as retrieval and
// recovery do, per byte of records out.
//
//	go test -run='^$' -bench=ColOpen -benchtime=3x -cpu=1 ./internal/store/
func BenchmarkColOpen(b *testing.B) {
	for _, shape := range []string{workload.ShapeBench, workload.ShapeSDK, "dir"} {
		raws, _ := colBlocks(b, shape)
		if len(raws) == 0 {
			continue
		}
		in := 0
		for _, r := range raws {
			in += len(r)
		}
		for _, comp := range []string{CompressionZstd, CompressionS2, CompressionS2Col} {
			c, err := newCodec(comp)
			if err != nil {
				b.Fatal(err)
			}
			var blocks [][]byte
			for _, r := range raws {
				blocks = append(blocks, c.seal(nil, r, 1, 1))
			}
			b.Run(fmt.Sprintf("shape=%s/%s", shape, comp), func(b *testing.B) {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				var raw []byte
				var cpu time.Duration
				for b.Loop() {
					c0 := threadCPU()
					for k, blk := range blocks {
						var err error
						if _, raw, err = c.readBlock(blk, raw); err != nil || len(raw) != len(raws[k]) {
							b.Fatalf("block %d: %v", k, err)
						}
					}
					cpu += threadCPU() - c0
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(in), "ns/B")
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/float64(in), "cpu-ns/B")
				b.ReportMetric(0, "ns/op")
			})
			c.close()
		}
	}
}
