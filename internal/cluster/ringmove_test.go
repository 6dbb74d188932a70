package cluster

import (
	"context"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"

	"github.com/tailsift/tailsift/internal/ring"
	"github.com/tailsift/tailsift/internal/router/routertest"
)

// Tests of a handover whose member set changes under it (ringMoved): what
// the members that left did not take must end whole at one gateway, the
// trace's owner in the last set (this gateway included), never split
// between two nor decided here from part of its spans.

// traceBuffer holds undecided traces by trace ID, each as an encoded
// TracesData, as the real buffer does: TakeForeign takes out whole traces
// that owns rejects, up to about maxBytes (at least one), and IngestAgain
// puts what it is given back under its traces.
type traceBuffer struct {
	fakeBuffer
	tmu    sync.Mutex
	traces map[[16]byte][]byte
	again  int // IngestAgain calls
	takes  atomic.Int32
}

func newTraceBuffer(t *testing.T, td ptrace.Traces) *traceBuffer {
	t.Helper()
	b := &traceBuffer{traces: map[[16]byte][]byte{}}
	_, err := b.IngestAgain(context.Background(), encode(t, td), nil)
	require.NoError(t, err)
	b.again = 0
	return b
}

func (b *traceBuffer) TakeForeign(_ context.Context, _ int, owns func(uint64) bool, maxBytes int) (Foreign, bool, error) {
	defer b.takes.Add(1)
	b.tmu.Lock()
	defer b.tmu.Unlock()
	var f Foreign
	ids := make([][16]byte, 0, len(b.traces))
	for id := range b.traces {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b [16]byte) int { return slices.Compare(a[:], b[:]) })
	for _, id := range ids {
		if owns(ring.Hash(id)) {
			continue
		}
		if f.NTraces > 0 && len(f.Traces) >= maxBytes {
			return f, true, nil
		}
		// TracesData has one repeated field: two encoded ones one after
		// the other are their union.
		f.Traces = append(f.Traces, b.traces[id]...)
		f.NTraces++
		f.Spans += len(spansOfTrace(b.traces[id]))
		delete(b.traces, id)
	}
	return f, false, nil
}

func (b *traceBuffer) IngestAgain(_ context.Context, buf []byte, done func()) (int, error) {
	td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(buf)
	if err != nil {
		return 0, err
	}
	spans := 0
	b.tmu.Lock()
	defer b.tmu.Unlock()
	b.again++
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				one := ptrace.NewTraces()
				r := one.ResourceSpans().AppendEmpty()
				rs.Resource().CopyTo(r.Resource())
				s := r.ScopeSpans().AppendEmpty()
				ss.Scope().CopyTo(s.Scope())
				sp.CopyTo(s.Spans().AppendEmpty())
				enc, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(one)
				if err != nil {
					return spans, err
				}
				id := [16]byte(sp.TraceID())
				b.traces[id] = append(b.traces[id], enc...)
				spans++
			}
		}
	}
	if done != nil {
		done()
	}
	return spans, nil
}

// empty drops what the buffer holds.
func (b *traceBuffer) empty() {
	b.tmu.Lock()
	defer b.tmu.Unlock()
	clear(b.traces)
}

// held returns the spans held here, by trace.
func (b *traceBuffer) held() map[[16]byte]int {
	b.tmu.Lock()
	defer b.tmu.Unlock()
	out := map[[16]byte]int{}
	for id, enc := range b.traces {
		out[id] = len(spansOfTrace(enc))
	}
	return out
}

func spansOfTrace(enc []byte) []ptrace.Span {
	td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(enc)
	if err != nil {
		panic(err)
	}
	var out []ptrace.Span
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				out = append(out, sp)
			}
		}
	}
	return out
}

// gate is a gateway that, while held, takes Export calls and answers
// none (a gateway getting SIGTERM whose connection closes as it leaves
// the set); once released it records what it gets. A closed gate refuses
// the connection.
type gate struct {
	ptraceotlp.UnimplementedGRPCServer
	addr string
	hold atomic.Bool
	// takeThenHold: a held call records what it got first (a gateway
	// that took the spans and whose answer was lost).
	takeThenHold atomic.Bool
	calls        atomic.Int64
	ended        atomic.Int64 // held calls that ended (their caller gave up)
	// refuse, when set, is every call's answer.
	refuse atomic.Pointer[error]
	mu     sync.Mutex
	got    map[[16]byte]int // spans by trace
	kept   map[[16]byte]int // kept decisions handed over, by trace
	srv    *grpc.Server
}

func startGate(t *testing.T, held bool) *gate {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	g := &gate{addr: l.Addr().String(), got: map[[16]byte]int{}, kept: map[[16]byte]int{}, srv: grpc.NewServer()}
	g.hold.Store(held)
	ptraceotlp.RegisterGRPCServer(g.srv, g)
	go func() { _ = g.srv.Serve(l) }()
	t.Cleanup(g.srv.Stop)
	return g
}

func (g *gate) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	g.calls.Add(1)
	if g.hold.Load() && g.takeThenHold.Load() {
		g.record(req)
	}
	if g.hold.Load() {
		<-ctx.Done()
		g.ended.Add(1)
		return ptraceotlp.NewExportResponse(), ctx.Err()
	}
	if err := g.refuse.Load(); err != nil {
		return ptraceotlp.NewExportResponse(), *err
	}
	g.record(req)
	return ptraceotlp.NewExportResponse(), nil
}

func (g *gate) record(req ptraceotlp.ExportRequest) {
	g.mu.Lock()
	if raw, err := req.MarshalProto(); err == nil {
		if c, _, ok, err := SplitControl(raw); ok && err == nil {
			for _, k := range c.Decisions.Kept {
				g.kept[k.ID]++
			}
		}
	}
	defer g.mu.Unlock()
	for _, rs := range req.Traces().ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				g.got[[16]byte(sp.TraceID())]++
			}
		}
	}
}

func (g *gate) spans() map[[16]byte]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return copyCounts(g.got)
}

func (g *gate) decisions() map[[16]byte]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return copyCounts(g.kept)
}

func copyCounts(m map[[16]byte]int) map[[16]byte]int {
	out := make(map[[16]byte]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// where tells, for each trace of td, where its spans are: "here" for the
// buffer, or the gates' addresses.
func where(td ptrace.Traces, buf *traceBuffer, gates ...*gate) map[[16]byte]map[string]int {
	out := map[[16]byte]map[string]int{}
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				out[[16]byte(sp.TraceID())] = map[string]int{}
			}
		}
	}
	for id, n := range buf.held() {
		out[id]["here"] += n
	}
	for _, g := range gates {
		for id, n := range g.spans() {
			out[id][g.addr] += n
		}
	}
	return out
}

// assertWhole checks that each trace of td (spans spans each) is whole at
// its owner in members (the others only, for a gateway that drains): in
// buf when self owns it, at the owner's gate otherwise, and nowhere else. It returns how many traces are where.
func assertWhole(t *testing.T, td ptrace.Traces, spans int, self string, members []string, buf *traceBuffer, gates ...*gate) map[string]int {
	t.Helper()
	r := ring.New(members)
	count := map[string]int{}
	split := 0
	for id, at := range where(td, buf, gates...) {
		owner := r.Members()[r.Owner(ring.Hash(id))]
		if owner == self {
			owner = "here"
		}
		for place := range at {
			count[place]++
		}
		if len(at) != 1 || at[owner] != spans {
			split++
			t.Errorf("trace %x: owner %s, spans at %v, want %d at the owner only", id[:4], owner, at, spans)
		}
	}
	t.Logf("traces by place: %v; not whole at their owner: %d of %d", count, split, td.SpanCount()/spans)
	return count
}

// moveNode is a node of self and members (the gates' addresses) with
// handover on, unpaced, over buf.
func moveNode(t *testing.T, buf Buffer, obs Observer, h func(*HandoverConfig), members ...string) (*Node, string) {
	t.Helper()
	self := "127.0.0.1:1"
	cfg := NewDefaultConfig()
	cfg.Self, cfg.Members.Static, cfg.Drain = self, append([]string{self}, members...), 0
	cfg.Handover.BytesPerSecond = 1 << 40
	cfg.Handover.Timeout = 20 * time.Second
	if h != nil {
		h(&cfg.Handover)
	}
	n, _ := runNode(t, cfg, buf, obs)
	return n, self
}

// handOverAsync runs n.HandOver and returns a channel closed when it
// returned.
func handOverAsync(n *Node) chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.HandOver(context.Background())
	}()
	return done
}

func waitDone(t *testing.T, done chan struct{}, within time.Duration) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(within):
		t.Fatalf("the handover did not return within %v", within)
	}
}

// applySets applies the member sets one after the other under setMu, as
// setMembers does each: a handover waiting in ringMoved sees only the last.
func applySets(n *Node, sets ...[]string) {
	n.setMu.Lock()
	defer n.setMu.Unlock()
	for _, s := range sets {
		n.members = slices.Clone(s)
		n.applyLocked()
	}
}

// TestHandOverMovesToSelf: the member a handover sends to leaves, and in
// the new set this gateway owns some of its traces. Those must stay here,
// whole, to be decided here (nothing else holds a span of them), and the
// rest go to their owner in the new set; none is counted decided here
// for want of a member.
func TestHandOverMovesToSelf(t *testing.T) {
	var w routertest.Workload
	td := w.Batch(40, 2)
	buf := newTraceBuffer(t, td)
	a, g := startGate(t, true), startGate(t, false)
	obs := &countingObserver{}
	n, self := moveNode(t, buf, obs, nil, a.addr)
	done := handOverAsync(n)
	require.Eventually(t, func() bool { return a.calls.Load() > 0 }, 10*time.Second, time.Millisecond)
	n.setMembers([]string{self, g.addr})
	waitDone(t, done, 15*time.Second)

	// A precondition: some of a's traces are this gateway's now.
	r0, r1 := ring.New([]string{self, a.addr}), ring.New([]string{self, g.addr})
	toSelf := 0
	for id := range buf.held() {
		if r0.Members()[r0.Owner(ring.Hash(id))] == a.addr && r1.Members()[r1.Owner(ring.Hash(id))] == self {
			toSelf++
		}
	}
	require.Positive(t, toSelf, "some trace moved from the member that left to this gateway")
	t.Logf("traces of the member that left now owned here: %d", toSelf)
	assertWhole(t, td, 2, self, []string{self, g.addr}, buf, a, g)
	assert.Zero(t, obs.local.Load(), "nothing decided here for want of a member")
}

// TestHandOverTwoMembersLeave: the two members a handover sends to leave
// at once (a rolling restart of two pods, or a DNS answer that drops
// both): their traces go to the owner in the new set.
func TestHandOverTwoMembersLeave(t *testing.T) {
	var w routertest.Workload
	td := w.Batch(20, 2)
	buf := newTraceBuffer(t, td)
	a, b, g := startGate(t, true), startGate(t, true), startGate(t, false)
	obs := &countingObserver{}
	n, self := moveNode(t, buf, obs, nil, a.addr, b.addr)
	n.BeginDrain() // owns nothing: every trace goes to a or b
	done := handOverAsync(n)
	require.Eventually(t, func() bool { return a.calls.Load() > 0 && b.calls.Load() > 0 }, 10*time.Second, time.Millisecond)
	n.setMembers([]string{self, g.addr})
	waitDone(t, done, 15*time.Second)
	count := assertWhole(t, td, 2, self, []string{g.addr}, buf, a, b, g)
	assert.Equal(t, 20, count[g.addr])
	assert.Zero(t, obs.local.Load(), "nothing decided here")
	assert.Equal(t, int64(20), obs.handed.Load(), "each trace counted handed over once")
}

// TestHandOverMembersLeaveOneAfterTheOther: a leaves while b's part still
// waits for its answer, then b leaves too, within one handover.
func TestHandOverMembersLeaveOneAfterTheOther(t *testing.T) {
	var w routertest.Workload
	td := w.Batch(20, 2)
	buf := newTraceBuffer(t, td)
	a, b, g := startGate(t, true), startGate(t, true), startGate(t, false)
	obs := &countingObserver{}
	n, self := moveNode(t, buf, obs, nil, a.addr, b.addr)
	n.BeginDrain()
	done := handOverAsync(n)
	require.Eventually(t, func() bool { return a.calls.Load() > 0 && b.calls.Load() > 0 }, 10*time.Second, time.Millisecond)
	n.setMembers([]string{self, b.addr, g.addr})
	require.Eventually(t, func() bool { return a.ended.Load() > 0 }, 10*time.Second, time.Millisecond, "a's send ends")
	require.Zero(t, b.ended.Load(), "b's part still waits")
	n.setMembers([]string{self, g.addr})
	waitDone(t, done, 15*time.Second)
	assertWhole(t, td, 2, self, []string{g.addr}, buf, a, b, g)
	assert.Zero(t, obs.local.Load(), "nothing decided here")
}

// TestHandOverMemberLeavesAndComesBack: the member a handover sends to
// leaves the set and is back in it before the handover looks (a pod
// restarted in place: out of the headless Service while not ready, back
// at the same address). Its connection was closed with the send waiting
// on it; the set the handover finds is the one it started with.
func TestHandOverMemberLeavesAndComesBack(t *testing.T) {
	var w routertest.Workload
	td := w.Batch(20, 2)
	buf := newTraceBuffer(t, td)
	a, g := startGate(t, true), startGate(t, false)
	obs := &countingObserver{}
	n, self := moveNode(t, buf, obs, nil, a.addr)
	n.BeginDrain()
	done := handOverAsync(n)
	require.Eventually(t, func() bool { return a.calls.Load() > 0 }, 10*time.Second, time.Millisecond)
	a.hold.Store(false) // it answers once back
	applySets(n, []string{self, g.addr}, []string{self, a.addr})
	waitDone(t, done, 15*time.Second)
	count := assertWhole(t, td, 2, self, []string{a.addr}, buf, a, g)
	t.Logf("spans at the member that came back: %d of 40; traces decided here: %d", spanTotal(a.spans()), obs.local.Load())
	assert.Equal(t, 20, count[a.addr], "every trace at the member that came back")
	assert.Zero(t, obs.local.Load(), "nothing decided here from part of its spans")
}

func spanTotal(m map[[16]byte]int) int {
	s := 0
	for _, v := range m {
		s += v
	}
	return s
}

// TestHandOverChangeWhilePaced: the member set changes after the handover
// took a chunk out, while the chunk waits for its turn at
// bytes_per_second, and the new set gives this gateway some of its
// traces. Those must come back here, whole, not go to another member
// (which keeps what is handed to it, while the trace's later spans come
// here).
func TestHandOverChangeWhilePaced(t *testing.T) {
	var w routertest.Workload
	td := w.Batch(40, 2)
	buf := newTraceBuffer(t, td)
	a, g := startGate(t, false), startGate(t, false)
	obs := &countingObserver{}
	self := "127.0.0.1:1"
	cfg := NewDefaultConfig()
	cfg.Self, cfg.Members.Static, cfg.Drain = self, []string{self, a.addr}, 0
	cfg.Handover.BytesPerSecond = 64 << 10 // a chunk waits its bytes on the fake clock
	cfg.Handover.Timeout = 20 * time.Second
	n, clk := runNode(t, cfg, buf, obs)
	t.Cleanup(func() { buf.empty() }) // the shutdown's handover at the end, paced on the fake clock, has nothing to wait for
	done := handOverAsync(n)
	require.Eventually(t, func() bool { return buf.takes.Load() > 0 }, 10*time.Second, time.Millisecond, "a chunk taken out")
	n.setMembers([]string{self, g.addr})
	for {
		select {
		case <-done:
		default:
			clk.Advance(10 * time.Millisecond)
			time.Sleep(time.Millisecond) // let the paced send go
			continue
		}
		break
	}
	// The chunk held a's traces; the others were this gateway's and stay
	// here until the next handover.
	r0, r1 := ring.New([]string{self, a.addr}), ring.New([]string{self, g.addr})
	wrong, toSelf := 0, 0
	for id, at := range where(td, buf, a, g) {
		h := ring.Hash(id)
		want := "here"
		if r0.Members()[r0.Owner(h)] == a.addr {
			if want = r1.Members()[r1.Owner(h)]; want == self {
				want = "here"
				toSelf++
			}
		}
		if !assert.Equal(t, map[string]int{want: 2}, at, "trace %x", id[:4]) {
			wrong++
		}
	}
	t.Logf("%d take(s); traces of the chunk this gateway owns after the change: %d; traces not where they belong: %d of 40",
		buf.takes.Load(), toSelf, wrong)
	require.Positive(t, toSelf, "the change gives this gateway some of the chunk's traces")
	assert.Zero(t, obs.local.Load())
}
