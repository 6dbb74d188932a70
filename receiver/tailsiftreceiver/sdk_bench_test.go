//go:build unix

package tailsiftreceiver

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/tailsift/tailsift/internal/clock"
	"github.com/tailsift/tailsift/internal/wire"
	wl "github.com/tailsift/tailsift/internal/workload"
	"github.com/tailsift/tailsift/receiver/tailsiftreceiver/internal/metadata"
)

// sdkCases are BenchmarkSDKGRPC's requests, SDK-shaped (one service's
// BatchSpanProcessor batch: one ResourceSpans, one scope, 4 attributes per
// span): at 10 000 spans/s, bench-e2e's SDK load (about 400 spans a
// request); at 1 000 spans/s, small batches (about 50); and those small
// batches four to a request, as an agent that concatenates them would send
// them (four resource and scope groups).
var sdkCases = []struct {
	rate   float64
	groups int // consecutive requests concatenated into one
}{{10000, 1}, {1000, 1}, {1000, 4}}

// sdkRequests caches each case's requests (freshRequests, off the Go
// heap) across its sub-benchmarks and -count rounds: every impl gets the
// same requests, a CPU profile holds the requests' cost, not the
// generator's, and the GC paces on the servers' own heap, as in a
// collector, not on hundreds of MB of requests.
var sdkRequests sync.Map // "rate/groups" → *wl.Recording

func sdkRecording(b *testing.B, rate float64, groups int) *wl.Recording {
	key := fmt.Sprintf("%.0f/%d", rate, groups)
	if v, ok := sdkRequests.Load(key); ok {
		return v.(*wl.Recording)
	}
	rec := recordShape(b, wl.ShapeSDK, rate)
	if groups > 1 {
		joined := &wl.Recording{}
		for i := 0; i+groups <= len(rec.Requests); i += groups {
			var req []byte
			n := 0
			for _, r := range rec.Requests[i : i+groups] {
				// Repeated field 1 of ExportTraceServiceRequest: the
				// concatenation of encoded requests is their union.
				req = append(req, r...)
			}
			for _, s := range rec.Spans[i : i+groups] {
				n += s
			}
			joined.Requests = append(joined.Requests, req)
			joined.Spans = append(joined.Spans, n)
		}
		rec = joined
	}
	rec = offHeap(b, freshRequests(b, rec))
	sdkRequests.Store(key, rec)
	runtime.GC()
	return rec
}

// offHeap copies rec's requests into one anonymous mapping, never unmapped
// (the cache keeps them for the process's life).
func offHeap(b *testing.B, rec *wl.Recording) *wl.Recording {
	n := 0
	for _, r := range rec.Requests {
		n += len(r)
	}
	mem, err := syscall.Mmap(-1, 0, max(n, 1), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		b.Fatal(err)
	}
	out := &wl.Recording{Spans: rec.Spans, Requests: make([][]byte, len(rec.Requests))}
	for i, r := range rec.Requests {
		out.Requests[i] = mem[:len(r):len(r)]
		copy(mem, r)
		mem = mem[len(r):]
	}
	return out
}

// benchTelemetry is the collector's own telemetry as a collector with the
// default service::telemetry has it: a real metrics SDK (read by nobody
// here, as by a Prometheus endpoint between scrapes), no tracing.
func benchTelemetry(b *testing.B) component.TelemetrySettings {
	set := componenttest.NewNopTelemetrySettings()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	set.MeterProvider = mp
	return set
}

// BenchmarkSDKGRPC feeds SDK-shaped requests over loopback gRPC, one at a
// time, to three servers in turn, in one run:
//
//   - impl=tailsift: the fast path (the tailsift receiver, shards shards,
//     the benchmark's quiet 100 ms / max_wait 500 ms, a counting consumer;
//     Shutdown at the end decides what is still buffered);
//   - impl=otlp-nop: the upstream otlp receiver into a nop consumer (the
//     baseline of #13's "< 1× otlp → nop");
//   - impl=null: a gRPC server, configured by configgrpc as both others
//     are, whose Export handler takes the request's bytes and answers
//     empty. It is the client's and gRPC's transport share of the other
//     two; cpu-ns/span minus null's is what a receiver does with a request;
//   - impl=tailsift-direct and impl=otlp-nop-direct: the same without gRPC
//     (BenchmarkExportDirect's two: the fast path's Export handler, and a
//     ptraceotlp decode into a nop consumer).
//
// Both receivers get a real metrics SDK (their obsreport and self-metrics
// run as in a collector). cpu-ns/span is the process's CPU (getrusage) per
// span; allocs/op and B/op are per request. Compare, interleaved:
//
//	go test -c -o recv.test ./receiver/tailsiftreceiver/
//	./recv.test -test.run '^$' -test.bench SDKGRPC -test.benchtime 1500x -test.cpu 1 -test.count 6 | tee out.txt
//	benchstat -col /impl out.txt
func BenchmarkSDKGRPC(b *testing.B) {
	ctx := context.Background()
	for _, c := range sdkCases {
		for _, shards := range []int{1, 2} {
			for _, impl := range []string{"tailsift", "otlp-nop", "null", "tailsift-direct", "otlp-nop-direct"} {
				if shards > 1 && impl != "tailsift" && impl != "tailsift-direct" {
					continue
				}
				name := fmt.Sprintf("rate=%.0f,groups=%d,shards=%d/impl=%s", c.rate, c.groups, shards, impl)
				b.Run(name, func(b *testing.B) {
					all := sdkRecording(b, c.rate, c.groups)
					switch impl {
					case "tailsift":
						r, conn, kept := startSDKBenchReceiver(b, shards)
						rec := warm(b, all, func(req []byte) error { _, err := export(ctx, conn, req); return err })
						replay(b, conn, rec, shutdownKept(b, r, kept))
					case "otlp-nop":
						conn := startOTLPNop(b)
						rec := warm(b, all, func(req []byte) error { _, err := export(ctx, conn, req); return err })
						replay(b, conn, rec, func(int) {})
					case "null":
						conn := startNullServer(b)
						rec := warm(b, all, func(req []byte) error { _, err := export(ctx, conn, req); return err })
						replay(b, conn, rec, func(int) {})
					case "tailsift-direct":
						r, _, kept := startSDKBenchReceiver(b, shards)
						exp := func(req []byte) error {
							for { // a refusal (queue full) is retried, as a client would
								_, err := r.exportGRPC(ctx, req, nil)
								if status.Code(err) != codes.Unavailable {
									return err
								}
								time.Sleep(100 * time.Microsecond)
							}
						}
						rec := warm(b, all, exp)
						replayDirect(b, rec, exp, shutdownKept(b, r, kept))
					case "otlp-nop-direct":
						next := consumertest.NewNop()
						exp := func(req []byte) error {
							er := ptraceotlp.NewExportRequest()
							if err := er.UnmarshalProto(req); err != nil {
								return err
							}
							return next.ConsumeTraces(ctx, er.Traces())
						}
						rec := warm(b, all, exp)
						replayDirect(b, rec, exp, func(int) {})
					}
				})
			}
		}
	}
}

// warmRequests is how many requests warm a server up before it is
// measured: the tailsift receiver's arena is then mapped and touched, as in
// a collector that has run for a while, and gRPC's and the runtime's pools
// are filled, for every impl alike. loopRequests is how many requests the
// measured loop has before it repeats one (run with -benchtime ≤ 2000x):
// a repeated trace ID would meet its own decision, which costs less.
const (
	warmRequests = 500
	loopRequests = 2000
)

// freshRequests is warmRequests + loopRequests of rec's requests, in order,
// each pass after the first over rec a copy whose trace IDs differ from the
// earlier passes' (the pass number mixed into their first 4 bytes), so that
// no trace repeats. The first warmRequests are for
// warm.
func freshRequests(b *testing.B, rec *wl.Recording) *wl.Recording {
	out := &wl.Recording{}
	var batch wire.Batch
	for i := 0; len(out.Requests) < warmRequests+loopRequests; i++ {
		j, pass := i%len(rec.Requests), uint32(i/len(rec.Requests))
		req := rec.Requests[j]
		if pass > 0 {
			req = bytes.Clone(req)
			batch.Reset()
			if err := wire.Scan(req, &batch); err != nil {
				b.Fatal(err)
			}
			for k := range batch.Spans {
				raw := batch.Spans[k].Raw // aliases req
				// The generator writes trace_id first (field 1, 16 bytes).
				if len(raw) < 18 || raw[0] != 0x0a || raw[1] != 16 {
					b.Fatalf("request %d, span %d: trace_id is not the first field", j, k)
				}
				binary.LittleEndian.PutUint32(raw[2:], binary.LittleEndian.Uint32(raw[2:])^pass*0x9e3779b9)
			}
		}
		out.Requests = append(out.Requests, req)
		out.Spans = append(out.Spans, rec.Spans[j])
	}
	return out
}

// warm sends the first warmRequests of reqs (freshRequests) to export and
// returns the rest, for the measured loop.
func warm(b *testing.B, reqs *wl.Recording, export func([]byte) error) *wl.Recording {
	for _, req := range reqs.Requests[:warmRequests] {
		if err := export(req); err != nil {
			b.Fatal(err)
		}
	}
	return &wl.Recording{Requests: reqs.Requests[warmRequests:], Spans: reqs.Spans[warmRequests:]}
}

// startSDKBenchReceiver is startBenchReceiver with benchTelemetry.
func startSDKBenchReceiver(b *testing.B, shards int) (*tailsiftReceiver, *grpc.ClientConn, *atomic.Int64) {
	cfg := testConfig()
	cfg.Protocols.HTTP = configoptional.None[HTTPConfig]()
	cfg.Shards = shards
	cfg.Completion.Quiet, cfg.Completion.MaxWait = 100*time.Millisecond, 500*time.Millisecond
	set := receivertest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = benchTelemetry(b)
	kept := new(atomic.Int64)
	next, err := consumer.NewTraces(func(_ context.Context, td ptrace.Traces) error {
		kept.Add(int64(td.SpanCount()))
		return nil
	})
	require.NoError(b, err)
	r, err := newTestReceiver(set, cfg, next, clock.Real{})
	require.NoError(b, err)
	require.NoError(b, r.Start(context.Background(), componenttest.NewNopHost()))
	b.Cleanup(func() { require.NoError(b, r.Shutdown(context.Background())) })
	return r, dial(b, r.grpcAddr.String()), kept
}

// startOTLPNop is startOTLPBaseline with benchTelemetry.
func startOTLPNop(b *testing.B) *grpc.ClientConn {
	addr := freeAddr(b)
	f := otlpreceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*otlpreceiver.Config)
	g := configgrpc.NewDefaultServerConfig()
	g.NetAddr.Endpoint = addr
	cfg.Protocols.GRPC = configoptional.Some(g)
	cfg.Protocols.HTTP = configoptional.None[otlpreceiver.HTTPConfig]()
	set := receivertest.NewNopSettings(f.Type())
	set.TelemetrySettings = benchTelemetry(b)
	r, err := f.CreateTraces(context.Background(), set, cfg, consumertest.NewNop())
	require.NoError(b, err)
	require.NoError(b, r.Start(context.Background(), componenttest.NewNopHost()))
	b.Cleanup(func() { require.NoError(b, r.Shutdown(context.Background())) })
	return dial(b, addr)
}

// nullExporter answers every Export call empty.
type nullExporter struct{ info *grpc.UnaryServerInfo }

func (n *nullExporter) exportGRPC(_ context.Context, _ []byte, free func()) ([]byte, error) {
	if free != nil {
		free()
	}
	return nil, nil
}

func (n *nullExporter) unaryInfo() *grpc.UnaryServerInfo { return n.info }

// enter admits every call: a null server never shuts down its gate.
func (n *nullExporter) enter() bool { return true }

func (n *nullExporter) leave() {}

var _ exporter = (*nullExporter)(nil)

// startNullServer starts a configgrpc server (default settings) with the
// receiver's server options (codec, pool, windows) whose Export does
// nothing.
func startNullServer(b *testing.B) *grpc.ClientConn {
	g := configgrpc.NewDefaultServerConfig()
	g.NetAddr.Endpoint = "127.0.0.1:0"
	pool := new(recvPool)
	srv, err := g.ToServer(context.Background(), nil, benchTelemetry(b), grpcServerOptions(pool)...)
	require.NoError(b, err)
	n := &nullExporter{}
	n.info = &grpc.UnaryServerInfo{Server: n, FullMethod: exportMethod}
	srv.RegisterService(&traceServiceDesc, n)
	ln, err := g.NetAddr.Listen(context.Background())
	require.NoError(b, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	b.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return dial(b, ln.Addr().String())
}

func freeAddr(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	addr := ln.Addr().String()
	require.NoError(b, ln.Close())
	return addr
}

func dial(b *testing.B, addr string) *grpc.ClientConn {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(b, err)
	b.Cleanup(func() { _ = conn.Close() })
	// The first call connects: not a request's cost.
	_, err = export(context.Background(), conn, nil)
	require.NoError(b, err)
	runtime.GC()
	return conn
}
