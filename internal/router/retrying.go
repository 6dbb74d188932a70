package router

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.uber.org/zap"
)

// exporterhelper retries a send that push returns as retryable (an
// overloaded member's UNAVAILABLE with a RetryInfo, which is also what a
// tailsift gateway answers as it shuts down; a time-out) after a back-off,
// in its retry sender. When the member's exporterhelper shuts down (the
// member left the set, or the router stops), the retry sender gives up the
// sends waiting in back-off and the in-memory queue drops them: another
// member up could have taken them. The member therefore remembers the
// requests it left to a retry; what its shutdown finds there was given up,
// and fails over as a refused send does (member.drain).

// errRetryStopped is the cause of a failover of a send whose retry a
// shutdown stopped.
var errRetryStopped = errors.New("retry stopped by the member's shutdown")

// retrying is a member's requests waiting in exporterhelper's retry
// back-off, with when each was last sent (Router.since).
type retrying struct {
	mu      sync.Mutex
	reqs    map[*request]int64
	sweptAt int64
}

// retryLater returns err, push's error for req, to exporterhelper, and
// remembers req when exporterhelper will retry it from its in-memory queue
// (with a persistent queue a shutdown keeps it for the next start; without
// a queue, or with wait_for_result, the caller gets the error).
func (m *member) retryLater(req *request, err error) error {
	q := m.r.queue.Get()
	if !m.r.cfg.Retry.Enabled || !m.r.queue.HasValue() || q.StorageID != nil || q.WaitForResult ||
		consumererror.IsPermanent(err) {
		return err
	}
	m.retry.add(req, m.r.since(), m.r.cfg.Retry.MaxElapsedTime)
	return err
}

// add remembers req, sent at now. Requests not sent again for maxElapsed
// (exporterhelper's retry budget; 0: none) were given up by the retry
// sender: they are forgotten, at most once per maxElapsed.
func (r *retrying) add(req *request, now int64, maxElapsed time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.reqs == nil {
		r.reqs, r.sweptAt = map[*request]int64{}, now
	}
	if maxElapsed > 0 && time.Duration(now-r.sweptAt) > maxElapsed {
		for q, at := range r.reqs {
			if time.Duration(now-at) > maxElapsed {
				delete(r.reqs, q)
			}
		}
		r.sweptAt = now
	}
	r.reqs[req] = now
}

// forget drops req: it is being sent again.
func (r *retrying) forget(req *request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.reqs, req)
}

// take returns the requests remembered, and forgets them.
func (r *retrying) take() []*request {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*request, 0, len(r.reqs))
	for q := range r.reqs {
		out = append(out, q)
	}
	r.reqs = nil
	return out
}

// sendClosing sends data to m directly, not through its queue, which is
// closed: a part failed over to m while the router shuts down, when every
// member's queue is closed but their connections are open until all are
// drained. It is bounded by the send timeout and by the deadline of the
// router's Shutdown.
func (m *member) sendClosing(ctx context.Context, data []byte) error {
	if m.stopped() {
		return errMemberClosed
	}
	ctx, cancel := m.bounded(ctx)
	defer cancel()
	start := m.r.since()
	err := m.sendRetrying(ctx, [][]byte{data})
	m.sent(start, err)
	return err
}

// bounded returns ctx bounded by the send timeout and by the deadline of
// the router's Shutdown (r.done), for a send outside the member's queue.
func (m *member) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	timeout := func() {}
	if d := m.r.cfg.Timeout.Timeout; d > 0 {
		ctx, timeout = context.WithTimeout(ctx, d)
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(m.r.done, cancel)
	return ctx, func() { stop(); cancel(); timeout() }
}

// failoverRetries fails over the requests m left to a retry, which its
// exporterhelper's shutdown gave up. What no member takes (none is up) is
// tried again every probe interval, as the probes find members up, until
// ctx's deadline; without a deadline, once. It returns what was dropped.
func (m *member) failoverRetries(ctx context.Context) error {
	left := m.retry.take()
	var err error
	for round := 0; len(left) > 0; round++ {
		var again []*request
		for _, req := range left {
			if round > 0 && !m.down.Load() {
				// m came back (its probe found it up): it takes its own.
				if err = m.sendClosing(ctx, req.bytes()); err == nil {
					req.release()
					continue
				}
			}
			if err = m.failover(ctx, req, errRetryStopped); err != nil {
				again = append(again, req)
			}
		}
		left = again
		if len(left) == 0 || !waitRetry(ctx, m.r.cfg.Failover.ProbeInterval) {
			break
		}
	}
	if len(left) == 0 {
		return nil
	}
	spans := 0
	for _, req := range left {
		spans += req.spans
	}
	m.logger.Error("Dropped requests in retry back-off at shutdown: no member took them", zap.Int("requests", len(left)), zap.Int("spans", spans), zap.Error(err))
	return fmt.Errorf("%d spans in retry back-off dropped at shutdown: %w", spans, err)
}

// waitRetry waits d, and reports whether there is time for another try:
// ctx has a deadline that has not passed.
func waitRetry(ctx context.Context, d time.Duration) bool {
	if _, ok := ctx.Deadline(); !ok {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
