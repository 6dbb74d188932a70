package router

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"
)

// The router batches each member's parts itself, in the routing goroutine,
// when the sending queue asks for batching in memory (sending_queue::batch
// set, no storage, no wait_for_result): the member's queue then gets one
// request per batch instead of one per routed request. exporterhelper's
// batcher sits behind the queue: each part handed to it woke the queue's
// consumer, and each batch was flushed by its own timer, in its own
// wake-up, apart from the requests' (the route agent's CPU is mostly such
// wake-ups, not spans). Here a batch is flushed by the request that fills
// it or that arrives in the last quarter of its linger, so under steady
// load the flushes ride on the requests' wake-ups; one timer per router
// flushes what is left when requests stop.

// lingerConfig is the router's batching, from sending_queue::batch.
type lingerConfig struct {
	linger   time.Duration
	min, max int // spans; max 0 is no limit
}

// due is the age from which a batch goes out with the next request.
func (c *lingerConfig) due() time.Duration { return c.linger - c.linger/4 }

// routerBatching returns the router's batching for q, and the queue
// configuration its members' exporterhelper gets: q without its batch when
// the router batches, q as it is otherwise (no queue, a persistent one,
// wait_for_result, or a sizer other than items).
func routerBatching(q configoptional.Optional[exporterhelper.QueueBatchConfig]) (*lingerConfig, configoptional.Optional[exporterhelper.QueueBatchConfig]) {
	if !q.HasValue() {
		return nil, q
	}
	qc := *q.Get()
	if !qc.Batch.HasValue() || qc.StorageID != nil || qc.WaitForResult {
		return nil, q
	}
	b := qc.Batch.Get()
	if b.Sizer != exporterhelper.RequestSizerTypeItems || b.FlushTimeout <= 0 {
		return nil, q
	}
	lc := &lingerConfig{linger: b.FlushTimeout, min: int(b.MinSize), max: int(b.MaxSize)}
	qc.Batch = configoptional.None[exporterhelper.BatchConfig]()
	return lc, configoptional.Some(qc)
}

// pending is a member's batch that has not gone to its queue yet.
type pending struct {
	mu    sync.Mutex
	req   *request // nil when empty
	since time.Time
	// refused: the queue refused req when it was last offered. Nothing is
	// added until it takes req, so that what waits here stays bounded
	// while the queue is full.
	refused bool
}

// add puts req in m's batch, and hands the batch to m's queue when it
// holds the minimum size. It fails when the queue refuses; req is then not
// in the batch (the spans batched before it stay there, for a later flush),
// and later requests are refused too until the queue takes the batch.
func (m *member) add(ctx context.Context, req *request) (err error) {
	lc := m.r.batch
	if lc == nil {
		return m.enqueue(ctx, req)
	}
	m.closing.RLock()
	defer m.closing.RUnlock()
	if m.closed {
		return errMemberClosed
	}
	ctx, done, closed := m.untilDrain(ctx)
	defer func() { done(); err = closed(err) }()
	if lc.max > 0 && req.spans > lc.max {
		// Larger than a batch may be: in batches of its own. (Its size is
		// within MaxRequestBytes already: route cut it so.)
		reqs, err := req.split(lc.max)
		if err != nil {
			return err
		}
		for _, r := range reqs {
			if err := m.queue(ctx, r.(*request)); err != nil {
				return err
			}
		}
		return nil
	}
	p := &m.pend
	p.mu.Lock()
	defer p.mu.Unlock()
	maxBytes := m.r.cfg.MaxRequestBytes
	if p.req != nil && (p.refused || lc.max > 0 && p.req.spans+req.spans > lc.max || maxBytes > 0 && p.req.size+req.size > maxBytes) {
		// req does not fit: the batch goes first.
		if err := m.queue(ctx, p.req); err != nil {
			p.refused = true
			return err
		}
		p.req, p.refused = nil, false
	}
	if p.req == nil {
		if req.spans >= lc.min {
			return m.queue(ctx, req)
		}
		p.req, p.since = req, time.Now()
		m.r.armFlush(p.since.Add(lc.linger))
		return nil
	}
	pieces, spans, size, pooled := len(p.req.bufs), p.req.spans, p.req.size, p.req.pooled
	p.req.merge(req)
	if p.req.spans < lc.min && (maxBytes <= 0 || p.req.size < maxBytes) {
		return nil
	}
	if err := m.queue(ctx, p.req); err != nil {
		// Refuse req only: the caller retries it.
		p.req.bufs, p.req.spans, p.req.size, p.req.pooled = p.req.bufs[:pieces], spans, size, pooled
		p.refused = true
		return err
	}
	p.req = nil
	return nil
}

// queue hands req to m's sending queue.
func (m *member) queue(ctx context.Context, req *request) error {
	return m.helper.ConsumeTraces(context.WithValue(ctx, routedKey{}, req), ptrace.NewTraces())
}

// flushDue hands each member's batch that is at least old to its queue,
// and arms the router's timer for the oldest batch left. A batch its queue
// refused stays, for the next try.
func (r *Router) flushDue(ctx context.Context, st *state, now time.Time, old time.Duration) {
	r.flushMu.Lock()
	gen := r.flushGen
	r.flushMu.Unlock()
	var next time.Time
	for _, m := range st.members {
		if t := m.flushIfOlder(ctx, now, old); !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	r.settleFlush(gen, next)
}

// mayBeDue reports whether a batch may be due at now, so that a request
// scans the members (flushDue) only then: the timer's time is the oldest
// batch's beginning plus the linger, or earlier (a batch that went out
// full leaves it until the next scan). With many members, batches begin at
// scattered times and one is about due at almost every request: requests
// then scan at most every scanQuantum of the linger, which sends a due
// batch that much later at most, still before its linger ends. If it
// reports true, the caller scans: the next scan is a quantum later.
func (r *Router) mayBeDue(now time.Time) bool {
	at := r.flushDueAt.Load()
	t := int64(now.Sub(r.epoch))
	if at == 0 || at-int64(r.batch.linger/4) > t || t-r.scannedAt.Load() < int64(r.batch.linger/scanQuantum) {
		return false
	}
	r.scannedAt.Store(t)
	return true
}

// scanQuantum: requests scan the members at most linger/scanQuantum apart
// (12.5 ms with the default 200 ms), a small part of the last quarter of
// the linger in which they send due batches.
const scanQuantum = 16

// setFlushAt records when the timer fires; flushMu is held.
func (r *Router) setFlushAt(at time.Time) {
	r.flushAt = at
	if at.IsZero() {
		r.flushDueAt.Store(0)
	} else {
		r.flushDueAt.Store(max(int64(at.Sub(r.epoch)), 1))
	}
}

// settleFlush sets the router's timer for the oldest batch, begun at next
// (zero: none), as a scan that started at arming generation gen found it.
// When a batch began during the scan (the generation moved on), its arming
// stands: the timer is only brought forward, never stopped or put off.
func (r *Router) settleFlush(gen uint64, next time.Time) {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	at := time.Time{}
	if !next.IsZero() {
		at = next.Add(r.batch.linger)
	}
	switch {
	case r.flushGen != gen:
		if !at.IsZero() && (r.flushAt.IsZero() || at.Before(r.flushAt)) {
			r.setFlushAt(at)
			r.flushTimer.Reset(max(time.Until(at), 0))
		}
	case at.IsZero():
		r.flushTimer.Stop()
		r.setFlushAt(time.Time{})
	case !r.flushAt.Equal(at):
		r.setFlushAt(at)
		r.flushTimer.Reset(max(time.Until(at), 0))
	}
}

// flushIfOlder queues m's batch when it is older than old, and returns when
// the batch still pending began (zero when none is).
func (m *member) flushIfOlder(ctx context.Context, now time.Time, old time.Duration) time.Time {
	if m.helper == nil {
		return time.Time{}
	}
	m.closing.RLock()
	defer m.closing.RUnlock()
	if m.closed {
		return time.Time{}
	}
	ctx, done, _ := m.untilDrain(ctx)
	defer done()
	p := &m.pend
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.req == nil {
		return time.Time{}
	}
	if now.Sub(p.since) >= old {
		err := m.queue(ctx, p.req)
		if err == nil {
			p.req, p.refused = nil, false
			return time.Time{}
		}
		m.logger.Debug("Sending queue refused a batch; it is tried again", zap.Error(err))
		p.since, p.refused = now, true // try again one linger from now
	}
	return p.since
}

// armFlush makes the router's timer fire by at.
func (r *Router) armFlush(at time.Time) {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	r.flushGen++
	if r.flushAt.IsZero() || at.Before(r.flushAt) {
		r.setFlushAt(at)
		r.flushTimer.Reset(max(time.Until(at), 0))
	}
}

// onFlushTimer flushes the batches whose linger has (about) ended: requests
// stopped before one came to flush them.
func (r *Router) onFlushTimer() {
	r.flushMu.Lock()
	r.setFlushAt(time.Time{})
	r.flushMu.Unlock()
	if st := r.state.Load(); st != nil {
		r.flushDue(context.Background(), st, time.Now(), r.batch.due())
	}
}

// drainPending hands m's batch to its queue as m stops (m.closed is set,
// nothing is added any more), or, when the queue refuses it, sends it now:
// the batch holds spans that were acknowledged.
func (m *member) drainPending(ctx context.Context) {
	p := &m.pend
	p.mu.Lock()
	req := p.req
	p.req, p.refused = nil, false
	p.mu.Unlock()
	if req == nil {
		return
	}
	if err := m.queue(ctx, req); err == nil {
		return
	}
	if err := m.push(ctx, req); err != nil {
		m.logger.Error("Dropped a batch at shutdown", zap.Int("spans", req.spans), zap.Error(err))
	}
}
