package benchmarks

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	lb "github.com/open-telemetry/opentelemetry-collector-contrib/exporter/loadbalancingexporter"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"

	"github.com/tailsift/tailsift/exporter/tailsiftexporter"
)

// BenchmarkAgentExporter is the agent tier's cost per span with the tailsift
// exporter and with contrib's load_balancing exporter (routing_key traceID),
// routing the same pdata batches to the same three gateways: OTLP gRPC
// servers in a child process that read each request's bytes and answer
// without decoding. Both exporters send synchronously (no sending queue).
// cpu-ns/span, the figure that counts, is this process's user+system CPU over
// the loop divided by the spans sent: the agent's routing, encoding,
// compression and gRPC client, and nothing of the gateways. ns/span is wall
// time, which on a shared machine says little.
//
//	cd benchmarks && go test -run '^$' -bench AgentExporter -count 6 -timeout 30m . | tee exporter.txt
//	benchstat -col /exporter exporter.txt
func BenchmarkAgentExporter(b *testing.B) {
	// A small live heap: GC scans of the workload would weigh on both.
	w := recordWorkload(benchWorkloadConfig(6_000))
	batches := w.Copy()
	for _, td := range batches {
		td.MarkReadOnly()
	}
	addrs := startGatewayProcess(b, 3)

	for _, compression := range []string{"zstd", "gzip", "none"} {
		for _, name := range []string{"tailsift", "loadbalancing"} {
			b.Run(fmt.Sprintf("compression=%s/exporter=%s", compression, name), func(b *testing.B) {
				exp := newAgentExporter(b, name, compression, addrs)
				ctx := context.Background()
				// Warm the connections up.
				require.NoError(b, exp.ConsumeTraces(ctx, batches[0]))
				b.ReportAllocs()
				b.SetBytes(w.AvgBatchWireBytes())
				cpu0, cpuOK := processCPU()
				start := time.Now()
				spans, i := 0, 0
				for b.Loop() {
					td := batches[i%len(batches)]
					if err := exp.ConsumeTraces(ctx, td); err != nil {
						b.Fatal(err)
					}
					spans += w.Spans[i%len(batches)]
					i++
				}
				elapsed := time.Since(start)
				cpu1, _ := processCPU()
				b.ReportMetric(float64(elapsed.Nanoseconds())/float64(spans), "ns/span")
				if cpuOK {
					b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/float64(spans), "cpu-ns/span")
				}
				b.ReportMetric(0, "ns/op") // per batch is not comparable across workloads; ns/span is
				require.NoError(b, exp.Shutdown(ctx))
			})
		}
	}
}

func newAgentExporter(b *testing.B, name, compression string, addrs []string) exporter.Traces {
	b.Helper()
	var f exporter.Factory
	var conf map[string]any
	grpcCfg := map[string]any{"tls": map[string]any{"insecure": true}, "compression": compression}
	hosts := make([]any, len(addrs))
	for i, a := range addrs {
		hosts[i] = a
	}
	switch name {
	case "tailsift":
		f = tailsiftexporter.NewFactory()
		conf = map[string]any{
			"members":       map[string]any{"static": hosts},
			"grpc":          grpcCfg,
			"sending_queue": map[string]any{"enabled": false},
		}
	case "loadbalancing":
		f = lb.NewFactory()
		otlp := map[string]any{"sending_queue": map[string]any{"enabled": false}}
		for k, v := range grpcCfg {
			otlp[k] = v
		}
		conf = map[string]any{
			"routing_key": "traceID",
			"resolver":    map[string]any{"static": map[string]any{"hostnames": hosts}},
			"protocol":    map[string]any{"otlp": otlp},
		}
	}
	cfg := f.CreateDefaultConfig()
	require.NoError(b, confmap.NewFromStringMap(conf).Unmarshal(cfg))
	require.NoError(b, confmap.Validate(cfg))
	exp, err := f.CreateTraces(context.Background(), exportertest.NewNopSettings(f.Type()), cfg)
	require.NoError(b, err)
	require.NoError(b, exp.Start(context.Background(), componenttest.NewNopHost()))
	return exp
}

// rawBytes is a message kept as its encoding.
type rawBytes struct{ data []byte }

// rawServerCodec reads requests without decoding them.
type rawServerCodec struct{}

func (rawServerCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.(*rawBytes).data)}, nil
}

func (rawServerCodec) Unmarshal(data mem.BufferSlice, v any) error {
	v.(*rawBytes).data = data.Materialize()
	return nil
}

func (rawServerCodec) Name() string { return "proto" }

var nopTraceService = grpc.ServiceDesc{
	ServiceName: "opentelemetry.proto.collector.trace.v1.TraceService",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Export",
		Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			var in rawBytes
			if err := dec(&in); err != nil {
				return nil, err
			}
			return &rawBytes{}, nil
		},
	}},
}

// gatewayProcessEnv makes TestNopGatewayProcess serve: the benchmark runs
// its own test binary as the gateways' process, so that their CPU is not
// counted as the agent's.
const gatewayProcessEnv = "TAILSIFT_NOP_GATEWAYS"

// startGatewayProcess starts n nop gateways in a child process and returns
// their addresses; the child exits when the benchmark ends.
func startGatewayProcess(b *testing.B, n int) []string {
	b.Helper()
	_, out, addrs := startGatewayChild(b, "TestNopGatewayProcess", gatewayProcessEnv, n)
	go func() {
		for out.Scan() {
		}
	}()
	return addrs
}

// startGatewayChild runs test of this test binary as a child process with
// env=n, which serves n gateways and prints "gateway <addr>" for each. It
// returns the child's standard input (the child serves until it closes,
// when the test ends), its output after the addresses, and the addresses.
func startGatewayChild(tb testing.TB, test, env string, n int) (io.Writer, *bufio.Scanner, []string) {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", env, n))
	stdin, err := cmd.StdinPipe()
	require.NoError(tb, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(tb, err)
	require.NoError(tb, cmd.Start())
	tb.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	})
	var addrs []string
	sc := bufio.NewScanner(stdout)
	for len(addrs) < n && sc.Scan() {
		if addr, ok := strings.CutPrefix(sc.Text(), "gateway "); ok {
			addrs = append(addrs, addr)
		}
	}
	require.Len(tb, addrs, n, "the gateway process did not start")
	return stdin, sc, addrs
}

// TestNopGatewayProcess is the gateways' process of BenchmarkAgentExporter:
// it serves while its standard input is open. Run directly, it does nothing.
func TestNopGatewayProcess(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv(gatewayProcessEnv))
	if n == 0 {
		t.Skip("run by BenchmarkAgentExporter only")
	}
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		srv := grpc.NewServer(grpc.ForceServerCodecV2(rawServerCodec{}))
		srv.RegisterService(&nopTraceService, struct{}{})
		go func() { _ = srv.Serve(l) }()
		defer srv.Stop()
		fmt.Printf("gateway %s\n", l.Addr())
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
}
