package tailsiftreceiver

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/tailsift/tailsift/internal/clock"
	"github.com/tailsift/tailsift/internal/store/storetest"
	"github.com/tailsift/tailsift/internal/tracebuf/tracebuftest"
	wl "github.com/tailsift/tailsift/internal/workload"
	"github.com/tailsift/tailsift/receiver/tailsiftreceiver/internal/metadata"
)

// recordShape records 480 000 spans of a workload shape generated at rate
// spans/s (the rate shapes the batches: at 24 000 spans/s, about 1 500
// SDK-shaped traces/s as in the SDK run, the SDK's batches are
// mostly full; at 2 400 spans/s they are small).
func recordShape(b *testing.B, shape string, rate float64) *wl.Recording {
	cfg := wl.Config{Seed: 7, Rate: rate, Duration: time.Duration(480000 / rate * float64(time.Second)), Shape: shape, Templates: 300}
	cfg.SetMix(wl.Mix{Error: 2})
	rec, err := wl.Record(cfg, time.Now())
	require.NoError(b, err)
	return rec
}

// startBenchReceiver starts a gRPC-only receiver with shards shards on the
// real clock into a consumer that counts the kept spans, and returns it, a
// client connection to it and the count.
func startBenchReceiver(b *testing.B, shards int) (*tailsiftReceiver, *grpc.ClientConn, *atomic.Int64) {
	cfg := testConfig()
	cfg.Protocols.HTTP = configoptional.None[HTTPConfig]()
	cfg.Shards = shards
	// The replay runs many times faster than real time: decide soon, so
	// that the buffer holds about a second of it, not the default waits'.
	cfg.Completion.Quiet, cfg.Completion.MaxWait = 100*time.Millisecond, 500*time.Millisecond
	kept := new(atomic.Int64)
	next, err := consumer.NewTraces(func(_ context.Context, td ptrace.Traces) error {
		kept.Add(int64(td.SpanCount()))
		return nil
	})
	require.NoError(b, err)
	r, err := newTestReceiver(receivertest.NewNopSettings(metadata.Type), cfg, next, clock.Real{})
	require.NoError(b, err)
	require.NoError(b, r.Start(context.Background(), componenttest.NewNopHost()))
	b.Cleanup(func() { require.NoError(b, r.Shutdown(context.Background())) })
	conn, err := grpc.NewClient(r.grpcAddr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(b, err)
	b.Cleanup(func() { _ = conn.Close() })
	return r, conn, kept
}

// export sends one encoded ExportTraceServiceRequest, again after 100 µs
// while it is refused as overload (the closed loop then runs at the
// receiver's saturation throughput), and returns the number of refusals.
func export(ctx context.Context, conn *grpc.ClientConn, body []byte) (int, error) {
	for refused := 0; ; refused++ {
		out := new(rawMessage)
		err := conn.Invoke(ctx, exportMethod, &rawMessage{b: body}, out, grpc.ForceCodecV2(newRawCodec(new(recvPool))))
		if status.Code(err) != codes.Unavailable && status.Code(err) != codes.ResourceExhausted {
			return refused, err
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// ingestShapes are the requests BenchmarkIngestGRPC and
// BenchmarkOTLPBaselineGRPC replay: the benchmark workload's, and
// SDK-shaped ones at two rates.
var ingestShapes = []struct {
	shape string
	rate  float64
}{{wl.ShapeBench, 24000}, {wl.ShapeSDK, 24000}, {wl.ShapeSDK, 2400}}

// BenchmarkIngestGRPC is the fast path's receive cost per span and per
// request over loopback gRPC (client included: both run in this process),
// on the benchmark workload's requests and on SDK-shaped ones (one
// service's batch per request, one ResourceSpans, 4 attributes per span).
// The recording (480 000 spans) is replayed in order.
func BenchmarkIngestGRPC(b *testing.B) {
	for _, c := range ingestShapes {
		b.Run(fmt.Sprintf("shape=%s,rate=%.0f", c.shape, c.rate), func(b *testing.B) {
			rec := recordShape(b, c.shape, c.rate)
			r, conn, kept := startBenchReceiver(b, 1)
			// Shutdown decides and hands on what is still buffered: the
			// CPU figure then holds every span's whole cost.
			replay(b, conn, rec, shutdownKept(b, r, kept))
		})
	}
}

// BenchmarkOTLPBaselineGRPC is the bare pipeline on the same requests,
// sent the same way: the upstream otlp receiver's gRPC server, which
// decodes each request into pdata, into a nop consumer (otlp → nop, the
// floor the fast path is compared with). Run both in one process and
// compare their cpu-ns/span:
//
//	go test -run '^$' -bench 'IngestGRPC|OTLPBaselineGRPC' -cpu 2 ./receiver/tailsiftreceiver/
func BenchmarkOTLPBaselineGRPC(b *testing.B) {
	for _, c := range ingestShapes {
		b.Run(fmt.Sprintf("shape=%s,rate=%.0f", c.shape, c.rate), func(b *testing.B) {
			rec := recordShape(b, c.shape, c.rate)
			replay(b, startOTLPBaseline(b), rec, func(int) {})
		})
	}
}

// BenchmarkExportDirect is the servers' own work per span, without the
// transport and the client that BenchmarkIngestGRPC and
// BenchmarkOTLPBaselineGRPC share: impl=tailsift calls the fast path's
// Export handler (scan, shard, decisions and output of the kept traces,
// until Shutdown has decided the rest), impl=otlp-nop does what the otlp
// receiver's Export does with a request gRPC has read: decode it into pdata
// (ptraceotlp, as its codec does) and hand it to a nop consumer. Compare
// their cpu-ns/span.
func BenchmarkExportDirect(b *testing.B) {
	ctx := context.Background()
	for _, c := range ingestShapes {
		name := fmt.Sprintf("shape=%s,rate=%.0f", c.shape, c.rate)
		b.Run("impl=tailsift,"+name, func(b *testing.B) {
			rec := recordShape(b, c.shape, c.rate)
			r, _, kept := startBenchReceiver(b, 1)
			replayDirect(b, rec, func(req []byte) error {
				for { // a refusal (queue full) is retried, as a client would
					_, err := r.exportGRPC(ctx, req, nil)
					if status.Code(err) != codes.Unavailable {
						return err
					}
					time.Sleep(100 * time.Microsecond)
				}
			}, shutdownKept(b, r, kept))
		})
		b.Run("impl=otlp-nop,"+name, func(b *testing.B) {
			rec := recordShape(b, c.shape, c.rate)
			next := consumertest.NewNop()
			replayDirect(b, rec, func(req []byte) error {
				er := ptraceotlp.NewExportRequest()
				if err := er.UnmarshalProto(req); err != nil {
					return err
				}
				return next.ConsumeTraces(ctx, er.Traces())
			}, func(int) {})
		})
	}
}

// replayDirect hands rec's requests to export, in order, then calls
// finish, and reports cpu-ns/span (process CPU), ns/span (wall) and
// faults/span (minor page faults).
func replayDirect(b *testing.B, rec *wl.Recording, export func([]byte) error, finish func(spans int)) {
	var spans int
	b.ReportAllocs()
	runtime.GC()
	cpu0, faults0 := storetest.CPU(), tracebuftest.MinorFaults()
	for i := 0; b.Loop(); i++ {
		j := i % len(rec.Requests)
		if err := export(rec.Requests[j]); err != nil {
			b.Fatal(err)
		}
		spans += rec.Spans[j]
	}
	finish(spans)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(spans), "ns/span")
	b.ReportMetric(float64(storetest.CPU()-cpu0)/float64(spans), "cpu-ns/span")
	b.ReportMetric(float64(tracebuftest.MinorFaults()-faults0)/float64(spans), "faults/span")
}

// shutdownKept is the fast path's finish: Shutdown decides what is still
// buffered and hands on what it keeps, then kept-share, the share of the
// spans sent that went on to the next consumer, is reported.
func shutdownKept(b *testing.B, r *tailsiftReceiver, kept *atomic.Int64) func(spans int) {
	return func(spans int) {
		require.NoError(b, r.Shutdown(context.Background()))
		b.ReportMetric(float64(kept.Load())/float64(spans), "kept-share")
	}
}

// startOTLPBaseline starts an otlp receiver (gRPC only, default settings)
// into a nop consumer and returns a client connection to it.
func startOTLPBaseline(b *testing.B) *grpc.ClientConn {
	// The otlp receiver does not say where it listens: take a free port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	addr := ln.Addr().String()
	require.NoError(b, ln.Close())
	f := otlpreceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*otlpreceiver.Config)
	g := configgrpc.NewDefaultServerConfig()
	g.NetAddr.Endpoint = addr
	cfg.Protocols.GRPC = configoptional.Some(g)
	cfg.Protocols.HTTP = configoptional.None[otlpreceiver.HTTPConfig]()
	r, err := f.CreateTraces(context.Background(), receivertest.NewNopSettings(f.Type()), cfg, consumertest.NewNop())
	require.NoError(b, err)
	require.NoError(b, r.Start(context.Background(), componenttest.NewNopHost()))
	b.Cleanup(func() { require.NoError(b, r.Shutdown(context.Background())) })
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(b, err)
	b.Cleanup(func() { _ = conn.Close() })
	return conn
}

// replay sends rec's requests over conn, one at a time, in order, for as
// long as the benchmark runs, then calls finish, which ends the work the
// requests left behind. It reports ns/span (wall, of the loop),
// cpu-ns/span (the whole process's CPU: client, server and, up to finish,
// the shards; steadier than wall time on a shared machine), spans/req,
// bytes/req and refusals/req.
func replay(b *testing.B, conn *grpc.ClientConn, rec *wl.Recording, finish func(spans int)) {
	ctx := context.Background()
	var spans, bytes, refused int
	b.ReportAllocs()
	runtime.GC() // the recording's garbage is not the requests' cost
	cpu0 := storetest.CPU()
	for i := 0; b.Loop(); i++ {
		j := i % len(rec.Requests)
		n, err := export(ctx, conn, rec.Requests[j])
		if err != nil {
			b.Fatal(err)
		}
		refused += n
		spans += rec.Spans[j]
		bytes += len(rec.Requests[j])
	}
	finish(spans)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(spans), "ns/span")
	b.ReportMetric(float64(storetest.CPU()-cpu0)/float64(spans), "cpu-ns/span")
	b.ReportMetric(float64(spans)/float64(b.N), "spans/req")
	b.ReportMetric(float64(bytes)/float64(b.N), "bytes/req")
	b.ReportMetric(float64(refused)/float64(b.N), "refusals/req")
}
