package cluster

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.uber.org/goleak"

	"github.com/tailsift/tailsift/internal/clock/clocktest"
	"github.com/tailsift/tailsift/internal/ring"
	"github.com/tailsift/tailsift/internal/router/routertest"
	"github.com/tailsift/tailsift/internal/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeBuffer records what a node hands it.
type fakeBuffer struct {
	mu       sync.Mutex
	ingested [][]byte
	// again are the requests of ingested that came through IngestAgain
	// (not counted by RED); counted is the spans of the others.
	again     [][]byte
	counted   int
	decisions []Decisions
}

func (b *fakeBuffer) IngestOwned(ctx context.Context, buf []byte, done func()) (int, error) {
	return b.ingest(ctx, buf, done, true)
}

func (b *fakeBuffer) IngestAgain(ctx context.Context, buf []byte, done func()) (int, error) {
	return b.ingest(ctx, buf, done, false)
}

func (b *fakeBuffer) IngestForwarded(ctx context.Context, buf []byte, done func()) (int, error) {
	return b.ingest(ctx, buf, done, true)
}

func (b *fakeBuffer) ingest(_ context.Context, buf []byte, done func(), count bool) (int, error) {
	var batch wire.Batch
	if err := wire.Scan(buf, &batch); err != nil {
		return 0, err
	}
	b.mu.Lock()
	b.ingested = append(b.ingested, append([]byte(nil), buf...))
	if count {
		b.counted += len(batch.Spans)
	} else {
		b.again = append(b.again, b.ingested[len(b.ingested)-1])
	}
	b.mu.Unlock()
	if done != nil {
		done()
	}
	return len(batch.Spans), nil
}

// countedSpans is the spans ingested through IngestOwned, which RED
// counts, and through IngestAgain, which it does not.
func (b *fakeBuffer) countedSpans(t *testing.T) (counted, again int) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, a := range b.again {
		again += len(spansOf(t, a))
	}
	return b.counted, again
}

func (b *fakeBuffer) IngestDecisions(_ context.Context, d *Decisions) error {
	b.mu.Lock()
	b.decisions = append(b.decisions, *d)
	b.mu.Unlock()
	return nil
}

func (*fakeBuffer) Shards() int { return 1 }

func (*fakeBuffer) TakeForeign(context.Context, int, func(uint64) bool, int) (Foreign, bool, error) {
	return Foreign{}, false, nil
}

func (*fakeBuffer) ForeignDecisions(context.Context, int, func(uint64) bool) (Decisions, error) {
	return Decisions{}, nil
}

// traceIDs returns the trace IDs of the spans of buf.
func traceIDs(t *testing.T, buf []byte) map[[16]byte]bool {
	t.Helper()
	var b wire.Batch
	require.NoError(t, wire.Scan(buf, &b))
	out := map[[16]byte]bool{}
	for _, sp := range b.Spans {
		out[sp.TraceID] = true
	}
	return out
}

func startNode(t *testing.T, self string, members []string) (*Node, *fakeBuffer) {
	t.Helper()
	cfg := NewDefaultConfig()
	cfg.Self, cfg.Members.Static, cfg.Drain = self, members, 0
	buf := &fakeBuffer{}
	n, _ := runNode(t, cfg, buf, nil)
	return n, buf
}

// runNode starts a node of cfg over buf on a fake clock at the Unix epoch,
// and shuts it down when the test ends.
func runNode(t *testing.T, cfg Config, buf Buffer, obs Observer) (*Node, *clocktest.Fake) {
	t.Helper()
	cfg.GRPC.TLS.Insecure = true
	clk := clocktest.NewFake(time.Unix(0, 0))
	n := NewNode(cfg, buf, Settings{
		ID: component.MustNewID("tailsift"), Telemetry: componenttest.NewNopTelemetrySettings(), Clock: clk, Observer: obs,
	})
	require.NoError(t, n.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, n.Shutdown(context.Background())) })
	return n, clk
}

func TestNodeOwns(t *testing.T) {
	members := []string{"127.0.0.1:1", "127.0.0.1:2"}
	r := ring.New(members)
	n, _ := startNode(t, members[0], members)
	mine, theirs := 0, 0
	for i := range uint64(200) {
		h := i * 0x9E3779B97F4A7C15
		owned := r.Members()[r.Owner(h)] == members[0]
		assert.Equal(t, owned, n.Owns(h))
		if owned {
			mine++
		} else {
			theirs++
		}
	}
	assert.Positive(t, mine)
	assert.Positive(t, theirs)

	notMember, _ := startNode(t, "127.0.0.1:3", members)
	assert.False(t, notMember.Owns(1), "a gateway that is not a member owns nothing")

	n.BeginDrain()
	for i := range uint64(50) {
		assert.False(t, n.Owns(i*0x9E3779B97F4A7C15), "a draining gateway owns nothing")
	}
}

func TestNodeIngest(t *testing.T) {
	gws, addrs := routertest.StartGateways(t, "127.0.0.1")
	self := "127.0.0.1:1" // nobody listens: the node's own address
	members := []string{self, addrs[0]}
	r := ring.New(members)
	var w routertest.Workload
	td := w.Batch(40, 3)
	body := encode(t, td)

	t.Run("misrouted spans go to their owner", func(t *testing.T) {
		n, buf := startNode(t, self, members)
		got, err := n.Ingest(context.Background(), body, nil)
		require.NoError(t, err)
		assert.Equal(t, 120, got)
		require.Eventually(t, func() bool { return gws.Count() > 0 }, 10*time.Second, 5*time.Millisecond)
		require.Len(t, buf.ingested, 1)
		for id := range traceIDs(t, buf.ingested[0]) {
			assert.Equal(t, self, r.Members()[r.Owner(ring.Hash(id))], "only own traces are buffered")
		}
		require.Eventually(t, func() bool { return gws.Count()+len(spansOf(t, buf.ingested[0])) == 120 }, 10*time.Second, 5*time.Millisecond)
		for _, recv := range gws.Snapshot() {
			assert.Equal(t, addrs[0], r.Members()[r.Owner(ring.Hash(recv[0].TraceID))], "forwarded to the owner")
		}
	})
	t.Run("forwarded spans stay", func(t *testing.T) {
		n, buf := startNode(t, self, members)
		marked := append(AppendControl(nil, &Control{Forwarded: true}), body...)
		got, err := n.Ingest(context.Background(), marked, nil)
		require.NoError(t, err)
		assert.Equal(t, 120, got)
		require.Len(t, buf.ingested, 1)
		assert.Equal(t, body, buf.ingested[0], "the control is stripped, the rest buffered as it is")
	})
	t.Run("decisions are taken in", func(t *testing.T) {
		n, buf := startNode(t, self, members)
		d := Decisions{Kept: []Kept{{ID: [16]byte{1}, Threshold: 7}}, Dropped: []uint64{9}}
		_, err := n.Ingest(context.Background(), AppendControl(nil, &Control{Forwarded: true, Decisions: d}), nil)
		require.NoError(t, err)
		require.Equal(t, []Decisions{d}, buf.decisions)
	})
	t.Run("malformed control", func(t *testing.T) {
		n, buf := startNode(t, self, members)
		bad := AppendControl(nil, &Control{Forwarded: true})
		bad[len(bad)-3] = 0x7f // the version byte
		freed := false
		_, err := n.Ingest(context.Background(), append(bad, body...), func() { freed = true })
		require.ErrorIs(t, err, ErrInvalidControl)
		assert.True(t, freed, "the caller's buffer is given back")
		assert.Empty(t, buf.ingested)
	})
}

// advanceUntil moves clk a second at a time until done is closed.
func advanceUntil(t *testing.T, clk *clocktest.Fake, done <-chan struct{}) {
	t.Helper()
	require.Eventually(t, func() bool {
		clk.Advance(time.Second)
		select {
		case <-done:
			return true
		default:
			return false
		}
	}, 10*time.Second, 5*time.Millisecond)
}

func spansOf(t *testing.T, buf []byte) []wire.Span {
	t.Helper()
	var b wire.Batch
	require.NoError(t, wire.Scan(buf, &b))
	return b.Spans
}

func TestDrainAll(t *testing.T) {
	n, _ := startNode(t, "127.0.0.1:1", []string{"127.0.0.1:1"})
	clk := n.clock.(*clocktest.Fake)
	n.cfg.Drain = 10 * time.Second
	done := make(chan struct{})
	go func() {
		DrainAll(context.Background())
		close(done)
	}()
	advanceUntil(t, clk, done)
	assert.True(t, n.draining.Load())
	assert.GreaterOrEqual(t, clk.Now().Sub(n.drainAt), 10*time.Second, "DrainAll waits for the drain")

	// A drain cut short by its context returns at once.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n2, _ := startNode(t, "127.0.0.1:1", []string{"127.0.0.1:1"})
	n2.cfg.Drain = time.Hour
	n2.Drain(ctx)
	assert.True(t, n2.draining.Load())
}
