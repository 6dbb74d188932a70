package tailsiftprocessor

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tailsift/tailsift/internal/cluster"
	"github.com/tailsift/tailsift/internal/ring"
	"github.com/tailsift/tailsift/internal/router/routertest"
)

// withControl returns td behind a control ResourceSpans, as the otlp
// receiver hands over a request another gateway sent.
func withControl(td ptrace.Traces, payload []byte) ptrace.Traces {
	out := ptrace.NewTraces()
	out.ResourceSpans().AppendEmpty().Resource().Attributes().PutEmptyBytes(cluster.ControlKey).FromRaw(payload)
	td.ResourceSpans().MoveAndAppendTo(out.ResourceSpans())
	return out
}

func TestProcessorCluster(t *testing.T) {
	gws, addrs := routertest.StartGateways(t, "127.0.0.1")
	self := "127.0.0.1:1"
	cfg := testConfig()
	c := cluster.NewDefaultConfig()
	c.Self, c.Members.Static, c.Drain = self, []string{self, addrs[0]}, 0
	c.GRPC.TLS.Insecure = true
	cfg.Cluster = configoptional.Some(c)
	h := newHarness(t, cfg, nil)
	r := ring.New(c.Members.Static)
	owner := func(n uint64) string { return r.Members()[r.Owner(ring.Hash(traceID(n)))] }
	var mine, theirs uint64
	for n := uint64(1); mine == 0 || theirs == 0; n++ {
		if owner(n) == self && mine == 0 {
			mine = n
		} else if owner(n) != self && theirs == 0 {
			theirs = n
		}
	}

	t.Run("misrouted spans are forwarded", func(t *testing.T) {
		require.NoError(t, h.p.ConsumeTraces(context.Background(), batch(errorTrace(theirs)...)))
		require.Eventually(t, func() bool { return gws.Count() == 3 }, 10*time.Second, 5*time.Millisecond)
		h.advance(time.Minute)
		h.advance(time.Second)
		assert.Empty(t, h.spansOf(theirs), "not decided here")
	})
	t.Run("forwarded spans are kept, the control stripped", func(t *testing.T) {
		marked := withControl(batch(errorTrace(theirs+1000)...), []byte{1, 1, 0, 0})
		require.NoError(t, h.p.ConsumeTraces(context.Background(), marked))
		h.advance(time.Minute)
		h.advance(time.Second)
		assert.Len(t, h.spansOf(theirs+1000), 3, "kept here whoever owns it")
		for _, td := range h.sink.AllTraces() {
			for _, rs := range td.ResourceSpans().All() {
				_, has := rs.Resource().Attributes().Get(cluster.ControlKey)
				assert.False(t, has, "the control is never exported")
			}
		}
	})
	t.Run("own traces are decided here", func(t *testing.T) {
		require.NoError(t, h.p.ConsumeTraces(context.Background(), batch(errorTrace(mine)...)))
		h.advance(time.Minute)
		h.advance(time.Second)
		assert.Len(t, h.spansOf(mine), 3)
	})
	t.Run("a malformed control is invalid", func(t *testing.T) {
		err := h.p.ConsumeTraces(context.Background(), withControl(batch(errorTrace(mine+1)...), []byte{9, 0, 0, 0}))
		require.Error(t, err)
		assert.True(t, consumererror.IsPermanent(err))
		assert.Equal(t, codes.InvalidArgument, status.Code(err))
	})
}
