package router

import (
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A member that accepts the connection and never answers (a wedged
// process, a black-holed address behind a proxy that accepts) is not
// refused: each send times out. Such a send used to be retried by
// exporterhelper until its retry budget ended (5 minutes by default), and
// then dropped: neither failed over to the next member nor given to
// Settings.Fallback. A member that leaves Failover.Timeouts sends in a row
// unanswered until they time out, and answers no other send meanwhile, is
// hung: marked down like a refusing member, so that its queue fails over
// (or falls back) and it is probed until it answers. A busy member that
// answers some sends while others time out is not: any answer clears the
// count, and a timed-out send that began before an answer does not count.
// A send that timed out may have been taken: what fails over then arrives
// twice (at least once).

// since is the time now on the router's monotonic clock, in nanoseconds
// since it was made (never 0).
func (r *Router) since() int64 { return int64(time.Since(r.epoch)) + 1 }

// answered records an answer of the member.
func (m *member) answered() {
	m.answeredAt.Store(m.r.since())
	m.unanswered.Store(0)
}

// sent records how a send that began at start (since) ended. unanswered:
// it timed out after at least half the send timeout (the router's, or a
// caller's shorter deadline) without an answer. hung: the member has now
// left Failover.Timeouts sends in a row unanswered, and answered no other
// send since this one began.
func (m *member) sent(start int64, err error) (unanswered, hung bool) {
	switch code := status.Code(err); {
	case err == nil:
		m.answered()
		return false, false
	case isDown(err), code == codes.Canceled:
		// Refused, or given up by the caller: neither an answer nor a
		// time-out.
		return false, false
	case code != codes.DeadlineExceeded:
		// An answer: a refusal, or an overloaded member asking for a
		// later retry.
		m.answered()
		return false, false
	}
	if time.Duration(m.r.since()-start) < m.r.cfg.Timeout.Timeout/2 {
		return false, false // a caller's short deadline
	}
	if m.answeredAt.Load() >= start {
		return true, false // it answered another send meanwhile: slow, not hung
	}
	n := m.unanswered.Add(1)
	limit := m.r.cfg.Failover.Timeouts
	return true, limit > 0 && n >= int64(limit)
}
