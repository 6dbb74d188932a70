package tailsiftreceiver

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"

	"github.com/tailsift/tailsift/internal/ring"
)

// TestForwardedHeavyRequestNotLost: spans another gateway forwarded were
// acknowledged there (its client got a success), so their owner must not
// refuse them for their queue weight, as it refuses a client's request
// heavier than buffer.max_queued_bytes: the forwarder's router takes that
// refusal (INVALID_ARGUMENT) as permanent and drops them. A request of
// small spans within the gRPC limit (1 MiB here) weighs more than the
// queue (1 MiB) with its scan, 136 bytes a span.
func TestForwardedHeavyRequestNotLost(t *testing.T) {
	f := startFleetWith(t, fleetOptions{configure: func(cfg *Config) {
		cfg.Buffer.MaxQueuedBytes = 1 << 20
		cfg.Protocols.GRPC.Get().MaxRecvMsgSizeMiB = 1
	}}, gatewayHosts[:2]...)
	a, b := f.addrs[0], f.addrs[1]
	r := ring.New(f.addrs[:2])
	var specs []spanSpec
	traces := 0
	for n := uint64(1000); traces < 800; n++ {
		if r.Members()[r.Owner(ring.Hash(traceID(n)))] != b {
			continue
		}
		traces++
		specs = append(specs, spanSpec{Trace: n, Span: 1})
		for s := uint64(2); s <= 8; s++ {
			specs = append(specs, spanSpec{Trace: n, Span: s, Parent: 1, Status: ptrace.StatusCodeError})
		}
	}
	td := batch(specs...)
	body := marshal(t, td)
	require.Less(t, len(body), 1<<20, "within the gRPC limit")
	f.gw[a].sendGRPC(td) // every span is b's: a forwards them all
	// b answers the forwarded request: takes it in, or refuses it.
	require.Eventually(t, func() bool {
		return f.gw[b].metric("otelcol_receiver_tailsift_spans_received") == int64(len(specs)) ||
			f.gw[b].metric("otelcol_receiver_tailsift_spans_refused", attribute.String("reason", "too_large")) > 0
	}, 10*time.Second, 5*time.Millisecond)
	assert.Zero(t, f.gw[b].metric("otelcol_receiver_tailsift_spans_refused", attribute.String("reason", "too_large")),
		"forwarded spans refused as too large")
	where := f.decideAll(f.addrs[:2])
	kept := 0
	for _, at := range where {
		kept += at[b]
	}
	assert.Equal(t, len(specs), kept, "ERROR spans forwarded (%d bytes) kept by their owner", len(body))
}

// TestForwardedPartWithinPeerLimit: a gateway forwards a trace's spans to
// their owner in one request per owner; a share larger than the owner's
// gRPC receive limit was refused there (RESOURCE_EXHAUSTED, permanent) and
// dropped, although the forwarder had told its client the spans were
// taken. Here the first gateway takes requests of up to 8 MiB and its peer
// 4 MiB (gRPC's default; an HTTP client may send 20 MiB by default): the
// cluster's router cuts what it forwards to 3.5 MiB, as the tailsift
// exporter does.
func TestForwardedPartWithinPeerLimit(t *testing.T) {
	f := startFleetWith(t, fleetOptions{configure: func(cfg *Config) {
		g := cfg.Protocols.GRPC.Get()
		g.MaxRecvMsgSizeMiB = 4
		if strings.HasPrefix(g.NetAddr.Endpoint, gatewayHosts[0]+":") {
			g.MaxRecvMsgSizeMiB = 8
		}
	}}, gatewayHosts[:2]...)
	a, b := f.addrs[0], f.addrs[1]
	r := ring.New(f.addrs[:2])
	big := map[string]any{"payload": strings.Repeat("x", 200)}
	var specs []spanSpec
	for n := uint64(1000); len(specs) < 20000; n++ {
		if r.Members()[r.Owner(ring.Hash(traceID(n)))] != b {
			continue
		}
		specs = append(specs, spanSpec{Trace: n, Span: 1, Status: ptrace.StatusCodeError, Attrs: big})
		for s := uint64(2); s <= 8; s++ {
			specs = append(specs, spanSpec{Trace: n, Span: s, Parent: 1, Status: ptrace.StatusCodeError, Attrs: big})
		}
	}
	td := batch(specs...)
	body := marshal(t, td)
	require.Greater(t, len(body), 5<<20, "over the peer's limit")
	require.Less(t, len(body), 8<<20, "within the first gateway's limit")
	f.gw[a].sendGRPC(td) // every span is b's: a forwards them all
	require.Eventually(t, func() bool {
		return f.gw[b].metric("otelcol_receiver_tailsift_spans_received") == int64(len(specs))
	}, 10*time.Second, 5*time.Millisecond, "the owner took %d of %d forwarded spans (%d bytes)",
		f.gw[b].metric("otelcol_receiver_tailsift_spans_received"), len(specs), len(body))
	where := f.decideAll(f.addrs[:2])
	kept := 0
	for _, at := range where {
		kept += at[b]
	}
	assert.Equal(t, len(specs), kept, "ERROR spans forwarded kept by their owner")
}
