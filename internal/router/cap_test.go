package router

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exporterhelper/xexporterhelper"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/grpc"

	"github.com/tailsift/tailsift/internal/ring"
	"github.com/tailsift/tailsift/internal/router/routertest"
	"github.com/tailsift/tailsift/internal/wire"
)

// bigBatch is a marshalled batch of traces traces of spans spans each, the
// n-th span padded with size(n) bytes, and its spans' IDs in wire order.
func bigBatch(t testing.TB, w *routertest.Workload, traces, spans int, size func(n int) int) (buf []byte, td ptrace.Traces, order [][8]byte) {
	t.Helper()
	td = w.Batch(traces, spans)
	routertest.Pad(td, size)
	buf, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	require.NoError(t, err)
	return buf, td, spanIDs(t, buf)
}

// spanIDs returns the span IDs of an encoded TracesData in wire order.
func spanIDs(t testing.TB, data []byte) [][8]byte {
	t.Helper()
	var b wire.Batch
	require.NoError(t, wire.Scan(data, &b))
	ids := make([][8]byte, len(b.Spans))
	for i, sp := range b.Spans {
		ids[i] = sp.SpanID
	}
	return ids
}

// randomSizes pads spans with 0 to maxPad bytes, a few of them with more
// than limit (oversized) when huge is set.
func randomSizes(seed uint64, maxPad, limit int, huge bool) func(int) int {
	rng := rand.New(rand.NewPCG(seed, 1))
	return func(int) int {
		if huge && rng.IntN(50) == 0 {
			return limit + rng.IntN(limit)
		}
		return rng.IntN(maxPad)
	}
}

// TestCut: the pieces cut keep every span once, in order, each within the
// limits, and their sizes are those of their encodings.
func TestCut(t *testing.T) {
	var w routertest.Workload
	for _, tt := range []struct {
		maxSpans, maxBytes int
		huge               bool
	}{
		{maxBytes: 4 << 10},
		{maxBytes: 4 << 10, huge: true},
		{maxBytes: 64 << 10},
		{maxBytes: 64 << 10, huge: true},
		{maxSpans: 7, maxBytes: 16 << 10, huge: true},
		{maxSpans: 50},
		{maxBytes: 200}, // every span bigger than the cap
	} {
		t.Run(fmt.Sprintf("spans=%d/bytes=%d/huge=%v", tt.maxSpans, tt.maxBytes, tt.huge), func(t *testing.T) {
			buf, _, want := bigBatch(t, &w, 40, 9, randomSizes(uint64(tt.maxBytes+tt.maxSpans), 2000, tt.maxBytes, tt.huge))
			s := splitter{prefix: []byte{0x12, 0x02, 0x08, 0x01}} // an unknown field 2, as Settings.Prefix may hold
			require.NoError(t, wire.Scan(buf, &s.batch))
			idx := make([]int32, len(s.batch.Spans))
			for i := range idx {
				idx[i] = int32(i)
			}
			var got [][8]byte
			start, pieces := 0, 0
			// A copy: the check below cuts again, into s.cuts.
			for _, c := range append([]cut(nil), s.cut(idx, tt.maxSpans, tt.maxBytes)...) {
				data := s.encode(nil, idx[start:c.end])
				n := c.end - start
				require.Len(t, data, c.size, "piece %d: its size is not its encoding's", pieces)
				if tt.maxSpans > 0 {
					assert.LessOrEqual(t, n, tt.maxSpans)
				}
				if tt.maxBytes > 0 && n > 1 {
					assert.LessOrEqual(t, len(data), tt.maxBytes, "piece %d of %d spans is over the cap", pieces, n)
				}
				if c.end < len(idx) && tt.maxSpans == 0 {
					// Cut only where the next span would not fit.
					next := s.cut(idx[start:c.end+1], 0, 0)
					assert.Greater(t, next[0].size, tt.maxBytes, "piece %d cut too early", pieces)
				}
				got = append(got, spanIDs(t, data)...)
				start, pieces = c.end, pieces+1
			}
			require.Equal(t, want, got, "spans lost, duplicated or reordered")
			assert.Greater(t, pieces, 1, "nothing was cut: the test proves nothing")
		})
	}
}

// TestSplitCapped: a routed request whose shares are above the cap is cut
// into parts within it (a span bigger than the cap by itself alone, and
// flagged), every span in one part of its owner, the spans of each trace in
// their order.
func TestSplitCapped(t *testing.T) {
	var w routertest.Workload
	const limit = 32 << 10
	buf, _, order := bigBatch(t, &w, 60, 8, randomSizes(3, 3000, limit, true))
	r := ring.New([]string{"a:1", "b:1", "c:1"})
	s := splitter{maxBytes: limit}
	parts, ok, err := s.split(buf, &targets{ring: r, prefix: []byte{0x12, 0x02, 0x08, 0x01}})
	require.NoError(t, err)
	require.True(t, ok)

	var b wire.Batch
	require.NoError(t, wire.Scan(buf, &b))
	traceOf := map[[8]byte][16]byte{}
	for _, sp := range b.Spans {
		traceOf[sp.SpanID] = sp.TraceID
	}
	seen := map[[8]byte]int{}
	byTrace := map[[16]byte][][8]byte{}
	perMember := map[int]int{}
	oversized := 0
	for _, p := range parts {
		ids := spanIDs(t, p.data)
		require.Len(t, ids, p.spans)
		if len(p.data) > limit {
			oversized++
			assert.Len(t, ids, 1, "a part above the cap holds more than one span")
		}
		for _, id := range ids {
			seen[id]++
			tid := traceOf[id]
			assert.Equal(t, r.Owner(ring.Hash(tid)), p.member, "span %x at another member than its owner", id)
			byTrace[tid] = append(byTrace[tid], id)
		}
		perMember[p.member]++
	}
	require.Len(t, seen, len(order), "spans lost")
	for id, n := range seen {
		require.Equal(t, 1, n, "span %x duplicated", id)
	}
	wantByTrace := map[[16]byte][][8]byte{}
	for _, id := range order {
		wantByTrace[traceOf[id]] = append(wantByTrace[traceOf[id]], id)
	}
	assert.Equal(t, wantByTrace, byTrace, "the spans of a trace were reordered")
	assert.Positive(t, oversized, "no oversized span: the test proves nothing")
	for m, n := range perMember {
		assert.Greater(t, n, 1, "member %d's share was not cut", m)
	}
}

// TestSplitUnderCapIsOnePart: a share within the cap is one part, as
// without a cap.
func TestSplitUnderCapIsOnePart(t *testing.T) {
	var w routertest.Workload
	buf, _, _ := bigBatch(t, &w, 20, 3, func(int) int { return 10 })
	r := ring.New([]string{"a:1", "b:1", "c:1"})
	capped := splitter{maxBytes: len(buf)}
	parts, _, err := capped.split(buf, &targets{ring: r})
	require.NoError(t, err)
	var plain splitter
	want, _, err := plain.split(buf, &targets{ring: r})
	require.NoError(t, err)
	require.Len(t, parts, len(want))
	for i := range parts {
		assert.Equal(t, want[i], parts[i])
	}
}

func newCapped(data []byte, spans, maxBytes int) *request {
	return newRequest(append([]byte(nil), data...), spans, maxBytes, false)
}

// TestMergeSplitBytes: when the members' queues batch (no router batching),
// exporterhelper's batcher merges requests only within the byte cap, and
// cuts one above it.
func TestMergeSplitBytes(t *testing.T) {
	var w routertest.Workload
	a, _, aIDs := bigBatch(t, &w, 4, 5, func(int) int { return 900 }) // about 20 KB
	b, _, bIDs := bigBatch(t, &w, 4, 5, func(int) int { return 900 })
	big, _, bigIDs := bigBatch(t, &w, 20, 5, func(int) int { return 900 }) // about 100 KB
	limit := len(a) + len(b) - 1
	items := exporterhelper.RequestSizerTypeItems

	// Together over the cap: as they are.
	out, err := newCapped(a, len(aIDs), limit).MergeSplit(context.Background(), 0, items, newCapped(b, len(bIDs), limit))
	require.NoError(t, err)
	require.Len(t, out, 2)
	assert.Equal(t, len(a), out[0].BytesSize())
	assert.Equal(t, len(b), out[1].BytesSize())

	// Within it: merged.
	out, err = newCapped(a, len(aIDs), limit+1).MergeSplit(context.Background(), 0, items, newCapped(b, len(bIDs), limit+1))
	require.NoError(t, err)
	require.Len(t, out, 1)
	assert.Equal(t, len(a)+len(b), out[0].BytesSize())

	// One above it, alone or merged: cut, every span once, in order.
	for _, other := range []bool{false, true} {
		r := newCapped(a, len(aIDs), 16<<10)
		want := append([][8]byte(nil), aIDs...)
		var o xexporterhelper.Request
		if other {
			o = newCapped(big, len(bigIDs), 16<<10)
			want = append(want, bigIDs...)
		} else {
			r = newCapped(big, len(bigIDs), 16<<10)
			want = bigIDs
		}
		out, err := r.MergeSplit(context.Background(), 0, items, o)
		require.NoError(t, err)
		require.Greater(t, len(out), 2)
		var got [][8]byte
		for _, q := range out {
			req := q.(*request)
			assert.LessOrEqual(t, req.BytesSize(), 16<<10)
			assert.Equal(t, len(req.bytes()), req.BytesSize())
			ids := spanIDs(t, req.bytes())
			assert.Equal(t, len(ids), req.ItemsCount())
			got = append(got, ids...)
		}
		assert.Equal(t, want, got)
	}
}

// cappedGateways starts gateways whose gRPC servers receive at most limit
// bytes per message, as a gateway's receive limit does: a request above it
// is refused with RESOURCE_EXHAUSTED, a permanent error, and lost.
func cappedGateways(t *testing.T, limit int, hosts ...string) (*routertest.Gateways, []string) {
	t.Helper()
	return routertest.StartGatewaysWith(t, []grpc.ServerOption{grpc.MaxRecvMsgSize(limit)}, hosts...)
}

// TestRouteWithinGatewayLimit routes large spans to gateways that receive
// at most limit bytes, with the cap at that limit: with the router's
// batching, with exporterhelper's (wait_for_result), and without any; the
// incoming requests' shares are above the limit too. Every span arrives,
// once; without the cap the batches (and shares) above the limit were
// refused and lost.
func TestRouteWithinGatewayLimit(t *testing.T) {
	const limit = 64 << 10
	tests := []struct {
		name   string
		queue  func(*Settings)
		router bool
	}{
		{name: "router batches", router: true, queue: func(s *Settings) {
			batching(50*time.Millisecond, 1<<30)(s)
			s.Queue.Get().Batch.Get().MaxSize = 1 << 30
		}},
		{name: "queue batches", queue: func(s *Settings) {
			batching(50*time.Millisecond, 1<<30)(s)
			s.Queue.Get().WaitForResult = true
		}},
		{name: "no batching", queue: func(s *Settings) {
			s.Queue = configoptional.None[exporterhelper.QueueBatchConfig]()
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw, addrs := cappedGateways(t, limit, fmt.Sprintf("127.0.3.%d", 2*i+1), fmt.Sprintf("127.0.3.%d", 2*i+2))
			obs := new(counts)
			r := newRouterObserved(t, addrs, obs, func(s *Settings) {
				tt.queue(s)
				s.MaxRequestBytes = limit
			})
			require.Equal(t, tt.router, r.batch != nil)
			var w routertest.Workload
			sent := map[[8]byte]string{}
			var errs []chan error
			route := func(traces int) {
				buf, td, _ := bigBatch(t, &w, traces, 4, randomSizes(uint64(len(sent)), 2500, limit, false))
				for id, svc := range routertest.ServiceOf(td) {
					sent[id] = svc
				}
				// With wait_for_result, Route returns once its parts are
				// sent: the requests are routed concurrently, to be batched.
				errc := make(chan error, 1)
				go func() { errc <- r.Route(t.Context(), buf) }()
				errs = append(errs, errc)
			}
			for range 10 {
				route(6) // about 30 KB each: batches grow past the limit
			}
			route(100) // about 500 KB: each share is above the limit
			for _, errc := range errs {
				require.NoError(t, <-errc)
			}
			require.Eventually(t, func() bool { return gw.Count() == len(sent) }, 10*time.Second, 5*time.Millisecond,
				"%d spans of %d arrived", gw.Count(), len(sent))
			requireDeliveredOnce(t, gw, sent)
			assert.Zero(t, obs.oversized.Load())
		})
	}
}

// TestRouteOversizedSpan: a span bigger than the cap is sent alone, counted,
// and arrives where the gateway takes it; the spans around it are batched
// within the cap.
func TestRouteOversizedSpan(t *testing.T) {
	const limit = 16 << 10
	gw, addrs := cappedGateways(t, 4<<20, "127.0.3.21")
	obs := new(counts)
	r := newRouterObserved(t, addrs, obs, func(s *Settings) {
		batching(50*time.Millisecond, 1<<30)(s)
		s.MaxRequestBytes = limit
	})
	var w routertest.Workload
	buf, td, _ := bigBatch(t, &w, 10, 3, func(n int) int {
		if n == 7 {
			return 3 * limit
		}
		return 1000
	})
	require.NoError(t, r.Route(t.Context(), buf))
	require.Eventually(t, func() bool { return gw.Count() == td.SpanCount() }, 10*time.Second, 5*time.Millisecond)
	requireDeliveredOnce(t, gw, routertest.ServiceOf(td))
	assert.Equal(t, int64(1), obs.oversized.Load())
	assert.Equal(t, int64(td.SpanCount()), obs.routed.Load())
	assert.GreaterOrEqual(t, gw.Calls(addrs[0]), 3, "the oversized span was batched with others")
}

// TestMayBeDue: a request scans the members only when the oldest batch may
// be due, and not again within a sixteenth of the linger.
func TestMayBeDue(t *testing.T) {
	now := time.Now()
	r := &Router{batch: &lingerConfig{linger: 200 * time.Millisecond}, epoch: now.Add(-time.Second)}
	assert.False(t, r.mayBeDue(now), "nothing pending")
	r.setFlushAt(now.Add(200 * time.Millisecond)) // a batch begun now
	assert.False(t, r.mayBeDue(now))
	assert.False(t, r.mayBeDue(now.Add(149*time.Millisecond)))
	assert.True(t, r.mayBeDue(now.Add(150*time.Millisecond)), "due at three quarters of the linger")
	assert.False(t, r.mayBeDue(now.Add(160*time.Millisecond)), "scanned 10 ms ago")
	assert.True(t, r.mayBeDue(now.Add(163*time.Millisecond)), "scanned 12.5 ms ago")
	r.setFlushAt(time.Time{})
	assert.False(t, r.mayBeDue(now.Add(time.Hour)))
}

// TestRequestSize: the cap's fields keep a request in the 48-byte size
// class it had without them (one is allocated per part routed).
func TestRequestSize(t *testing.T) {
	assert.LessOrEqual(t, unsafe.Sizeof(request{}), uintptr(48))
}
