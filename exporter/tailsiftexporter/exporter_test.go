package tailsiftexporter

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/tailsift/tailsift/exporter/tailsiftexporter/internal/metadata"
	"github.com/tailsift/tailsift/internal/ring"
	"github.com/tailsift/tailsift/internal/router/routertest"
)

// harness runs a tailsift exporter against in-process gateways.
type harness struct {
	t    *testing.T
	gw   *routertest.Gateways
	exp  exporter.Traces
	tel  *componenttest.Telemetry
	ring *ring.Ring
	w    routertest.Workload
	sent map[[8]byte]string // span ID → service.name, of every span sent
}

func newHarness(t *testing.T, hosts ...string) *harness {
	t.Helper()
	gw, addrs := routertest.StartGateways(t, hosts...)
	return newHarnessOn(t, gw, addrs, func(cfg *Config) { cfg.Members.Static = addrs })
}

// newHarnessOn starts an exporter whose members block members sets.
func newHarnessOn(t *testing.T, gw *routertest.Gateways, addrs []string, members func(*Config)) *harness {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	members(cfg)
	cfg.GRPC.TLS.Insecure = true
	// Failover.Timeouts stays the default.
	cfg.Failover.Attempts, cfg.Failover.Backoff, cfg.Failover.ProbeInterval = 2, 10*time.Millisecond, 20*time.Millisecond
	cfg.Retry.InitialInterval, cfg.Retry.MaxInterval = 10*time.Millisecond, 50*time.Millisecond
	exp, tel := startExporter(t, cfg)
	return &harness{t: t, gw: gw, exp: exp, tel: tel, ring: ring.New(addrs), sent: map[[8]byte]string{}}
}

// startExporter starts a tailsift exporter on cfg with its own telemetry
// and a warning-level test logger; both stop when the test ends.
func startExporter(t *testing.T, cfg *Config) (exporter.Traces, *componenttest.Telemetry) {
	t.Helper()
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	set := exportertest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	set.Logger = zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	exp, err := NewFactory().CreateTraces(t.Context(), set, cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(t.Context(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, exp.Shutdown(context.Background())) })
	return exp, tel
}

// send sends n batches and waits until the gateways hold every span sent.
func (h *harness) send(n int) {
	h.t.Helper()
	for range n {
		td := h.w.Batch(8, 5)
		for id, svc := range routertest.ServiceOf(td) {
			h.sent[id] = svc
		}
		require.NoError(h.t, h.exp.ConsumeTraces(h.t.Context(), td))
	}
	require.Eventually(h.t, func() bool { return h.gw.Count() >= len(h.sent) }, 10*time.Second, 5*time.Millisecond,
		"the gateways never got every span sent")
}

// check asserts that every span sent arrived once, under its resource, and
// all spans of a trace at one gateway; it returns where each trace went.
func (h *harness) check() map[[16]byte]string {
	h.t.Helper()
	got := h.gw.Snapshot()
	require.Len(h.t, got, len(h.sent), "spans received that were never sent")
	where := map[[16]byte]string{}
	for id, svc := range h.sent {
		rs := got[id]
		require.Len(h.t, rs, 1, "span %x: lost or duplicated", id)
		assert.Equal(h.t, svc, rs[0].Service, "span %x lost its resource", id)
		if prev, ok := where[rs[0].TraceID]; ok {
			require.Equal(h.t, prev, rs[0].Gateway, "trace %x split", rs[0].TraceID)
		}
		where[rs[0].TraceID] = rs[0].Gateway
	}
	return where
}

func (h *harness) owner(tid [16]byte) string {
	return h.ring.Members()[h.ring.Owner(ring.Hash(tid))]
}

func (h *harness) metric(name string, attrs ...attribute.KeyValue) int64 {
	h.t.Helper()
	m, err := h.tel.GetMetric(name)
	if err != nil {
		return 0
	}
	sum, ok := m.Data.(metricdata.Sum[int64])
	require.True(h.t, ok, "%s is not an int sum", name)
	want := attribute.NewSet(attrs...)
	var total int64
	for _, dp := range sum.DataPoints {
		if want.Len() == 0 || dp.Attributes.Equals(&want) {
			total += dp.Value
		}
	}
	return total
}

// TestFailover kills one of three gateways: its traces go to the next member
// in hash order and nothing is lost; once it is back, routing returns to it.
func TestFailover(t *testing.T) {
	h := newHarness(t, "127.0.0.11", "127.0.0.12", "127.0.0.13")
	victim := h.ring.Members()[1]
	isVictim := func(m int) bool { return h.ring.Members()[m] == victim }

	// Steady state: every trace at its owner.
	h.send(20)
	for tid, gw := range h.check() {
		require.Equal(t, h.owner(tid), gw)
	}
	assert.Equal(t, int64(3), h.metric("otelcol_exporter_tailsift_members_up"))
	assert.Equal(t, int64(3), h.metric("otelcol_exporter_tailsift_members"))
	assert.Zero(t, h.metric("otelcol_exporter_tailsift_spans_rerouted"))
	routed := h.metric("otelcol_exporter_tailsift_spans_routed", attribute.String("member", victim))
	assert.Positive(t, routed, "the victim owned no trace: the test proves nothing")

	// Kill one gateway. The first batches are queued for it while it still
	// counts as up: they fail over from its queue.
	h.gw.Stop(victim)
	h.send(20)
	for tid, gw := range h.check() {
		if owner := h.owner(tid); owner != victim {
			require.Equal(t, owner, gw, "a trace of a live member moved")
		} else if gw != victim { // sent before the kill
			require.Equal(t, h.ring.Members()[h.ring.Next(ring.Hash(tid), isVictim)], gw, "not the next member in hash order")
		}
	}
	assert.Equal(t, int64(2), h.metric("otelcol_exporter_tailsift_members_up"))
	assert.Positive(t, h.metric("otelcol_exporter_tailsift_spans_rerouted"))

	// Bring it back: a probe finds it, and its traces return.
	h.gw.Start(victim)
	require.Eventually(t, func() bool { return h.metric("otelcol_exporter_tailsift_members_up") == 3 }, 10*time.Second, 5*time.Millisecond)
	before := len(h.sent)
	h.send(20)
	backHome := 0
	for id, rs := range h.gw.Snapshot() {
		if _, ok := h.sent[id]; !ok || rs[0].Gateway != victim {
			continue
		}
		backHome++
	}
	assert.Greater(t, backHome, int(routed), "no span went back to the member once it was up (%d spans sent)", len(h.sent)-before)
	h.check()
}

// TestAllDownThenBack keeps spans while every gateway is down and delivers
// them when one comes back.
func TestAllDownThenBack(t *testing.T) {
	h := newHarness(t, "127.0.0.21", "127.0.0.22")
	h.send(2)
	for _, m := range h.ring.Members() {
		h.gw.Stop(m)
	}
	td := h.w.Batch(8, 5)
	for id, svc := range routertest.ServiceOf(td) {
		h.sent[id] = svc
	}
	require.NoError(t, h.exp.ConsumeTraces(t.Context(), td), "the queue takes spans while every member is down")
	require.Eventually(t, func() bool { return h.metric("otelcol_exporter_tailsift_members_up") == 0 }, 10*time.Second, 5*time.Millisecond)
	h.gw.Start(h.ring.Members()[0])
	require.Eventually(t, func() bool { return h.gw.Count() >= len(h.sent) }, 10*time.Second, 5*time.Millisecond)
	h.check()
}

func TestMalformedIsPermanent(t *testing.T) {
	h := newHarness(t, "127.0.0.31")
	td := ptrace.NewTraces()
	sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetName("no ids") // routes by the zero trace ID: not an error here
	require.NoError(t, h.exp.ConsumeTraces(t.Context(), td))
}
