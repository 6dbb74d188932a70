package router

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/grpc"

	"github.com/tailsift/tailsift/internal/router/routertest"
)

// nopTraceService answers every Export without decoding it: the
// benchmarks below measure the router, not a gateway.
var nopTraceService = grpc.ServiceDesc{
	ServiceName: "opentelemetry.proto.collector.trace.v1.TraceService",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Export",
		Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			var m rawMessage
			if err := dec(&m); err != nil {
				return nil, err
			}
			return &outMessage{}, nil
		},
	}},
}

// startNopGateways serves n gateways, on one port of n loopback addresses
// 127.0.2.x, from one gRPC server, and returns their addresses.
func startNopGateways(b *testing.B, n int) []string {
	b.Helper()
	srv := grpc.NewServer(grpc.ForceServerCodecV2(rawCodec{}))
	srv.RegisterService(&nopTraceService, nil)
	b.Cleanup(srv.Stop)
	first, err := net.Listen("tcp", "127.0.2.1:0")
	require.NoError(b, err)
	_, port, err := net.SplitHostPort(first.Addr().String())
	require.NoError(b, err)
	addrs := []string{first.Addr().String()}
	go func() { _ = srv.Serve(first) }()
	for i := 2; i <= n; i++ {
		l, err := net.Listen("tcp", net.JoinHostPort(fmt.Sprintf("127.0.2.%d", i), port))
		require.NoError(b, err)
		addrs = append(addrs, l.Addr().String())
		go func() { _ = srv.Serve(l) }()
	}
	return addrs
}

// BenchmarkRouteBatched is Route with the router's batching (the exporter's
// defaults: 200 ms linger, 2048 spans, 3.5 MiB) over members=N gateways, for small
// requests of 4 traces of 3 spans, which touch at most 4 members each:
// what a request costs beyond its split (the batches' bookkeeping) as the
// member set grows.
//
// cpu-ns/op is the process's CPU per request, what the agent pays.
//
//	go test -run '^$' -bench RouteBatched -count 8 ./internal/router/ | benchstat -
func BenchmarkRouteBatched(b *testing.B) {
	for _, n := range []int{3, 128} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			addrs := startNopGateways(b, n)
			grpcCfg := configgrpc.NewDefaultClientConfig()
			grpcCfg.TLS.Insecure = true
			q := exporterhelper.NewDefaultQueueConfig()
			q.Batch = configoptional.Some(exporterhelper.BatchConfig{
				FlushTimeout: 200 * time.Millisecond, Sizer: exporterhelper.RequestSizerTypeItems, MinSize: 2048, MaxSize: 2048,
			})
			r := New(exportertest.NewNopSettings(component.MustNewType("tailsift")), Settings{
				GRPC:     grpcCfg,
				Failover: FailoverConfig{Attempts: 2, Backoff: 10 * time.Millisecond, ProbeInterval: time.Second},
				Timeout:  exporterhelper.NewDefaultTimeoutConfig(),
				Queue:    configoptional.Some(q),
				Retry:    configretry.NewDefaultBackOffConfig(),
				// The exporter's default max_request_bytes.
				MaxRequestBytes: 7 << 19,
			}, new(counts))
			r.Start(componenttest.NewNopHost())
			r.SetMembers(addrs)
			b.Cleanup(func() { require.NoError(b, r.Shutdown(context.Background())) })
			var w routertest.Workload
			bufs := make([][]byte, 256)
			for i := range bufs {
				var err error
				bufs[i], err = (&ptrace.ProtoMarshaler{}).MarshalTraces(w.Batch(4, 3))
				require.NoError(b, err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			cpu0, cpuOK := processCPU()
			i := 0
			for b.Loop() {
				if err := r.Route(ctx, bufs[i%len(bufs)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
			if cpu1, _ := processCPU(); cpuOK {
				// The process's CPU, the sends and the gateways' reads
				// included: on a loaded machine, steadier than wall time.
				b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
			}
		})
	}
}
