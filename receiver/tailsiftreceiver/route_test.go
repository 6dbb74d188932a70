package tailsiftreceiver

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	collexporter "go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.yaml.in/yaml/v3"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tailsift/tailsift/exporter/tailsiftexporter"
	"github.com/tailsift/tailsift/internal/ring"
	"github.com/tailsift/tailsift/internal/router/routertest"
	"github.com/tailsift/tailsift/internal/wire"
	"github.com/tailsift/tailsift/receiver/tailsiftreceiver/internal/metadata"
)

// gotSpan is a span as a fake gateway received it: its encoded Span and
// Resource, byte for byte.
type gotSpan struct {
	gateway  string
	traceID  [16]byte
	raw      []byte
	resource []byte
}

// rawGateways are OTLP gRPC servers that record the bytes of every span they
// get, served with the receiver's own raw codec.
type rawGateways struct {
	t     *testing.T
	mu    sync.Mutex
	spans map[[8]byte][]gotSpan
	srvs  map[string]*grpc.Server
	hold  chan struct{} // when set, every Export waits for it to close
	reqs  [][]byte      // every request, as received
}

type rawGateway struct {
	g    *rawGateways
	addr string
	info *grpc.UnaryServerInfo
}

func startRawGateways(t *testing.T, n int) (*rawGateways, []string) {
	g := &rawGateways{t: t, spans: map[[8]byte][]gotSpan{}, srvs: map[string]*grpc.Server{}}
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := l.Addr().String()
		srv := grpc.NewServer(grpc.ForceServerCodecV2(newRawCodec(new(recvPool))))
		srv.RegisterService(&traceServiceDesc, &rawGateway{g: g, addr: addr, info: &grpc.UnaryServerInfo{FullMethod: exportMethod}})
		g.srvs[addr] = srv
		go func() { _ = srv.Serve(l) }()
		addrs = append(addrs, addr)
	}
	t.Cleanup(func() {
		for _, a := range addrs {
			g.stop(a)
		}
	})
	return g, addrs
}

func (g *rawGateways) stop(addr string) {
	g.mu.Lock()
	srv := g.srvs[addr]
	delete(g.srvs, addr)
	g.mu.Unlock()
	if srv != nil {
		srv.Stop()
	}
}

// traces decodes every request the gateways received.
func (g *rawGateways) traces(t *testing.T) []ptrace.Traces {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []ptrace.Traces
	for _, req := range g.reqs {
		r := ptraceotlp.NewExportRequest()
		require.NoError(t, r.UnmarshalProto(req))
		out = append(out, r.Traces())
	}
	return out
}

func (g *rawGateways) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.spans)
}

func (s *rawGateway) unaryInfo() *grpc.UnaryServerInfo { return s.info }

func (s *rawGateway) enter() bool { return true }

func (s *rawGateway) leave() {}

func (s *rawGateway) exportGRPC(_ context.Context, req []byte, free func()) ([]byte, error) {
	if s.g.hold != nil {
		<-s.g.hold
	}
	var b wire.Batch
	err := wire.Scan(req, &b)
	s.g.mu.Lock()
	defer s.g.mu.Unlock()
	s.g.reqs = append(s.g.reqs, bytes.Clone(req))
	for _, sp := range b.Spans {
		s.g.spans[sp.SpanID] = append(s.g.spans[sp.SpanID], gotSpan{
			gateway: s.addr, traceID: sp.TraceID,
			raw: bytes.Clone(sp.Raw), resource: bytes.Clone(b.Scopes[sp.Scope].Resource),
		})
	}
	if free != nil {
		free()
	}
	return nil, err
}

// agent is a tailsift exporter routing to gateways and a tailsift receiver
// in route mode feeding it, started as a collector starts them.
type agent struct {
	*rig
	exp    collexporter.Traces
	expTel *componenttest.Telemetry // the exporter's self-metrics
}

func routeConfig(id component.ID) *Config {
	cfg := testConfig()
	cfg.Route = configoptional.Some(RouteConfig{Exporter: id})
	return cfg
}

func startAgent(t *testing.T, members []string, tune func(*tailsiftexporter.Config)) *agent {
	t.Helper()
	id := component.MustNewIDWithName("tailsift", t.Name())
	exp, tel := startExporter(t, id, members, tune)
	cfg := routeConfig(id)
	require.NoError(t, confmap.Validate(cfg))
	rcv, err := NewFactory().CreateTraces(t.Context(), receivertest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop())
	require.NoError(t, err)
	require.NoError(t, rcv.Start(t.Context(), componenttest.NewNopHost()))
	// Registered after the exporter's: cleanups run last in, first out,
	// so the receiver stops first, as in a collector.
	t.Cleanup(func() { require.NoError(t, rcv.Shutdown(context.Background())) })
	return &agent{rig: newClientRig(t, rcv.(*tailsiftReceiver)), exp: exp, expTel: tel}
}

// startExporter starts a tailsift exporter id sending to members, as a
// collector starts it, with its self-metrics; it stops when the test ends.
func startExporter(t *testing.T, id component.ID, members []string, tune func(*tailsiftexporter.Config)) (collexporter.Traces, *componenttest.Telemetry) {
	t.Helper()
	ef := tailsiftexporter.NewFactory()
	ecfg := ef.CreateDefaultConfig().(*tailsiftexporter.Config)
	ecfg.Members.Static = members
	ecfg.GRPC.TLS.Insecure = true
	ecfg.Failover.Attempts, ecfg.Failover.Backoff, ecfg.Failover.ProbeInterval = 1, 10*time.Millisecond, 50*time.Millisecond
	if tune != nil {
		tune(ecfg)
	}
	require.NoError(t, confmap.Validate(ecfg))
	eset := exportertest.NewNopSettings(component.MustNewType("tailsift"))
	eset.ID = id
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	eset.TelemetrySettings = tel.NewTelemetrySettings()
	exp, err := ef.CreateTraces(t.Context(), eset, ecfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(t.Context(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, exp.Shutdown(context.Background())) })
	return exp, tel
}

// sentSpans scans buf and returns its spans by span ID.
func sentSpans(t *testing.T, buf []byte) map[[8]byte]gotSpan {
	var b wire.Batch
	require.NoError(t, wire.Scan(buf, &b))
	out := map[[8]byte]gotSpan{}
	for _, sp := range b.Spans {
		out[sp.SpanID] = gotSpan{traceID: sp.TraceID, raw: bytes.Clone(sp.Raw), resource: bytes.Clone(b.Scopes[sp.Scope].Resource)}
	}
	return out
}

// TestRouteModeDeliversEachSpanToItsOwner sends requests over gRPC and HTTP
// to an agent in route mode: every span reaches the gateway that owns its
// trace (or, for a down gateway, the next one up in hash order), once, with
// its bytes and its resource's bytes unchanged.
func TestRouteModeDeliversEachSpanToItsOwner(t *testing.T) {
	for _, tc := range []struct {
		name string
		down int // index of a gateway stopped before sending; -1 for none
	}{{"all up", -1}, {"one down", 1}} {
		t.Run(tc.name, func(t *testing.T) {
			gw, addrs := startRawGateways(t, 3)
			a := startAgent(t, addrs, nil)
			rg := ring.New(addrs)
			down := -1 // in ring order
			if tc.down >= 0 {
				gw.stop(addrs[tc.down])
				down = rg.Index(addrs[tc.down])
			}
			var w routertest.Workload
			sent := map[[8]byte]gotSpan{}
			for i := range 20 {
				buf := marshal(t, w.Batch(10, 4))
				for id, s := range sentSpans(t, buf) {
					sent[id] = s
				}
				if i%2 == 0 {
					_, err := a.grpcExport(t.Context(), buf)
					require.NoError(t, err)
				} else {
					resp, _ := a.httpExport(buf, pbContentType)
					require.Equal(t, http.StatusOK, resp.StatusCode)
				}
			}
			require.Eventually(t, func() bool { return gw.count() >= len(sent) }, 10*time.Second, 5*time.Millisecond)
			// The exporter's self-metrics count what route mode handed it,
			// as for pdata.
			routed := metricValue(t, a.expTel, "otelcol_exporter_tailsift_spans_routed")
			// Spans queued for the down member before it was marked down
			// fail over to the next member, counted routed once, where
			// they were first routed, and rerouted there.
			assert.Equal(t, int64(len(sent)), routed)
			if tc.down >= 0 {
				assert.Positive(t, metricValue(t, a.expTel, "otelcol_exporter_tailsift_spans_rerouted"))
			}
			gw.mu.Lock()
			defer gw.mu.Unlock()
			assert.Len(t, gw.spans, len(sent))
			for id, want := range sent {
				got := gw.spans[id]
				require.Len(t, got, 1, "span %x lost or duplicated", id)
				assert.Equal(t, want.raw, got[0].raw, "span %x changed", id)
				assert.Equal(t, want.resource, got[0].resource, "resource of span %x changed", id)
				h := ring.Hash(want.traceID)
				owner := rg.Owner(h)
				if owner == down {
					owner = rg.Next(h, func(m int) bool { return m == down })
				}
				assert.Equal(t, rg.Members()[owner], got[0].gateway, "span %x", id)
			}
		})
	}
}

// TestRouteModeRefusals: malformed input is INVALID_ARGUMENT (HTTP 400)
// and the agent keeps serving; a full sending queue is a retryable refusal
// (UNAVAILABLE with RetryInfo, HTTP 503 with Retry-After).
func TestRouteModeRefusals(t *testing.T) {
	gw, addrs := startRawGateways(t, 1)
	gw.hold = make(chan struct{})
	released := false
	release := func() {
		if !released {
			released = true
			close(gw.hold)
		}
	}
	t.Cleanup(release)
	a := startAgent(t, addrs, func(c *tailsiftexporter.Config) {
		q := c.Queue.Get()
		q.Sizer, q.QueueSize, q.NumConsumers = exporterhelper.RequestSizerTypeRequests, 1, 1
	})

	_, err := a.grpcExport(t.Context(), []byte{0x0a, 0x05, 0x01})
	assert.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	resp, _ := a.httpExport([]byte{0x0a, 0x05, 0x01}, pbContentType)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)

	// The gateway holds the first batch, the queue the second: a later
	// request is refused (once the router's batching has offered the queue
	// those two batches, one linger each).
	var w routertest.Workload
	var refused error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if _, refused = a.grpcExport(t.Context(), marshal(t, w.Batch(2, 2))); refused != nil {
			break
		}
	}
	require.Error(t, refused)
	st := status.Convert(refused)
	assert.Equal(t, codes.Unavailable, st.Code(), "%v", refused)
	assert.True(t, hasRetryInfo(st), "no RetryInfo in %v", st.Details())
	resp, _ = a.httpExport(marshal(t, w.Batch(2, 2)), pbContentType)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.NotEmpty(t, resp.Header.Get("Retry-After"))

	release()
	buf := marshal(t, w.Batch(2, 2))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		_, err := a.grpcExport(t.Context(), buf)
		assert.NoError(c, err)
	}, 10*time.Second, 10*time.Millisecond, "the agent serves again once the gateway drains its queue")
}

// TestRouteModeJSON: OTLP/JSON is converted to protobuf and routed too.
func TestRouteModeJSON(t *testing.T) {
	gw, addrs := startRawGateways(t, 2)
	a := startAgent(t, addrs, nil)
	var w routertest.Workload
	td := w.Batch(5, 3)
	body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalJSON()
	require.NoError(t, err)
	resp, _ := a.httpExport(body, jsonContentType)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Eventually(t, func() bool { return gw.count() == td.SpanCount() }, 10*time.Second, 5*time.Millisecond)
	resp, _ = a.httpExport([]byte(`{"resourceSpans": 7}`), jsonContentType)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
}

func hasRetryInfo(st *status.Status) bool {
	for _, d := range st.Details() {
		if _, ok := d.(*errdetails.RetryInfo); ok {
			return true
		}
	}
	return false
}

// TestRouteModeWithoutExporter: a receiver whose route::exporter did not
// start fails to start, naming the key.
func TestRouteModeWithoutExporter(t *testing.T) {
	cfg := routeConfig(component.MustNewIDWithName("tailsift", "absent"))
	rcv, err := NewFactory().CreateTraces(t.Context(), receivertest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop())
	require.NoError(t, err)
	err = rcv.Start(t.Context(), componenttest.NewNopHost())
	require.ErrorContains(t, err, `route::exporter: no exporter "tailsift/absent" has started`)
	require.NoError(t, rcv.Shutdown(t.Context()))

	_, err = NewFactory().CreateMetrics(t.Context(), receivertest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop())
	require.ErrorIs(t, err, errRouteMetrics)
}

// TestRouteConfig loads route blocks; the invalid ones fail naming the key.
func TestRouteConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		conf map[string]any
		want string // error; empty for valid
	}{
		{"valid", map[string]any{"route": map[string]any{"exporter": "tailsift/gateways"}}, ""},
		{"no exporter", map[string]any{"route": map[string]any{}}, "route::exporter: must name the tailsift exporter"},
		{"not tailsift", map[string]any{"route": map[string]any{"exporter": "otlp"}}, `route::exporter: "otlp" is not a tailsift exporter`},
		{"with cluster", map[string]any{
			"route":   map[string]any{"exporter": "tailsift"},
			"cluster": map[string]any{"self": "10.0.0.5:4317", "members": map[string]any{"static": []any{"10.0.0.5:4317"}}},
		}, "route: a receiver in route mode does not sample"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			tc.conf["protocols"] = map[string]any{"grpc": nil}
			require.NoError(t, confmap.NewFromStringMap(tc.conf).Unmarshal(cfg))
			err := confmap.Validate(cfg)
			if tc.want == "" {
				require.NoError(t, err)
				assert.Equal(t, component.MustNewIDWithName("tailsift", "gateways"), cfg.Route.Get().Exporter)
				return
			}
			assert.ErrorContains(t, err, tc.want)
		})
	}
}

// TestRouteModeRoundTrip: the route block survives Marshal (print-config).
func TestRouteModeRoundTrip(t *testing.T) {
	cfg := routeConfig(component.MustNewID("tailsift"))
	conf := confmap.New()
	require.NoError(t, conf.Marshal(cfg))
	back := createDefaultConfig().(*Config)
	require.NoError(t, conf.Unmarshal(back))
	assert.Equal(t, cfg.Route, back.Route)
}

// TestRouteModeConfigFiles loads the route-mode agent configurations the
// docs point to (the tailsift exporter's testdata/agent-route.yaml and the
// blocks of docs/scale-out.md): the receiver block is valid, and the
// exporter it names is in its pipeline. The exporter blocks are the
// exporter's TestAgentConfigs.
func TestRouteModeConfigFiles(t *testing.T) {
	docs := map[string][]byte{}
	file := filepath.Join("..", "..", "exporter", "tailsiftexporter", "testdata", "agent-route.yaml")
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	docs[file] = b
	b, err = os.ReadFile(filepath.Join("..", "..", "docs", "scale-out.md"))
	require.NoError(t, err)
	for i, m := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(b, -1) {
		docs[fmt.Sprintf("scale-out.md#%d", i)] = m[1]
	}
	checked := 0
	for name, text := range docs {
		var doc map[string]any
		require.NoError(t, yaml.Unmarshal(text, &doc), name)
		conf := confmap.NewFromStringMap(doc)
		block, err := conf.Sub("receivers::tailsift")
		require.NoError(t, err)
		if !block.IsSet("route") {
			continue
		}
		t.Run(name, func(t *testing.T) {
			cfg := NewFactory().CreateDefaultConfig().(*Config)
			require.NoError(t, block.Unmarshal(cfg))
			require.NoError(t, confmap.Validate(cfg))
			id := cfg.Route.Get().Exporter
			assert.True(t, conf.IsSet("exporters::"+id.String()), "exporter %s is not configured", id)
			pipeline, err := conf.Sub("service::pipelines::traces")
			require.NoError(t, err)
			assert.Contains(t, pipeline.Get("receivers"), "tailsift")
			assert.Contains(t, pipeline.Get("exporters"), id.String())
		})
		checked++
	}
	assert.Equal(t, 2, checked)
}
