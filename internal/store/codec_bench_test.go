package store

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"

	"github.com/tailsift/tailsift/internal/store/storetest"
)

// BenchmarkCodec compresses the recorded benchmark workload's requests
// with the store's encoders and the candidates measured against them, one
// request per call (group=1, a low request rate) or three (group=3, about
// what the writer finds queued at 30 000 spans/s), and reports the CPU per
// input byte and per span (one goroutine: ns/B is the encoder's own speed,
// with hot caches) and the compressed bytes per span.
//
//	go test -run='^$' -bench=Codec -benchtime=3000x ./internal/store/
func BenchmarkCodec(b *testing.B) {
	w := storetest.Record(b, 20_000, 5*time.Second)
	store := []zstd.EOption{zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1),
		zstd.WithLowerEncoderMem(true), zstd.WithNoEntropyCompression(true), zstd.WithEncoderCRC(false)}
	with := func(extra ...zstd.EOption) []zstd.EOption {
		return append(append([]zstd.EOption(nil), store...), extra...)
	}
	encodeAll := func(opts ...zstd.EOption) func(dst, src []byte) []byte {
		e, err := zstd.NewWriter(nil, opts...)
		if err != nil {
			b.Fatal(err)
		}
		return func(dst, src []byte) []byte { return e.EncodeAll(src, dst) }
	}
	zs := encodeAll(store...)
	cases := []struct {
		name string
		f    func(dst, src []byte) []byte
	}{
		{"zstd-store", zs},
		{"zstd-himem", encodeAll(with(zstd.WithLowerEncoderMem(false))...)},
		{"zstd-win64k", encodeAll(with(zstd.WithWindowSize(64 << 10))...)},
		{"zstd-single", encodeAll(with(zstd.WithSingleSegment(true))...)},
		{"zstd-entropy", encodeAll(with(zstd.WithNoEntropyCompression(false))...)},
		{"zstd-dict256k", encodeAll(with(zstd.WithEncoderDictRaw(1, lastBytes(w.Requests, 256<<10)))...)},
		{"zstd-stream4m", zstdStream(b, 4<<20, with(zstd.WithWindowSize(4<<20))...)},
		{"zstd-chunked128k", func(dst, src []byte) []byte {
			// Frames of at most one zstd block: EncodeAll's path
			// without history.
			for len(src) > 0 {
				n := min(len(src), 128<<10)
				dst, src = zs(dst, src[:n]), src[n:]
			}
			return dst
		}},
		{"s2", func(dst, src []byte) []byte { return s2.Encode(dst[:cap(dst)], src) }},
	}
	for _, group := range []int{1, 3} {
		var reqs [][]byte
		for i := 0; i+group <= len(w.Requests); i += group {
			reqs = append(reqs, bytes.Join(w.Requests[i:i+group], nil))
		}
		for _, c := range cases {
			b.Run(fmt.Sprintf("group=%d/%s", group, c.name), func(b *testing.B) {
				b.ReportAllocs()
				var dst []byte
				in, out, i := 0, 0, 0
				for b.Loop() {
					req := reqs[i%len(reqs)]
					dst = c.f(dst[:0], req)
					in, out, i = in+len(req), out+len(dst), i+1
				}
				spans := float64(in) / (float64(w.Wire) / float64(w.Total))
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(in), "ns/B")
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/spans, "ns/span")
				b.ReportMetric(float64(out)/spans, "B/span")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}

// lastBytes is the last n bytes of reqs (a raw dictionary).
func lastBytes(reqs [][]byte, n int) []byte {
	all := bytes.Join(reqs, nil)
	return all[len(all)-n:]
}

// zstdStream is one zstd stream whose history spans requests: each request
// is flushed as its own blocks; a new frame starts every restart bytes.
func zstdStream(b *testing.B, restart int, opts ...zstd.EOption) func(dst, src []byte) []byte {
	var out bytes.Buffer
	e, err := zstd.NewWriter(&out, opts...)
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	return func(dst, src []byte) []byte {
		if n >= restart {
			_ = e.Close()
			e.Reset(&out)
			n = 0
		}
		out.Reset()
		_, _ = e.Write(src)
		_ = e.Flush()
		n += len(src)
		return append(dst, out.Bytes()...)
	}
}

// BenchmarkCodecCold is BenchmarkCodec's store encoders with the caches
// made cold before each call (8 MiB written in between, as a collector's
// other work does between the writer's blocks: at 10 000 spans/s it
// compresses about 64 times a second), timing the calls alone.
//
//	go test -run='^$' -bench=CodecCold -benchtime=1000x ./internal/store/
func BenchmarkCodecCold(b *testing.B) {
	w := storetest.Record(b, 20_000, 5*time.Second)
	c, err := newCodec(CompressionZstd)
	if err != nil {
		b.Fatal(err)
	}
	defer c.close()
	thrash := make([]byte, 8<<20)
	for _, comp := range []string{CompressionZstd, CompressionS2} {
		for _, cold := range []bool{false, true} {
			b.Run(fmt.Sprintf("compression=%s/cold=%v", comp, cold), func(b *testing.B) {
				c.kind = kindOf(comp)
				var dst []byte
				var spent time.Duration
				in, i := 0, 0
				for b.Loop() {
					k := i % len(w.Requests)
					if cold {
						for j := 0; j < len(thrash); j += 64 {
							thrash[j]++
						}
					}
					t0 := time.Now()
					dst = c.seal(dst[:0], w.Requests[k], 1, 1)
					spent += time.Since(t0)
					in, i = in+len(w.Requests[k]), i+1
				}
				spans := float64(in) / (float64(w.Wire) / float64(w.Total))
				b.ReportMetric(float64(spent.Nanoseconds())/float64(in), "ns/B")
				b.ReportMetric(float64(spent.Nanoseconds())/spans, "ns/span")
				b.ReportMetric(float64(spent.Microseconds())/float64(i), "µs/call")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}

// BenchmarkCodecWake is the store's codec called as the writer calls it in
// a collector at 10 000 spans/s: about every 16 ms, the process idle in
// between (the collector's CPU is more than 90 % idle at that rate), timing
// the calls alone. idle=0 is the hot loop; warm=true compresses another
// request first after each sleep and times the second; group=4 compresses
// four requests (as four blocks) per wake-up. On this project's VM the
// idle calls cost zstd 1.3–2.0× the hot loop's time per byte (the longer
// the idle, the more), as inside the collector, s2 up to 1.5×; four
// requests per wake-up recover most of it, one warm-up call little
// (benchmarks/README.md, "Durable store, round 7").
//
//	go test -run='^$' -bench=CodecWake -benchtime=200x -cpu=1 ./internal/store/
func BenchmarkCodecWake(b *testing.B) {
	w := storetest.Record(b, 20_000, 5*time.Second)
	c, err := newCodec(CompressionZstd)
	if err != nil {
		b.Fatal(err)
	}
	defer c.close()
	cases := []struct {
		idle  time.Duration
		warm  bool
		group int
	}{{0, false, 1}, {16 * time.Millisecond, false, 1}, {16 * time.Millisecond, true, 1}, {16 * time.Millisecond, false, 4}, {64 * time.Millisecond, false, 1}}
	for _, comp := range []string{CompressionZstd, CompressionS2} {
		for _, k := range cases {
			b.Run(fmt.Sprintf("compression=%s/idle=%v/warm=%v/group=%d", comp, k.idle, k.warm, k.group), func(b *testing.B) {
				c.kind = kindOf(comp)
				var dst []byte
				var spent time.Duration
				in, i := 0, 0
				for b.Loop() {
					time.Sleep(k.idle)
					if k.warm {
						dst = c.seal(dst[:0], w.Requests[(i+len(w.Requests)/2)%len(w.Requests)], 1, 1)
					}
					t0 := time.Now()
					for range k.group {
						dst = c.seal(dst[:0], w.Requests[i%len(w.Requests)], 1, 1)
						in, i = in+len(w.Requests[i%len(w.Requests)]), i+1
					}
					spent += time.Since(t0)
				}
				b.ReportMetric(float64(spent.Nanoseconds())/float64(in), "ns/B")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}
