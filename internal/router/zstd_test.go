package router

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configcompression"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/grpc/encoding"

	"github.com/tailsift/tailsift/internal/router/routertest"
)

// TestFastZstdRoundTrip: what fastZstd writes, the registered zstd (what a
// gateway decodes with) reads back, for messages of several sizes.
func TestFastZstdRoundTrip(t *testing.T) {
	var w routertest.Workload
	dec := encoding.GetCompressor(zstdName)
	require.NotNil(t, dec, "configgrpc registers zstd")
	for _, traces := range []int{0, 1, 50, 2000} {
		var msg []byte
		if traces > 0 {
			var err error
			msg, err = (&ptrace.ProtoMarshaler{}).MarshalTraces(w.Batch(traces, 5))
			require.NoError(t, err)
		}
		var out bytes.Buffer
		require.NoError(t, fastZstd{}.Do(&out, msg))
		if traces >= 50 {
			assert.Less(t, out.Len(), len(msg)/2, "compressed")
		}
		r, err := dec.Decompress(&out)
		require.NoError(t, err)
		got, err := io.ReadAll(r)
		require.NoError(t, err)
		assert.Equal(t, len(msg), len(got))
		assert.True(t, bytes.Equal(msg, got))
	}
	assert.Equal(t, "zstd", fastZstd{}.Type())
}

// TestRouteZstd: with compression zstd, members get every span (through
// fastZstd and the gateway's registered zstd).
func TestRouteZstd(t *testing.T) {
	gw, addrs := routertest.StartGateways(t, "127.0.0.77", "127.0.0.78")
	r := newRouterWith(t, addrs, func(s *Settings) {
		batching(20*time.Millisecond, 1<<30)(s)
		s.GRPC.Compression = configcompression.TypeZstd
	})
	sent := routeBatches(t, r, 10)
	require.NoError(t, r.Shutdown(context.Background()))
	requireDeliveredOnce(t, gw, sent)
}

// BenchmarkFastZstdOptions compares fastZstd's encoder settings with the
// settings it had before (previous: no option beyond the level and window)
// and with the options that could make it cheaper, on a batch of the size a
// member's queue sends (about 750 spans): CPU per message and the
// compressed size.
//
//	go test -run '^$' -bench FastZstdOptions -benchtime 2000x -count 6 ./internal/router/ | tee zstd.txt
//	(cd benchmarks && go tool benchstat -col /.name ../zstd.txt)
func BenchmarkFastZstdOptions(b *testing.B) {
	var w routertest.Workload
	msg, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(w.Batch(150, 5))
	require.NoError(b, err)
	previous := []zstd.EOption{zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithWindowSize(512 << 10)}
	for _, c := range []struct {
		name string
		opts []zstd.EOption
	}{
		{"current", fastZstdOptions},
		{"previous", previous},
		{"previous+crc-off", append(previous[:len(previous):len(previous)], zstd.WithEncoderCRC(false))},
		{"previous+no-entropy", append(previous[:len(previous):len(previous)], zstd.WithNoEntropyCompression(true))},
		{"current+concurrency-1", append(fastZstdOptions[:len(fastZstdOptions):len(fastZstdOptions)], zstd.WithEncoderConcurrency(1))},
		{"current+lower-mem", append(fastZstdOptions[:len(fastZstdOptions):len(fastZstdOptions)], zstd.WithLowerEncoderMem(true))},
	} {
		b.Run(c.name, func(b *testing.B) {
			enc, err := zstd.NewWriter(nil, c.opts...)
			require.NoError(b, err)
			var out []byte
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				out = enc.EncodeAll(msg, out[:0])
			}
			b.ReportMetric(float64(len(out))/float64(len(msg)), "ratio")
		})
	}
}
