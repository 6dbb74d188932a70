package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tailsift/tailsift/internal/router/routertest"
)

// retakeBuffer is a heldBuffer whose traces given back (IngestAgain) are
// held again: a handover that takes foreign traces out once more finds
// them, as in the real buffer.
type retakeBuffer struct {
	heldBuffer
	again int
}

func (b *retakeBuffer) IngestAgain(_ context.Context, traces []byte, _ func()) (int, error) {
	b.hold(traces)
	b.mu.Lock()
	b.again++
	b.mu.Unlock()
	return 0, nil
}

// TestHandOverFollowsAMemberThatLeaves: the handover sends the traces a
// gateway owns after a ring change, and that gateway leaves the set while
// the send waits for its answer (a rolling restart: it gets SIGTERM and
// leaves DNS; here it never answers, and its connection is closed when it
// leaves). Its traces were given back and decided here, by a gateway that
// holds only part of each: the rolling restart of internal/e2e/scaleout
// split, left incomplete or lost an error or slow trace about one run in
// two. They now go to their owner in the new set, in the same handover.
func TestHandOverFollowsAMemberThatLeaves(t *testing.T) {
	hung, hungAddr := routertest.StartHung(t, "127.0.0.1")
	gws, addrs := routertest.StartGateways(t, "127.0.0.1")
	self := "127.0.0.1:1"
	cfg := NewDefaultConfig()
	cfg.Self, cfg.Members.Static, cfg.Drain = self, []string{self, hungAddr}, 0
	cfg.Handover.BytesPerSecond = 1 << 40
	cfg.Handover.Timeout = 20 * time.Second
	buf := &retakeBuffer{}
	obs := &countingObserver{}
	n, _ := runNode(t, cfg, buf, obs)
	var w routertest.Workload
	buf.hold(encode(t, w.Batch(10, 2)))

	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		n.HandOver(context.Background())
	}()
	require.Eventually(t, func() bool { return hung.Calls() > 0 }, 10*time.Second, time.Millisecond, "the hung member gets the traces")
	n.setMembers([]string{self, addrs[0]}) // it leaves; another gateway is there
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("the handover did not return")
	}
	t.Logf("handover took %v; spans at the new owner %d; given back %d times", time.Since(start), gws.Count(), buf.again)
	assert.Equal(t, 20, gws.Count(), "every span at the new owner")
	assert.Zero(t, obs.local.Load(), "nothing decided here")
	assert.Equal(t, int64(10), obs.handed.Load(), "every trace counted handed over, once")
	buf.heldMu.Lock()
	defer buf.heldMu.Unlock()
	assert.Zero(t, len(buf.held), "traces left here")
}
