package router

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tailsift/tailsift/internal/router/routertest"
)

func TestRouterBatching(t *testing.T) {
	batched := exporterhelper.NewDefaultQueueConfig()
	batched.Batch = configoptional.Some(exporterhelper.BatchConfig{
		FlushTimeout: 100 * time.Millisecond, Sizer: exporterhelper.RequestSizerTypeItems, MinSize: 1024, MaxSize: 2048,
	})
	persistent := batched
	persistent.StorageID = &component.ID{}
	waiting := batched
	waiting.WaitForResult = true
	bySize := batched
	bySize.Batch = configoptional.Some(exporterhelper.BatchConfig{FlushTimeout: time.Second, Sizer: exporterhelper.RequestSizerTypeBytes, MinSize: 1})
	tests := []struct {
		name   string
		queue  configoptional.Optional[exporterhelper.QueueBatchConfig]
		router bool
	}{
		{name: "batch in memory", queue: configoptional.Some(batched), router: true},
		{name: "no batch", queue: configoptional.Some(exporterhelper.NewDefaultQueueConfig())},
		{name: "no queue", queue: configoptional.None[exporterhelper.QueueBatchConfig]()},
		{name: "persistent", queue: configoptional.Some(persistent)},
		{name: "wait for result", queue: configoptional.Some(waiting)},
		{name: "bytes sizer", queue: configoptional.Some(bySize)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lc, q := routerBatching(tt.queue)
			if !tt.router {
				assert.Nil(t, lc)
				assert.Equal(t, tt.queue, q)
				return
			}
			require.NotNil(t, lc)
			assert.Equal(t, lingerConfig{linger: 100 * time.Millisecond, min: 1024, max: 2048}, *lc)
			require.True(t, q.HasValue())
			assert.False(t, q.Get().Batch.HasValue(), "the members' queues batch too")
			assert.Equal(t, batched.QueueSize, q.Get().QueueSize)
		})
	}
}

// TestBatchLeavesWithALaterRequest: a batch about due goes to its queue
// with the next routed request, in that request's goroutine, without the
// router's timer (its linger here is an hour).
func TestBatchLeavesWithALaterRequest(t *testing.T) {
	gw, addrs := routertest.StartGateways(t, "127.0.0.81", "127.0.0.82")
	r := newRouterWith(t, addrs, batching(time.Hour, 1<<30))
	var w routertest.Workload
	sent := map[[8]byte]string{}
	route := func() {
		td := w.Batch(6, 3)
		for id, svc := range routertest.ServiceOf(td) {
			sent[id] = svc
		}
		buf, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
		require.NoError(t, err)
		require.NoError(t, r.Route(t.Context(), buf))
	}
	for range 3 {
		route()
	}
	st := r.state.Load()
	for _, m := range st.members {
		m.pend.mu.Lock()
		require.NotNil(t, m.pend.req, "%s has no batch", m.addr)
		m.pend.since = m.pend.since.Add(-time.Hour)
		m.pend.mu.Unlock()
	}
	r.flushMu.Lock()
	r.setFlushAt(r.flushAt.Add(-time.Hour))
	r.flushMu.Unlock()
	route()
	require.Eventually(t, func() bool { return gw.Count() == len(sent) }, 10*time.Second, 5*time.Millisecond)
	requireDeliveredOnce(t, gw, sent)
	for _, a := range addrs {
		assert.Equal(t, 1, gw.Calls(a), "%s: the four requests' parts are not one batch", a)
	}
	for _, m := range st.members {
		m.pend.mu.Lock()
		assert.Nil(t, m.pend.req, "%s kept a batch", m.addr)
		m.pend.mu.Unlock()
	}
	r.flushMu.Lock()
	assert.True(t, r.flushAt.IsZero(), "the timer is armed with nothing pending")
	r.flushMu.Unlock()
}

// TestBatchRefusedByAFullQueue: when the member's queue is full, the part
// that fills a batch is refused, and the parts batched before it (whose
// requests were acknowledged) stay and are sent later; nothing else is lost.
func TestBatchRefusedByAFullQueue(t *testing.T) {
	gw, addrs := routertest.StartGateways(t, "127.0.0.83")
	st, err := status.New(codes.Unavailable, "overloaded").
		WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(time.Second)})
	require.NoError(t, err)
	gw.Refuse(addrs[0], st.Err())
	var w routertest.Workload
	const perRequest = 6 * 3
	r := newRouterWith(t, addrs, func(s *Settings) {
		batching(200*time.Millisecond, perRequest+1)(s)
		q := s.Queue.Get()
		q.QueueSize, q.NumConsumers = 1, 1
		s.Retry.InitialInterval = 10 * time.Millisecond
	})
	route := func() (map[[8]byte]string, error) {
		td := w.Batch(6, 3)
		buf, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
		require.NoError(t, err)
		return routertest.ServiceOf(td), r.Route(t.Context(), buf)
	}
	sent := map[[8]byte]string{}
	for i := range 4 {
		got, err := route()
		if i == 3 {
			// The first batch (requests 1 and 2) is being retried and holds
			// the queue: the second cannot go.
			require.Error(t, err)
			continue
		}
		require.NoError(t, err, "request %d", i+1)
		for id, svc := range got {
			sent[id] = svc
		}
	}
	require.Eventually(t, func() bool { return gw.Count() == len(sent) }, 10*time.Second, 5*time.Millisecond)
	requireDeliveredOnce(t, gw, sent)
}

// TestBatchNotGrownWhileRefused: once the queue has refused a member's
// batch (its linger ended while the queue was full), requests for that
// member are refused until the queue takes it, instead of growing the batch
// of acknowledged spans.
func TestBatchNotGrownWhileRefused(t *testing.T) {
	gw, addrs := routertest.StartGateways(t, "127.0.0.84")
	st, err := status.New(codes.Unavailable, "overloaded").
		WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(time.Second)})
	require.NoError(t, err)
	gw.Refuse(addrs[0], st.Err())
	var w routertest.Workload
	r := newRouterWith(t, addrs, func(s *Settings) {
		batching(50*time.Millisecond, 1<<30)(s)
		q := s.Queue.Get()
		q.QueueSize, q.NumConsumers = 1, 1
		s.Retry.InitialInterval = 10 * time.Millisecond
	})
	m := r.state.Load().members[0]
	sent := map[[8]byte]string{}
	route := func() error {
		td := w.Batch(6, 3)
		buf, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
		require.NoError(t, err)
		err = r.Route(t.Context(), buf)
		if err == nil {
			for id, svc := range routertest.ServiceOf(td) {
				sent[id] = svc
			}
		}
		return err
	}
	pendingState := func() (empty, refused bool) {
		m.pend.mu.Lock()
		defer m.pend.mu.Unlock()
		return m.pend.req == nil, m.pend.refused
	}
	require.NoError(t, route())
	// The timer queues the first batch; its send is refused and retried in
	// a second, holding the queue's one place.
	require.Eventually(t, func() bool { empty, _ := pendingState(); return empty }, 5*time.Second, time.Millisecond)
	require.NoError(t, route())
	require.Eventually(t, func() bool { _, refused := pendingState(); return refused }, 5*time.Second, time.Millisecond,
		"the second batch was not offered to the full queue")
	require.Error(t, route(), "a request was added to a batch the queue refuses")
	require.Eventually(t, func() bool { return gw.Count() == len(sent) }, 10*time.Second, 5*time.Millisecond)
	requireDeliveredOnce(t, gw, sent)
}

// TestFlushTimerKeptForABatchBegunDuringAScan: a batch that begins while
// flushDue scans the members (which found none pending) keeps the timer
// its beginning armed; stopping it would leave the batch until the next
// request, however long that takes.
func TestFlushTimerKeptForABatchBegunDuringAScan(t *testing.T) {
	_, addrs := routertest.StartGateways(t, "127.0.0.85")
	r := newRouterWith(t, addrs, batching(time.Hour, 1<<30))
	r.flushMu.Lock()
	gen := r.flushGen
	r.flushMu.Unlock()
	// The scan found nothing; then a request begins a batch.
	begun := time.Now()
	r.armFlush(begun.Add(time.Hour))
	r.settleFlush(gen, time.Time{})
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	assert.Equal(t, begun.Add(time.Hour), r.flushAt, "the timer was stopped with a batch pending")
}
