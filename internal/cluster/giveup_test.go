package cluster

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"

	"github.com/tailsift/tailsift/internal/router/routertest"
)

// hungGateway accepts connections and requests and never answers: each
// Export waits until the test ends (a gateway stuck in a full disk, a
// paused VM, a half-open connection).
type hungGateway struct {
	ptraceotlp.UnimplementedGRPCServer
	calls   atomic.Int32
	release chan struct{}
}

func (g *hungGateway) Export(ctx context.Context, _ ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	g.calls.Add(1)
	select {
	case <-g.release:
	case <-ctx.Done():
	}
	return ptraceotlp.NewExportResponse(), ctx.Err()
}

// startHungGateway starts a hungGateway on loopback and returns its address.
func startHungGateway(t *testing.T) (*hungGateway, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	g := &hungGateway{release: make(chan struct{})}
	srv := grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(srv, g)
	go func() { _ = srv.Serve(l) }()
	var once sync.Once
	t.Cleanup(func() {
		once.Do(func() { close(g.release) })
		srv.Stop()
	})
	return g, l.Addr().String()
}

// hungPair is a node of self (nobody listens there) and a hung gateway,
// with handover on, unpaced, and handover.timeout timeout, over a
// heldBuffer holding 10 undecided traces (20 spans) the hung gateway owns.
func hungPair(t *testing.T, timeout time.Duration) (*Node, *heldBuffer, *hungGateway) {
	t.Helper()
	g, addr := startHungGateway(t)
	cfg := NewDefaultConfig()
	cfg.Self, cfg.Members.Static, cfg.Drain = "127.0.0.1:1", []string{"127.0.0.1:1", addr}, 0
	cfg.Handover.BytesPerSecond = 1 << 40
	cfg.Handover.Timeout = timeout
	buf := &heldBuffer{}
	n, _ := runNode(t, cfg, buf, nil)
	var w routertest.Workload
	buf.hold(encode(t, w.Batch(10, 2)))
	return n, buf, g
}

// givenBack is the spans buf took back (the traces the handover could not
// hand over, to be decided here).
func givenBack(t *testing.T, buf *heldBuffer) int {
	t.Helper()
	buf.mu.Lock()
	defer buf.mu.Unlock()
	n := 0
	for _, b := range buf.ingested {
		n += len(spansOf(t, b))
	}
	return n
}

// TestHandOverToHungMemberGivesUp: after a ring change, the handover takes
// the traces the other gateway now owns out of the buffer and sends them.
// That gateway accepts the connection and never answers. The traces must
// be handed over or given back, to be decided here, within
// handover.timeout: they are undecided (an error trace among them is kept
// only if it is decided somewhere).
func TestHandOverToHungMemberGivesUp(t *testing.T) {
	const timeout = 300 * time.Millisecond
	n, buf, g := hungPair(t, timeout)
	start := time.Now()
	n.HandOver(context.Background())
	took := time.Since(start)
	assert.Less(t, took, timeout+time.Second, "the handover keeps its timeout")
	ok := assert.Eventually(t, func() bool { return givenBack(t, buf) == 20 }, timeout+3*time.Second, 10*time.Millisecond)
	t.Logf("handover returned after %v; spans given back %v after it: %d of 20; the member was called %d times",
		took, time.Since(start)-took, givenBack(t, buf), g.calls.Load())
	require.True(t, ok, "the 20 spans taken out for a member that never answers are given back within 3 s of the handover's %v timeout", timeout)
	_, again := buf.countedSpans(t)
	assert.Equal(t, 20, again, "given back as spans taken in once already (not counted again by RED)")
}
