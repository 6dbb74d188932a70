// Package router sends OTLP trace bytes to the member that owns each trace:
// it splits an encoded batch by trace ID on a consistent-hash ring
// (internal/ring), and sends each member its part over gRPC, through
// exporterhelper's queue and retries, as bytes. A member that refuses
// connections or answers UNAVAILABLE past a short retry, or leaves its
// sends unanswered until they time out (hung.go), is marked down, and its
// spans go to the next member in hash order until a probe finds it again.
//
// The tailsift exporter is a Router behind a pdata adapter. A gateway that
// forwards misrouted spans or hands traces over uses one the same way, on
// the bytes it already has: New, Start, SetMembers from a membership.Watcher,
// Route, Shutdown.
package router // import "github.com/tailsift/tailsift/internal/router"

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.uber.org/zap"

	"github.com/tailsift/tailsift/internal/ring"
)

// Settings are what a Router sends with; the embedding component's config
// holds them, validated.
type Settings struct {
	// GRPC is the client each member's connection is made from, with the
	// member's address as endpoint.
	GRPC configgrpc.ClientConfig
	// Failover says when a member is marked down and how it is probed.
	Failover FailoverConfig
	// Timeout bounds one send.
	Timeout exporterhelper.TimeoutConfig
	// Queue is each member's sending queue.
	Queue configoptional.Optional[exporterhelper.QueueBatchConfig]
	// Retry retries refusals other than "down".
	Retry configretry.BackOffConfig
	// Prefix, when set, is put at the head of every request the router
	// sends: encoded TracesData fields, such as a gateway's control that
	// marks its spans forwarded (internal/cluster).
	Prefix []byte
	// MaxRequestBytes caps the size of each request sent to a member, its
	// encoded ExportTraceServiceRequest before compression (a gRPC server's
	// receive limit applies to the decompressed message); 0 is no cap. A
	// member's share of a routed request above it is cut in several
	// requests, a batch is sent before it would grow above it, and a span
	// that alone is bigger is sent in a request of its own
	// (Observer.Oversized).
	MaxRequestBytes int
	// Strict makes Route, RouteWith and Forward fail with ErrAllDown,
	// queueing nothing, when a span's owner and every member after it are
	// down. Otherwise the owner's queue holds such spans for its retries
	// (an agent has nowhere else to keep them).
	Strict bool
	// Fallback, when set, takes back what no member can take: a request
	// whose member is down with no other member up for its spans, a
	// request without spans (a gateway's handed-over decisions, which no
	// other member can be chosen for) whose member is down, and what a
	// member had not sent when Shutdown's deadline came. data is the
	// request as it would have been sent, the caller's for the call only.
	// A gateway buffers it itself. Without Fallback such a request waits
	// for its member's retries, and is dropped at the deadline.
	Fallback func(ctx context.Context, data []byte) error
	// Reprefix, when set, gives the prefix a request's spans keep when
	// they fail over to another member, from the request as it was queued
	// (data, the caller's for the call only); Prefix when it returns nil.
	// A gateway keeps its control's marks that way (relayed, handed over).
	Reprefix func(data []byte) []byte
	// Downgrade, when set, is asked for another encoding of a request a
	// member refused as malformed (INVALID_ARGUMENT), which is sent in its
	// place once; nil when there is none. A gateway takes a mark an older
	// version does not know off its control that way, during an upgrade.
	Downgrade func(data []byte) []byte
}

// Observer is told what the router does, for self-metrics.
type Observer interface {
	// Routed: spans handed to member's queue (or sent to it at once:
	// RouteNow), of which rerouted because their owner was down. A
	// failover from another member's queue reports its rerouted spans
	// with spans 0 as it is routed: they were counted routed at the
	// member they were first handed to (and are again at a member whose
	// queue takes a part it did not take at once).
	Routed(ctx context.Context, member string, spans, rerouted int)
	// MembersUp and Members change by delta.
	MembersUp(delta int)
	Members(delta int)
	// Oversized: spans handed to member's queue each in a request of its
	// own, bigger than Settings.MaxRequestBytes though it is.
	Oversized(ctx context.Context, member string, spans int)
}

// ErrNoMembers is returned by Route before the first member set.
var ErrNoMembers = errors.New("no member known yet")

// ErrAllDown is returned by Route with Settings.Strict when some span has no
// member up.
var ErrAllDown = errAllDown

// state is one member set: its ring and, in the ring's member order, the
// members. It is replaced whole when the set changes.
type state struct {
	ring    *ring.Ring
	members []*member
}

func (s *state) down(i int) bool { return s.members[i].down.Load() }

// Router routes encoded traces to members. Its methods are safe for
// concurrent use.
type Router struct {
	cfg  Settings
	set  exporter.Settings
	obs  Observer
	host component.Host

	state     atomic.Pointer[state]
	changeMu  sync.Mutex     // serializes member set changes and Shutdown
	closed    bool           // guarded by changeMu
	retiring  sync.WaitGroup // shutdowns of members no longer in the set
	splitters sync.Pool

	// batch is the router's own batching of each member's parts
	// (linger.go), nil when the members' queues batch, or do not.
	batch *lingerConfig
	// queue is the members' sending queue: cfg.Queue, without its batch
	// when the router batches.
	queue      configoptional.Optional[exporterhelper.QueueBatchConfig]
	flushMu    sync.Mutex
	flushTimer *time.Timer // flushes what requests left; stopped when nothing is pending
	flushAt    time.Time   // when flushTimer fires, zero when stopped; guarded by flushMu
	// flushDueAt is flushAt in nanoseconds since epoch (0: zero; both on
	// the monotonic clock), written under flushMu, read without it by
	// each request (mayBeDue).
	flushDueAt atomic.Int64
	scannedAt  atomic.Int64 // a request's last scan, in ns since epoch
	epoch      time.Time
	flushGen   uint64 // counts armFlush calls; guarded by flushMu
	// done is cancelled at Shutdown's deadline: it ends the sends made
	// directly to members whose queues are closed (sendClosing), and the
	// drains of members that left the set (retire).
	done       context.Context //nolint:containedctx // a signal, not a request's context
	cancelDone context.CancelFunc
}

// New returns a router. set names it (each member's exporterhelper reports
// as set.ID with the member's address appended) and carries its telemetry.
func New(set exporter.Settings, cfg Settings, obs Observer) *Router {
	r := &Router{cfg: cfg, set: set, obs: obs, splitters: sync.Pool{New: func() any { return new(splitter) }}, epoch: time.Now()}
	r.done, r.cancelDone = context.WithCancel(context.Background())
	r.batch, r.queue = routerBatching(cfg.Queue)
	r.scannedAt.Store(math.MinInt64 / 2) // never
	if r.batch != nil {
		r.flushTimer = time.AfterFunc(time.Hour, r.onFlushTimer)
		r.flushTimer.Stop()
	}
	return r
}

// Start records the host, whose extensions the members' connections use.
// Call it before SetMembers.
func (r *Router) Start(host component.Host) { r.host = host }

// SetMembers makes addrs the member set: members that stay keep their
// connection and queue, new ones are started, and the ones that left drain
// their queues in the background (failing over to the new set). It suits
// membership.Watcher's onChange.
func (r *Router) SetMembers(addrs []string) {
	r.changeMu.Lock()
	defer r.changeMu.Unlock()
	if r.closed {
		return
	}
	old := map[string]*member{}
	prev := 0
	if st := r.state.Load(); st != nil {
		prev = len(st.members)
		for _, m := range st.members {
			old[m.addr] = m
		}
	}
	next := &state{ring: ring.New(addrs)}
	for _, addr := range next.ring.Members() {
		m, ok := old[addr]
		if ok {
			delete(old, addr)
		} else {
			var err error
			if m, err = r.newMember(context.Background(), addr); err != nil {
				r.set.Logger.Error("Cannot add member; its traces go to the next member", zap.Error(err))
				m = &member{addr: addr}
				m.down.Store(true)
			} else {
				r.obs.MembersUp(1)
			}
		}
		next.members = append(next.members, m)
	}
	r.state.Store(next)
	r.obs.Members(len(next.members) - prev)
	for _, m := range old {
		r.retire(m)
	}
}

func (r *Router) retire(m *member) {
	if m.helper == nil {
		return
	}
	r.retiring.Add(1)
	go func() {
		defer r.retiring.Done()
		ctx, cancel := context.WithTimeout(context.Background(), r.cfg.Timeout.Timeout+r.cfg.Failover.ProbeInterval)
		defer cancel()
		// Shutdown waits for this drain: its deadline ends it too.
		defer context.AfterFunc(r.done, cancel)()
		if err := m.shutdown(ctx); err != nil {
			r.set.Logger.Warn("Draining a member that left", zap.String("member", m.addr), zap.Error(err))
		}
	}()
}

// Route sends the spans of buf, an encoded TracesData or
// ExportTraceServiceRequest, to their owners, or to the next member up in
// hash order when the owner is down. When every member is down the owners'
// queues hold the spans. Malformed input is a permanent error.
func (r *Router) Route(ctx context.Context, buf []byte) error {
	return r.RouteWith(ctx, buf, r.cfg.Prefix)
}

// RouteWith is Route with prefix at the head of every request instead of
// Settings.Prefix (a failover reroute puts Settings.Prefix back, or what
// Settings.Reprefix gives).
func (r *Router) RouteWith(ctx context.Context, buf, prefix []byte) error {
	_, _, err := r.routeNew(ctx, buf, prefix)
	return err
}

// Forward is Route for an agent's receiver, which hands over the OTLP
// request bytes it received: it also returns the number of spans in buf
// (0 when buf is malformed), for the receiver's own accounting, and how
// many of them it did not send for their bad IDs (every gateway refuses
// those; the receiver reports them refused, as a gateway would). The parts it
// queues are copies: buf is the caller's again once Forward returns. When
// some parts were queued and others refused (a full queue), the error is
// returned and a retry of the whole request sends the queued spans twice;
// the gateways drop the duplicates of kept traces.
func (r *Router) Forward(ctx context.Context, buf []byte) (spans, invalid int, err error) {
	return r.routeNew(ctx, buf, r.cfg.Prefix)
}

// RouteEncoded is Route for buf encoded by this process from spans that
// wire.Scan accepted (a tailsift buffer's output batch, output::exporter),
// holding spans spans. With one member and no prefix, buf goes to that
// member whole (copied; it is the caller's again on return), without the
// split's scan: a gateway's one backend gets each kept request as it is.
// Otherwise it is Route.
func (r *Router) RouteEncoded(ctx context.Context, buf []byte, spans int) error {
	st := r.state.Load()
	if st == nil || len(st.members) != 1 || len(r.cfg.Prefix) > 0 ||
		(r.cfg.MaxRequestBytes > 0 && len(buf) > r.cfg.MaxRequestBytes) {
		return r.Route(ctx, buf)
	}
	data := append(getBuffer(len(buf)), buf...)
	return r.sendParts(ctx, st, []part{{member: 0, data: data, spans: spans}}, &targets{ring: st.ring, down: st.down})
}

// MayWait reports whether Forward and Route may wait, for room in a
// member's queue (block_on_overflow, wait_for_result) or, without a queue,
// for the send itself: only then does their context's deadline matter.
func (r *Router) MayWait() bool {
	q := r.cfg.Queue.Get()
	return !r.cfg.Queue.HasValue() || q.BlockOnOverflow || q.WaitForResult
}

func (r *Router) routeNew(ctx context.Context, buf, prefix []byte) (spans, invalid int, err error) {
	st := r.state.Load()
	if st == nil || st.ring.Len() == 0 {
		return 0, 0, ErrNoMembers
	}
	return r.route(ctx, st, buf, &targets{ring: st.ring, down: st.down, strict: r.cfg.Strict, prefix: prefix})
}

// Send hands data, an encoded TracesData holding spans spans, to the
// sending queue of member as it is: no split, no prefix. It fails when
// member is not in the set or is down.
func (r *Router) Send(ctx context.Context, member string, data []byte, spans int) error {
	st := r.state.Load()
	if st == nil {
		return ErrNoMembers
	}
	i := st.ring.Index(member)
	if i < 0 {
		return fmt.Errorf("%s is not a member", member)
	}
	m := st.members[i]
	if m.helper == nil || m.down.Load() {
		return fmt.Errorf("member %s is down", m.addr)
	}
	return m.enqueue(ctx, newRequest(data, spans, r.cfg.MaxRequestBytes, true))
}

// route splits buf over st's members by t and hands each member its part.
// It returns the number of spans in buf, and of those not sent for their
// bad IDs.
func (r *Router) route(ctx context.Context, st *state, buf []byte, t *targets) (spans, invalid int, err error) {
	s := r.splitters.Get().(*splitter)
	s.maxBytes = r.cfg.MaxRequestBytes
	parts, ok, err := s.split(buf, t)
	invalid = s.batch.Invalid
	spans = len(s.batch.Spans) + invalid
	s.batch.Reset() // do not keep buf reachable from the pool
	r.splitters.Put(s)
	if err != nil {
		return 0, 0, consumererror.NewPermanent(fmt.Errorf("split traces by member: %w", err))
	}
	if !ok {
		return spans, invalid, errAllDown
	}
	return spans, invalid, r.sendParts(ctx, st, parts, t)
}

// sendParts hands each part to its member's queue (a part whose member
// left meanwhile is routed again on the new set by t's rules) and flushes
// the members' batches that are about due.
func (r *Router) sendParts(ctx context.Context, st *state, parts []part, t *targets) error {
	var errs []error
	for _, p := range parts {
		m := st.members[p.member]
		if m.helper == nil {
			errs = append(errs, fmt.Errorf("member %s did not start", m.addr))
			continue
		}
		size := len(p.data)
		if err := m.add(ctx, newRequest(p.data, p.spans, r.cfg.MaxRequestBytes, true)); err != nil {
			cur := r.state.Load()
			if cur == st && t.direct && errors.Is(err, errMemberClosed) {
				// A failover while the router shuts down: every queue
				// is closed, the connections are not yet.
				err = m.sendClosing(ctx, p.data)
				if err == nil {
					r.obs.Routed(ctx, m.addr, p.spans, p.rerouted)
					putBuffer(p.data)
					continue
				}
			}
			if cur != st {
				// The member left while this batch was routed, and its
				// queue is closed: route its part on the new set.
				_, _, err = r.route(ctx, cur, p.data, &targets{ring: cur.ring, down: cur.down, strict: t.strict, prefix: t.prefix})
				if err == nil {
					continue
				}
			}
			errs = append(errs, fmt.Errorf("send to %s: %w", m.addr, err))
			continue
		}
		r.obs.Routed(ctx, m.addr, p.spans, p.rerouted)
		if r.cfg.MaxRequestBytes > 0 && size > r.cfg.MaxRequestBytes {
			// One span, bigger by itself (the split cut the rest).
			r.obs.Oversized(ctx, m.addr, p.spans)
			m.logger.Warn("A span is bigger than max_request_bytes: it is sent in a request of its own, which the member may refuse",
				zap.Int("request_bytes", size), zap.Int("max_request_bytes", r.cfg.MaxRequestBytes))
		}
	}
	if r.batch != nil {
		// The batches that are about due leave in this wake-up rather
		// than in the timer's. The members are scanned only when one may
		// be: with a hundred gateways the scan cost more than the split.
		if now := time.Now(); r.mayBeDue(now) {
			r.flushDue(ctx, st, now, r.batch.due())
		}
	}
	return errors.Join(errs...)
}

// Shutdown stops taking member changes, drains every member's queue up to
// ctx's deadline and closes the connections. What a member cannot send
// fails over to the others, whose connections stay open until every queue
// is drained. It is safe to call twice.
func (r *Router) Shutdown(ctx context.Context) error {
	r.changeMu.Lock()
	r.closed = true
	r.changeMu.Unlock()
	defer context.AfterFunc(ctx, r.cancelDone)()
	if r.flushTimer != nil {
		// Each member's shutdown queues its batch.
		r.flushTimer.Stop()
	}
	var err error
	if st := r.state.Load(); st != nil {
		var wg sync.WaitGroup
		errs := make([]error, len(st.members))
		for i, m := range st.members {
			if m.helper == nil {
				continue
			}
			wg.Go(func() { errs[i] = m.drain(ctx) })
		}
		wg.Wait()
		for i, m := range st.members {
			if m.helper != nil {
				errs[i] = errors.Join(errs[i], m.close())
			}
		}
		err = errors.Join(errs...)
	}
	r.retiring.Wait()
	return err
}
