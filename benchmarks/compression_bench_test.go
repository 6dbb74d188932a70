package benchmarks

import (
	"bytes"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/grpc/encoding"
)

// BenchmarkAgentCompression is what zstd costs the agent per span, on the
// requests of the workload: the collector's gRPC zstd compressor (configgrpc,
// what both the tailsift and the load_balancing exporters use), and
// klauspost's EncodeAll on one long-lived encoder at the fastest and the
// default level, which a router bringing its own compressor could use.
// ratio is compressed/original bytes; cpu-ns/span is this process's CPU
// over the loop (wall time, ns/span, says little on a shared machine).
//
//	cd benchmarks && go test -run '^$' -bench AgentCompression -benchtime 20x -count 6 . | tee zstd.txt
func BenchmarkAgentCompression(b *testing.B) {
	w := recordWorkload(benchWorkloadConfig(6_000))
	var reqs [][]byte
	spans, size := 0, 0
	for _, td := range w.Copy() {
		buf, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
		require.NoError(b, err)
		reqs = append(reqs, buf)
		spans += td.SpanCount()
		size += len(buf)
	}
	report := func(b *testing.B, cpu0 time.Duration, out int) {
		cpu1, ok := processCPU()
		if ok {
			b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/float64(b.N*spans), "cpu-ns/span")
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*spans), "ns/span")
		b.ReportMetric(float64(out)/float64(b.N*size), "ratio")
		b.ReportMetric(0, "ns/op")
	}
	b.Run("zstd=configgrpc", func(b *testing.B) {
		c := encoding.GetCompressor("zstd")
		require.NotNil(b, c, "configgrpc registers zstd")
		b.ReportAllocs()
		b.SetBytes(int64(size))
		var buf bytes.Buffer
		out := 0
		cpu0, _ := processCPU()
		for b.Loop() {
			for _, r := range reqs {
				buf.Reset()
				wc, err := c.Compress(&buf)
				require.NoError(b, err)
				_, err = wc.Write(r)
				require.NoError(b, err)
				require.NoError(b, wc.Close())
				out += buf.Len()
			}
		}
		report(b, cpu0, out)
	})
	for _, lvl := range []zstd.EncoderLevel{zstd.SpeedFastest, zstd.SpeedDefault} {
		b.Run("zstd=encodeall-"+lvl.String(), func(b *testing.B) {
			enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(lvl), zstd.WithWindowSize(512*1024))
			require.NoError(b, err)
			b.ReportAllocs()
			b.SetBytes(int64(size))
			var dst []byte
			out := 0
			cpu0, _ := processCPU()
			for b.Loop() {
				for _, r := range reqs {
					dst = enc.EncodeAll(r, dst[:0])
					out += len(dst)
				}
			}
			report(b, cpu0, out)
			require.NoError(b, enc.Close())
		})
	}
}
