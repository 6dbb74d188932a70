package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.uber.org/zap"

	"github.com/tailsift/tailsift/internal/clock"
	"github.com/tailsift/tailsift/internal/membership"
	"github.com/tailsift/tailsift/internal/ring"
	"github.com/tailsift/tailsift/internal/router"
)

// ErrInvalidControl is wrapped by Ingest's error for a request whose
// control is malformed: nothing of it was taken.
var ErrInvalidControl = errControl

// Settings are what a Node runs with besides its Config.
type Settings struct {
	// ID names the node's router (its members' sending queues report as
	// ID/<member address>).
	ID        component.ID
	Telemetry component.TelemetrySettings
	BuildInfo component.BuildInfo
	Clock     clock.Clock
	Observer  Observer
	// Budget is the gateway's sampling budget, shared with the other
	// members when cluster::budget is shared; nil without one.
	Budget Budget
}

// view is one member set as this gateway sees it.
type view struct {
	all    *ring.Ring // every member: who owns a trace
	self   int        // this gateway in all, -1 when it is not a member
	others *ring.Ring // every member but this gateway: the router's ring
	// gen counts the changes of others: a member that left and came back
	// (a new connection) is a change, though others is as it was.
	gen uint64
}

// Node is a gateway's membership of the cluster: it tells which traces the
// gateway owns, forwards the others' spans, hands traces and decisions over
// after a ring change, and drains on shutdown.
type Node struct {
	cfg     Config
	buf     Buffer
	router  *router.Router
	watcher *membership.Watcher
	clock   clock.Clock
	logger  *zap.Logger
	obs     Observer

	view atomic.Pointer[view]
	// early: spans were taken in before the first member set, when the
	// gateway owned every trace; that first set is a ring change then.
	early    atomic.Bool
	members  []string // the last set, guarded by setMu
	setMu    sync.Mutex
	draining atomic.Bool
	drainAt  time.Time // when the drain began; guarded by setMu
	changed  chan struct{}
	// forward and relay head what the node sends other gateways: spans
	// forwarded, and what a draining gateway passes on; handOver and
	// relayHandOver the same for traces handed over (counted by RED
	// where they were first buffered).
	forward, relay, handOver, relayHandOver []byte

	handoverMu sync.Mutex // one handover at a time
	// handed is, per shard, where a draining gateway's handovers put its
	// decisions (guarded by handoverMu).
	handed []*routing
	// givenBack holds the hashes of the traces a draining gateway's
	// handovers gave back to be decided here, and of the decisions that
	// came back to be remembered here (guarded by handoverMu): their
	// decisions are handed over at the next sweeps
	// (TestDrainSendsDecisionsMadeSinceLastSweep,
	// TestDrainResendsOnlyDecisionsThatCameBack).
	givenBack map[uint64]struct{}
	// back holds the hashes of the decisions that came back (the router's
	// Fallback, a relay refused) since the last handover took them.
	// counted holds those of the decisions that came back from a relay's
	// queue (the router's Fallback of a request marked relayed): counted
	// handed over as they were queued, no member took them, and their
	// next send is not counted again until a member takes it
	// (TestRelayedDecisionsThatComeBackCountOnce).
	backMu  sync.Mutex
	back    []uint64
	counted map[uint64]struct{}
	cancel  context.CancelFunc
	done    chan struct{}
	// fleet shares the budget with the other members; nil unless
	// cluster::budget is shared. budgetDone closes when its loop ends.
	fleet      *fleetBudget
	budgetDone chan struct{}
	stopOnce   sync.Once
}

// NewNode returns the node of a validated cluster block over buf.
func NewNode(cfg Config, buf Buffer, set Settings) *Node {
	if set.Clock == nil {
		set.Clock = clock.Real{}
	}
	if set.Observer == nil {
		set.Observer = NopObserver{}
	}
	// Written as the watcher writes the members, so that self is found
	// among them however the configuration writes it.
	cfg.Self = membership.Canonical(cfg.Self)
	n := &Node{
		cfg:           cfg,
		buf:           buf,
		clock:         set.Clock,
		logger:        set.Telemetry.Logger,
		obs:           set.Observer,
		changed:       make(chan struct{}, 1),
		forward:       AppendControl(nil, &Control{Forwarded: true}),
		relay:         AppendControl(nil, &Control{Forwarded: true, Relayed: true}),
		handOver:      AppendControl(nil, &Control{Forwarded: true, HandedOver: true}),
		relayHandOver: AppendControl(nil, &Control{Forwarded: true, Relayed: true, HandedOver: true}),
	}
	if cfg.Budget == BudgetShared && set.Budget != nil && set.Budget.BudgetRate() > 0 {
		n.fleet = newFleetBudget(set.Budget, cfg.Self)
	}
	n.watcher = membership.NewWatcher(cfg.Members, set.Clock, n.logger)
	n.router = router.New(exporter.Settings{ID: set.ID, TelemetrySettings: set.Telemetry, BuildInfo: set.BuildInfo},
		router.Settings{
			GRPC:     cfg.GRPC,
			Failover: router.FailoverConfig{Attempts: 2, Backoff: 100 * time.Millisecond, ProbeInterval: time.Second, Timeouts: 2},
			Timeout:  exporterhelper.NewDefaultTimeoutConfig(),
			Queue:    configoptional.Some(exporterhelper.NewDefaultQueueConfig()),
			Retry:    configretry.NewDefaultBackOffConfig(),
			Prefix:   n.forward,
			// A gateway forwards up to what it takes in (an HTTP client
			// may send 20 MiB by default) to peers that take 4 MiB over
			// gRPC by default: parts are cut as the tailsift exporter
			// cuts them (TestForwardedPartWithinPeerLimit).
			MaxRequestBytes: maxForwardBytes,
			// What no other gateway can take is buffered here: spans
			// that cannot be forwarded (Ingest), traces that cannot be
			// handed over (giveBack), and, through the fallback, what
			// was queued for a member that then turned out down.
			Strict:    true,
			Fallback:  n.takeBack,
			Reprefix:  n.reprefix,
			Downgrade: downgrade,
		}, routerObserver{n})
	return n
}

// maxForwardBytes caps a request to another gateway: 3.5 MiB, under the
// 4 MiB a gateway's gRPC server takes by default, with an eighth spare for
// the control field and framing, as the tailsift exporter's default.
const maxForwardBytes = 7 << 19

// takeBack is the router's Fallback: a request queued for a member that
// is down, with no other member up, is buffered here after all. Its spans
// were acknowledged (forwarded, or handed over by this gateway's buffer),
// so they must not wait in a dead member's queue, to be dropped with it;
// handed-over decisions are remembered here again, and a draining gateway
// hands them over again at its next sweep.
func (n *Node) takeBack(ctx context.Context, data []byte) error {
	c, rest, isCtl, err := SplitControl(data)
	if err != nil {
		return err
	}
	if isCtl && c.Decisions.Len() > 0 {
		if err := n.buf.IngestDecisions(ctx, &c.Decisions); err != nil {
			return fmt.Errorf("take back decisions: %w", err)
		}
		// A draining gateway's relays (queued) were counted handed over
		// as they were queued.
		n.cameBack(&c.Decisions, c.Relayed)
	}
	if len(rest) == 0 {
		return nil
	}
	// Spans forwarded as they came are counted here, which did not count
	// them; spans of a handover were counted where they were buffered.
	got, err := n.ingestFunc(&c)(ctx, bytes.Clone(rest), nil)
	if err != nil {
		return fmt.Errorf("take back spans: %w", err)
	}
	n.logger.Debug("Spans for a member that is down, with no other member up, are buffered here", zap.Int("spans", got))
	return nil
}

// Start resolves the members and starts the handover loop.
func (n *Node) Start(ctx context.Context, host component.Host) error {
	n.router.Start(host)
	loopCtx, cancel := context.WithCancel(context.Background())
	n.cancel, n.done = cancel, make(chan struct{})
	go n.loop(loopCtx)
	if n.fleet != nil {
		n.budgetDone = make(chan struct{})
		go n.budgetLoop(loopCtx)
	}
	register(n)
	return n.watcher.Start(ctx, n.setMembers)
}

// setMembers takes a new member set from the watcher. The first one is not
// a ring change (nothing is handed over after it) unless spans came in
// before it: a gateway starts its node before it receives, so spans
// forwarded to it stay where they land until the ring really changes.
func (n *Node) setMembers(members []string) {
	n.setMu.Lock()
	defer n.setMu.Unlock()
	delta := len(members) - len(n.members)
	first := n.members == nil
	n.members = slices.Clone(members)
	n.applyLocked()
	n.obs.Members(delta)
	if first && !n.early.Load() {
		return
	}
	select {
	case n.changed <- struct{}{}:
	default:
	}
}

// applyLocked makes the view and the router follow n.members and draining.
func (n *Node) applyLocked() {
	v := &view{all: ring.New(n.members)}
	v.self = v.all.Index(n.cfg.Self)
	if v.self < 0 && !n.draining.Load() {
		n.logger.Warn("This gateway is not among the members: it forwards every trace",
			zap.String("self", n.cfg.Self), zap.Strings("members", n.members))
	}
	others := slices.DeleteFunc(slices.Clone(n.members), func(m string) bool { return m == n.cfg.Self })
	v.others = ring.New(others)
	if prev := n.view.Load(); prev != nil {
		v.gen = prev.gen
		if !slices.Equal(prev.others.Members(), v.others.Members()) {
			v.gen++
		}
	}
	if n.draining.Load() {
		v.self = -1
	}
	// The router first: a trace this gateway stops owning is forwarded
	// only once the router knows where.
	n.router.SetMembers(others)
	n.view.Store(v)
}

// Owns reports whether this gateway owns the trace whose ID hashes to h
// (ring.Hash). Before the first member set it owns everything; while it
// drains, nothing.
func (n *Node) Owns(h uint64) bool {
	v := n.view.Load()
	if v == nil {
		return !n.draining.Load()
	}
	if v.all.Len() == 0 {
		return v.self >= 0
	}
	return v.self >= 0 && v.all.Owner(h) == v.self
}

// Ingest takes a request the gateway received (an encoded TracesData or
// ExportTraceServiceRequest, owned by the node from then on; done as in
// Buffer.IngestOwned). A control at its head is applied and stripped:
// handed-over decisions are remembered, forwarded spans are buffered here
// whoever owns them, and handed-over spans are not counted again (RED).
// Otherwise the spans of traces another gateway owns are forwarded to it,
// and the rest buffered; what cannot be forwarded is buffered here too.
//
// A draining gateway (with handover on) keeps nothing: it passes forwarded
// spans, handed-over traces and decisions on to their owners too, marked
// relayed, since the gateways that sent them have not yet seen it leave.
// Only what is already relayed stays, to be handed over with its buffer.
func (n *Node) Ingest(ctx context.Context, buf []byte, done func()) (int, error) {
	c, rest, isCtl, err := SplitControl(buf)
	if err != nil {
		if done != nil {
			done()
		}
		return 0, err
	}
	if n.view.Load() == nil {
		n.early.Store(true)
	}
	relay := n.draining.Load() && n.cfg.Handover.Enabled && !c.Relayed
	prefix := n.forward
	ingest := n.ingestFunc(&c)
	if isCtl {
		if c.Demand != nil {
			if n.fleet != nil {
				n.fleet.observe(c.Demand, n.clock.Now())
			}
			if len(rest) == 0 {
				if done != nil {
					done()
				}
				return 0, nil
			}
		}
		if c.Decisions.Len() > 0 {
			if err := n.takeDecisions(ctx, &c.Decisions, relay); err != nil {
				if done != nil {
					done()
				}
				return 0, fmt.Errorf("take handed-over decisions: %w", err)
			}
		}
		if c.Forwarded {
			if !relay {
				return ingest(ctx, rest, done)
			}
			prefix = n.prefix(true, c.HandedOver)
		}
	}
	own, other, _, otherSpans, err := router.Partition(rest, n.Owns)
	if err != nil || other == nil {
		// The buffer reports what is malformed, as without a cluster.
		return ingest(ctx, rest, done)
	}
	if ferr := n.router.RouteWith(ctx, other, prefix); ferr != nil {
		n.logger.Warn("Forwarding failed; the spans are buffered here", zap.Error(ferr))
		return ingest(ctx, rest, done)
	}
	n.obs.Forwarded(ctx, otherSpans)
	if done != nil {
		done() // Partition copied both parts
	}
	if own == nil {
		return otherSpans, nil
	}
	got, err := ingest(ctx, own, nil)
	return got + otherSpans, err
}

// takeDecisions remembers decisions another gateway handed over. With
// relay (this gateway drains) it passes them on to their owners, marked
// relayed, and remembers only those a send refused.
func (n *Node) takeDecisions(ctx context.Context, d *Decisions, relay bool) error {
	if v := n.view.Load(); relay && v != nil && v.others.Len() > 0 {
		// Queued: the request that brought them does not wait for them.
		queue := func(ctx context.Context, member string, data []byte) error {
			return n.router.Send(ctx, member, data, 0)
		}
		refused, _ := n.sendDecisions(ctx, n.newRouting(v.all, v.others, v.gen), d, Control{Forwarded: true, Relayed: true}, queue, nil, nil)
		if refused.Len() == 0 {
			return nil
		}
		d = &refused
		defer n.cameBack(&refused, false) // to be handed over at the next sweep
	}
	return n.buf.IngestDecisions(ctx, d)
}

// cameBack notes decisions that came back to be remembered here: a
// draining gateway's next sweep hands them over again, those only.
// counted: they were counted handed over when they were queued.
func (n *Node) cameBack(d *Decisions, counted bool) {
	n.backMu.Lock()
	defer n.backMu.Unlock()
	start := len(n.back)
	for _, k := range d.Kept {
		n.back = append(n.back, ring.Hash(k.ID))
	}
	n.back = append(n.back, d.Dropped...)
	if !counted {
		return
	}
	if n.counted == nil {
		n.counted = make(map[uint64]struct{}, len(n.back)-start)
	}
	for _, h := range n.back[start:] {
		n.counted[h] = struct{}{}
	}
}

// toCount returns how many of d, which a member took, count as handed
// over: those not counted already as a relay that came back (cameBack),
// which it forgets.
func (n *Node) toCount(d *Decisions) int {
	n.backMu.Lock()
	defer n.backMu.Unlock()
	c := d.Len()
	if len(n.counted) == 0 {
		return c
	}
	uncount := func(h uint64) {
		if _, ok := n.counted[h]; ok {
			delete(n.counted, h)
			c--
		}
	}
	for _, k := range d.Kept {
		uncount(ring.Hash(k.ID))
	}
	for _, h := range d.Dropped {
		uncount(h)
	}
	return c
}

// takeCameBack returns the hashes cameBack noted, and forgets them.
func (n *Node) takeCameBack() []uint64 {
	n.backMu.Lock()
	defer n.backMu.Unlock()
	back := n.back
	n.back = nil
	return back
}

// loop runs a handover once the member set has not changed for
// handover.settle.
func (n *Node) loop(ctx context.Context) {
	defer close(n.done)
	t := n.clock.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.changed:
			t.Stop()
			t.Reset(n.cfg.Handover.Settle)
		case <-t.C():
			// A gateway not among the members hands nothing over: it is
			// new and its own lookup does not list it yet (what it gets
			// meanwhile is handed to it), or it is leaving, and drains.
			if v := n.view.Load(); n.cfg.Handover.Enabled && !n.draining.Load() && v != nil && v.self >= 0 {
				n.HandOver(ctx)
			}
		}
	}
}

// Shutdown begins the drain if it has not, hands the whole buffer over
// (when handover is on) in at most half the time ctx leaves, then stops
// the watcher and the router, whose queues are sent within ctx. The
// buffer decides what is left in it.
func (n *Node) Shutdown(ctx context.Context) error {
	var err error
	n.stopOnce.Do(func() {
		unregister(n)
		n.BeginDrain()
		if n.cancel != nil {
			n.cancel()
			<-n.done
			if n.budgetDone != nil {
				<-n.budgetDone
			}
		}
		if n.cfg.Handover.Enabled && n.view.Load() != nil {
			// Half the time left at most: the router's queues (spans
			// forwarded as they came) are sent in the rest. A member that
			// never answers holds a send that long, and what it did not
			// take is given back to the buffer.
			hctx, cancel := halfLeft(ctx)
			n.HandOver(hctx)
			cancel()
		}
		err = errors.Join(n.watcher.Shutdown(ctx), n.router.Shutdown(ctx))
	})
	return err
}

// halfLeft is ctx bounded by half the time it leaves, if it has a deadline.
func halfLeft(ctx context.Context) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok {
		return context.WithTimeout(ctx, time.Until(d)/2)
	}
	return context.WithCancel(ctx)
}

// routerObserver counts forwarded spans; the router's member counts are the
// node's own (setMembers).
type routerObserver struct{ n *Node }

func (routerObserver) Routed(context.Context, string, int, int) {}
func (routerObserver) MembersUp(int)                            {}
func (routerObserver) Members(int)                              {}

// Oversized: a span larger than maxForwardBytes by itself goes alone (the
// router logs such spans anyway).
func (routerObserver) Oversized(context.Context, string, int) {}
