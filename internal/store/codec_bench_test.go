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
// one by one (one request per block, as at a low request rate) with each
// candidate encoder, and reports ns per input byte and compressed bytes
// per span.
func BenchmarkCodec(b *testing.B) {
	w := storetest.Record(b, 20_000, 5*time.Second)
	zopts := func(extra ...zstd.EOption) []zstd.EOption {
		return append([]zstd.EOption{zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1),
			zstd.WithLowerEncoderMem(true), zstd.WithNoEntropyCompression(true), zstd.WithEncoderCRC(false)}, extra...)
	}
	type enc func(dst, src []byte) []byte
	zenc := func(opts ...zstd.EOption) enc {
		e, err := zstd.NewWriter(nil, opts...)
		if err != nil {
			b.Fatal(err)
		}
		return func(dst, src []byte) []byte { return e.EncodeAll(src, dst) }
	}
	cases := []struct {
		name string
		f    enc
	}{
		{"zstd-store", zenc(zopts()...)},
		{"zstd-himem", zenc(zopts(zstd.WithLowerEncoderMem(false))...)},
		{"zstd-win64k", zenc(zopts(zstd.WithWindowSize(64 << 10))...)},
		{"zstd-single", zenc(zopts(zstd.WithSingleSegment(true))...)},
		{"zstd-entropy", zenc(zopts(zstd.WithNoEntropyCompression(false))...)},
		{"s2", func(dst, src []byte) []byte { return s2.Encode(dst[:cap(dst)], src) }},
		{"zstd-dict256k", zenc(zopts(zstd.WithEncoderDictRaw(1, dictOf(w.Requests, 256<<10)))...)},
		{"zstd-dict1m", zenc(zopts(zstd.WithEncoderDictRaw(1, dictOf(w.Requests, 1<<20)))...)},
		{"zstd-stream1m", zstream(b, 1<<20, zopts(zstd.WithWindowSize(1<<20))...)},
		{"zstd-stream4m", zstream(b, 4<<20, zopts(zstd.WithWindowSize(4<<20))...)},
	}
	ze := zenc(zopts()...)
	cases = append(cases[:0:0], cases...)
	cases = append(cases, struct {
		name string
		f    enc
	}{"zstd-chunked128k", func(dst, src []byte) []byte {
		for len(src) > 0 {
			n := min(len(src), 128<<10)
			dst = ze(dst, src[:n])
			src = src[n:]
		}
		return dst
	}})
	for _, group := range []int{1, 3} {
		reqs := w.Requests
		if group > 1 {
			reqs = nil
			for i := 0; i+group <= len(w.Requests); i += group {
				var r []byte
				for _, q := range w.Requests[i : i+group] {
					r = append(r, q...)
				}
				reqs = append(reqs, r)
			}
		}
		for _, c := range cases {
			b.Run(fmt.Sprintf("group=%d/%s", group, c.name), func(b *testing.B) {
				var dst []byte
				in, out, spans, i := 0, 0, 0, 0
				for b.Loop() {
					k := i % len(reqs)
					dst = c.f(dst[:0], reqs[k])
					in += len(reqs[k])
					out += len(dst)
					spans += len(reqs[k]) / 530
					i++
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(in), "ns/B")
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(spans), "ns/span")
				b.ReportMetric(float64(out)/float64(spans), "B/span")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}

// dictOf is the last n bytes of requests (a raw dictionary).
func dictOf(reqs [][]byte, n int) []byte {
	var d []byte
	for i := len(reqs) - 1; i >= 0 && len(d) < n; i-- {
		d = append(append([]byte(nil), reqs[i]...), d...)
	}
	return d[len(d)-n:]
}

// zstream is one zstd stream whose history spans requests: each request is
// flushed as its own blocks; a new frame starts every restart bytes.
func zstream(b *testing.B, restart int, opts ...zstd.EOption) func(dst, src []byte) []byte {
	var out bytes.Buffer
	e, err := zstd.NewWriter(&out, opts...)
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	return func(dst, src []byte) []byte {
		if n >= restart {
			_ = e.Close()
			out.Reset()
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
