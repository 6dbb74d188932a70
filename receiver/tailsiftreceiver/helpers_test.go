package tailsiftreceiver

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/tailsift/tailsift/internal/clock"
	"github.com/tailsift/tailsift/internal/tracebuf/tracebuftest"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tailsift/tailsift/internal/clock/clocktest"
	"github.com/tailsift/tailsift/receiver/tailsiftreceiver/internal/metadata"
	"github.com/tailsift/tailsift/sampling"
)

var t0 = tracebuftest.T0

// testConfig serves both protocols on free loopback ports.
func testConfig() *Config {
	cfg := createDefaultConfig().(*Config)
	g := configgrpc.NewDefaultServerConfig()
	g.NetAddr.Endpoint = "127.0.0.1:0"
	h := confighttp.NewDefaultServerConfig()
	h.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.Protocols.GRPC = configoptional.Some(g)
	cfg.Protocols.HTTP = configoptional.Some(HTTPConfig{ServerConfig: h, TracesURLPath: defaultTracesURLPath})
	cfg.Shards = 2
	cfg.Policies = []sampling.PolicyConfig{
		sampling.NewPolicyConfig("errors", "status_code", &sampling.StatusCodeConfig{StatusCodes: []string{"ERROR"}}),
		sampling.NewPolicyConfig("slow", "latency", &sampling.LatencyConfig{ThresholdMs: 1000}),
	}
	return cfg
}

// rig is a started receiver on a fake clock with real servers, a sink and
// telemetry, and clients for both transports.
type rig struct {
	t    *testing.T
	r    *tailsiftReceiver
	clk  *clocktest.Fake
	sink *consumertest.TracesSink
	tel  *componenttest.Telemetry
	conn *grpc.ClientConn
	http *http.Client
	url  string
}

func newRig(t *testing.T, cfg *Config, next consumer.Traces) *rig {
	t.Helper()
	return newRigWith(t, cfg, next, nil)
}

// newRigWith is newRig that calls prepare, when not nil, with the receiver
// before it starts.
func newRigWith(t *testing.T, cfg *Config, next consumer.Traces, prepare func(*tailsiftReceiver)) *rig {
	t.Helper()
	require.NoError(t, cfg.Validate())
	env := tracebuftest.NewEnv(next)
	set := receivertest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = env.Tel.NewTelemetrySettings()
	r, err := newTestReceiver(set, cfg, env.Next, env.Clock)
	require.NoError(t, err)
	if prepare != nil {
		prepare(r)
	}
	env.Start(t, r)
	g := &rig{t: t, r: r, clk: env.Clock, sink: env.Sink, tel: env.Tel}
	g.attachClients()
	return g
}

// newClientRig returns a rig with clients for a receiver started elsewhere.
func newClientRig(t *testing.T, r *tailsiftReceiver) *rig {
	g := &rig{t: t, r: r}
	g.attachClients()
	return g
}

func (g *rig) attachClients() {
	var err error
	if g.r.grpcAddr != nil {
		g.conn, err = grpc.NewClient(g.r.grpcAddr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(g.t, err)
	}
	if g.r.httpAddr != nil {
		g.http = &http.Client{Transport: &http.Transport{}, Timeout: 30 * time.Second}
		g.url = "http://" + g.r.httpAddr.String() + defaultTracesURLPath
	}
	g.t.Cleanup(g.close)
}

// close closes the clients' connections.
func (g *rig) close() {
	if g.conn != nil {
		_ = g.conn.Close()
	}
	if g.http != nil {
		g.http.CloseIdleConnections()
	}
}

// grpcExport sends raw request bytes as a TraceService/Export call and
// returns the raw response bytes.
func (g *rig) grpcExport(ctx context.Context, body []byte, opts ...grpc.CallOption) ([]byte, error) {
	out := new(rawMessage)
	opts = append(opts, grpc.ForceCodecV2(newRawCodec(new(recvPool))))
	err := g.conn.Invoke(ctx, exportMethod, &rawMessage{b: body}, out, opts...)
	return out.b, err
}

// httpExport posts body and returns the response and its body.
func (g *rig) httpExport(body []byte, contentType string, header ...string) (*http.Response, []byte) {
	g.t.Helper()
	req, err := http.NewRequest(http.MethodPost, g.url, bytes.NewReader(body))
	require.NoError(g.t, err)
	req.Header.Set("Content-Type", contentType)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := g.http.Do(req)
	require.NoError(g.t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(g.t, err)
	return resp, b
}

// sendGRPC exports td over gRPC and requires a full success.
func (g *rig) sendGRPC(td ptrace.Traces) {
	g.t.Helper()
	resp, err := g.grpcExport(context.Background(), marshal(g.t, td))
	require.NoError(g.t, err)
	require.Empty(g.t, resp, "full success is an empty response")
}

// advance waits until the shards have taken in what was sent, moves the
// clock and waits until the shards have acted on it.
func (g *rig) advance(d time.Duration) {
	g.t.Helper()
	// Spans still queued would be stamped with the advanced clock.
	require.NoError(g.t, g.r.buf.Sync(context.Background()))
	g.clk.Advance(d)
	require.NoError(g.t, g.r.buf.Sync(context.Background()))
}

func (g *rig) metric(name string, attrs ...attribute.KeyValue) int64 {
	g.t.Helper()
	return metricValue(g.t, g.tel, name, attrs...)
}

// metricValue sums the int64 sum data points of a metric that carry attrs.
func metricValue(t *testing.T, tel *componenttest.Telemetry, name string, attrs ...attribute.KeyValue) int64 {
	t.Helper()
	m, err := tel.GetMetric(name)
	if err != nil {
		return 0
	}
	var total int64
	if sum, ok := m.Data.(metricdata.Sum[int64]); ok {
		for _, dp := range sum.DataPoints {
			match := true
			for _, kv := range attrs {
				if v, ok := dp.Attributes.Value(kv.Key); !ok || v != kv.Value {
					match = false
				}
			}
			if match {
				total += dp.Value
			}
		}
	}
	return total
}

func marshal(t testing.TB, td ptrace.Traces) []byte {
	t.Helper()
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	require.NoError(t, err)
	return b
}

type spanSpec = tracebuftest.Span

var (
	traceID = tracebuftest.TraceID
	spanID  = tracebuftest.SpanID
	batch   = tracebuftest.Batch
)

// errorTrace is trace n with an error on a non-root span.
func errorTrace(n uint64) []spanSpec {
	return []spanSpec{
		{Trace: n, Span: 2, Parent: 1},
		{Trace: n, Span: 3, Parent: 2, Status: ptrace.StatusCodeError},
		{Trace: n, Span: 1},
	}
}

// keptSpan is how kept spans are compared: identity, tracestate and
// attributes, with the resource's service name.
type keptSpan struct {
	trace   pcommon.TraceID
	span    pcommon.SpanID
	ts      string
	attrs   string
	service string
}

// keptSet returns every span in tds, as a sorted list (duplicates kept).
func keptSet(tds []ptrace.Traces) []keptSpan {
	var out []keptSpan
	for _, td := range tds {
		for i := 0; i < td.ResourceSpans().Len(); i++ {
			rs := td.ResourceSpans().At(i)
			svc, _ := rs.Resource().Attributes().Get("service.name")
			for j := 0; j < rs.ScopeSpans().Len(); j++ {
				ss := rs.ScopeSpans().At(j).Spans()
				for k := 0; k < ss.Len(); k++ {
					sp := ss.At(k)
					out = append(out, keptSpan{
						trace:   sp.TraceID(),
						span:    sp.SpanID(),
						ts:      sp.TraceState().AsRaw(),
						attrs:   fmt.Sprint(sortedAttrs(sp.Attributes())),
						service: svc.AsString(),
					})
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if c := bytes.Compare(a.trace[:], b.trace[:]); c != 0 {
			return c < 0
		}
		return bytes.Compare(a.span[:], b.span[:]) < 0
	})
	return out
}

func sortedAttrs(m pcommon.Map) []string {
	var kv []string
	for k, v := range m.All() {
		kv = append(kv, k+"="+v.AsString())
	}
	sort.Strings(kv)
	return kv
}

// spansOf returns the kept spans of trace n, by span number.
func (g *rig) spansOf(n uint64) map[uint64]ptrace.Span {
	return tracebuftest.SpansOf(g.sink.AllTraces(), traceID(n))
}

// newTestReceiver is a receiver of a traces pipeline ending in next.
func newTestReceiver(set receiver.Settings, cfg *Config, next consumer.Traces, clk clock.Clock) (*tailsiftReceiver, error) {
	r, err := newReceiver(set, cfg, clk)
	if err == nil {
		r.nextTraces = next
	}
	return r, err
}
