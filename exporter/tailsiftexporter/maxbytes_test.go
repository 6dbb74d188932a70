package tailsiftexporter

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/tailsift/tailsift/internal/router"
	"github.com/tailsift/tailsift/internal/router/routertest"
)

// startOTLPGateway starts contrib's usual gateway entry, core's otlp
// receiver, with its defaults (a 4 MiB gRPC receive limit) on host, into
// a sink; it stops when the test ends.
func startOTLPGateway(t *testing.T, host string) (string, *consumertest.TracesSink) {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	f := otlpreceiver.NewFactory()
	cfg := f.CreateDefaultConfig()
	require.NoError(t, confmap.NewFromStringMap(map[string]any{
		"protocols": map[string]any{"grpc": map[string]any{"endpoint": addr}},
	}).Unmarshal(cfg))
	sink := new(consumertest.TracesSink)
	rcv, err := f.CreateTraces(t.Context(), receivertest.NewNopSettings(f.Type()), cfg, sink)
	require.NoError(t, err)
	require.NoError(t, rcv.Start(t.Context(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, rcv.Shutdown(context.Background())) })
	return addr, sink
}

// received counts the spans in sink by span ID.
func received(sink *consumertest.TracesSink) map[[8]byte]int {
	got := map[[8]byte]int{}
	for _, td := range sink.AllTraces() {
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					got[sp.SpanID()]++
				}
			}
		}
	}
	return got
}

// TestLargeSpansWithinGatewayLimit sends large spans (1–10 KB, about 4 KB on
// average: stack traces, big events) through the exporter with its default
// configuration into an otlp receiver with its default 4 MiB limit. A batch
// of the default 2048 such spans is about 8 MiB and one incoming request's
// share is 6 MiB: without the byte cap the gateway refused them
// (RESOURCE_EXHAUSTED, a permanent error) and they were lost. Every span
// arrives, once.
func TestLargeSpansWithinGatewayLimit(t *testing.T) {
	addr, sink := startOTLPGateway(t, "127.0.0.41")
	cfg := createDefaultConfig().(*Config)
	cfg.Members.Static = []string{addr}
	cfg.GRPC.TLS.Insecure = true
	exp, tel := startExporter(t, cfg)
	h := &harness{t: t, tel: tel}

	var w routertest.Workload
	sent := map[[8]byte]bool{}
	send := func(traces int) {
		td := w.Batch(traces, 10)
		routertest.Pad(td, func(n int) int { return 1000 + n*7919%9000 })
		for id := range routertest.ServiceOf(td) {
			sent[id] = true
		}
		require.NoError(t, exp.ConsumeTraces(t.Context(), td))
	}
	for range 6 {
		send(60) // 600 spans, about 2.6 MB: batches grow past 4 MiB
	}
	send(150) // 1500 spans, about 6.5 MB: one request's share above 4 MiB
	// The shutdown sends what is still batched.
	require.NoError(t, exp.Shutdown(context.Background()))

	got := received(sink)
	require.Equal(t, len(sent), len(got), "spans lost (or unknown spans received)")
	for id, n := range got {
		require.True(t, sent[id], "span %x was never sent", id)
		require.Equal(t, 1, n, "span %x duplicated", id)
	}
	assert.Zero(t, h.metric("otelcol_exporter_tailsift_spans_oversized"))
	assert.Equal(t, int64(len(sent)), h.metric("otelcol_exporter_tailsift_spans_routed"))
}

// TestOversizedSpanCounted: a span bigger than max_request_bytes by itself
// goes alone to its gateway, which decides (here a 4 MiB limit refuses a
// 5 MB span, which the exporter counts); the spans around it arrive.
func TestOversizedSpanCounted(t *testing.T) {
	addr, sink := startOTLPGateway(t, "127.0.0.42")
	h := newHarnessOn(t, nil, []string{addr}, func(cfg *Config) {
		cfg.Members.Static = []string{addr}
		cfg.Failover = router.FailoverConfig{Attempts: 1, ProbeInterval: time.Second}
	})
	td := h.w.Batch(20, 5)
	routertest.Pad(td, func(n int) int {
		if n == 42 {
			return 5 << 20
		}
		return 100
	})
	require.NoError(t, h.exp.ConsumeTraces(t.Context(), td))
	assert.Equal(t, int64(1), h.metric("otelcol_exporter_tailsift_spans_oversized"))
	require.NoError(t, h.exp.Shutdown(context.Background()))
	assert.Len(t, received(sink), td.SpanCount()-1, "the spans but the oversized one")
}
