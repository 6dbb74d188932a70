package cluster

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tailsift/tailsift/internal/router/routertest"
)

// listingBuffer is a decidingBuffer that counts its listings of decisions.
type listingBuffer struct {
	*decidingBuffer
	lists atomic.Int32
}

func (b *listingBuffer) ForeignDecisions(ctx context.Context, sh int, owns func(uint64) bool) (Decisions, error) {
	b.lists.Add(1)
	return b.decidingBuffer.ForeignDecisions(ctx, sh, owns)
}

// TestDrainForgetsTracesHandedOverLater: a draining gateway's first sweep
// has its traces refused by a (overloaded), and gives them back, noting
// their hashes: their decisions, made here, go at the next sweeps. The
// next sweep hands the traces themselves over to a: no decision of them
// will be made here. Once every decision went and nothing changed, a
// sweep lists nothing (docs/scale-out.md); the hashes of traces handed
// over since must not keep every later sweep listing every decision.
func TestDrainForgetsTracesHandedOverLater(t *testing.T) {
	a := startGate(t, false)
	overloaded := status.Error(codes.ResourceExhausted, "overloaded")
	a.refuse.Store(&overloaded)
	var w routertest.Workload
	buf := &listingBuffer{decidingBuffer: &decidingBuffer{traceBuffer: newTraceBuffer(t, w.Batch(20, 2))}}
	n, _ := moveNode(t, buf, nil, nil, a.addr)
	n.BeginDrain()
	n.HandOver(context.Background())
	require.Len(t, buf.held(), 20, "the traces given back here")
	a.refuse.Store(nil)
	n.HandOver(context.Background()) // hands the traces over
	require.Empty(t, buf.held(), "the traces handed over at the second sweep")
	require.Len(t, a.spans(), 20)

	before := buf.lists.Load()
	for range 3 {
		n.HandOver(context.Background()) // nothing changed
	}
	lists := buf.lists.Load() - before
	t.Logf("decisions listed by 3 sweeps after every trace was handed over and nothing changed: %d times; hashes remembered %d", lists, len(n.givenBack))
	assert.Zero(t, lists, "a sweep lists nothing when every decision went and nothing changed")
	assert.Empty(t, n.givenBack, "the traces handed over are forgotten")
}
