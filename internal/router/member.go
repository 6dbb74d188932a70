package router

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configcompression"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exporterhelper/xexporterhelper"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/status"

	"github.com/tailsift/tailsift/internal/bufpool"
)

// sendBuffers is the members' connections' buffer pool, shared by every
// router of the process. With compression, gRPC joins each batch of a few
// hundred KiB into one buffer for the compressor; from its default pool
// that was a cleared MiB per send (5 % of a zstd agent's CPU).
var sendBuffers = new(bufpool.Pool)

const exportMethod = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

// member is one gateway: its connection, its sending queue and retries
// (exporterhelper), and whether it is up.
type member struct {
	addr   string
	r      *Router
	conn   *grpc.ClientConn
	helper exporter.Traces
	logger *zap.Logger

	down atomic.Bool
	// answeredAt (r.since) is when the member last answered a send, and
	// unanswered counts the sends it left unanswered since (hung.go).
	answeredAt atomic.Int64
	unanswered atomic.Int64
	// upAt (when the member last came back) and hold (its last hold-down)
	// are written by the one probe loop, before down is cleared, and read
	// by markDown, after down is set: down orders them.
	upAt time.Time
	hold time.Duration
	// closing is write-held while the member stops taking requests: a
	// queue that is shut down still accepts requests, which nobody sends.
	closing sync.RWMutex
	closed  bool // guarded by closing
	// leaving is closed, read by push without the lock (a reader of
	// closing would wait behind shutdown's Lock, which waits for an
	// enqueue blocked on a full queue that push empties).
	leaving atomic.Bool
	// quit is cancelled as the member begins to drain: a request waiting
	// for room in its queue (block_on_overflow) or for its result
	// (wait_for_result) holds closing's read lock, which the drain waits
	// for, and gives up then (untilDrain).
	quit       context.Context //nolint:containedctx // a signal, not a request's context
	cancelQuit context.CancelFunc
	pend       pending
	stop       chan struct{}
	probes     sync.WaitGroup
	// retry holds the requests push left to exporterhelper's retries
	// (retrying.go): those a shutdown stops go to the other members.
	retry retrying
	// closeOnce closes stop and the connection once (close).
	closeOnce sync.Once
	// stopMu orders markDown and the closing of stop: a member is not
	// marked down (counted out of members_up, probed) once stopped.
	stopMu sync.Mutex
}

// memberWindow is the flow-control window of a member connection: what
// the gateway may send before the router reads it (responses only).
const memberWindow = 1 << 20

func (r *Router) newMember(ctx context.Context, addr string) (*member, error) {
	m := &member{
		addr:   addr,
		r:      r,
		logger: r.set.Logger.With(zap.String("member", addr)),
		stop:   make(chan struct{}),
	}
	m.quit, m.cancelQuit = context.WithCancel(context.Background())
	cc := r.cfg.GRPC
	cc.Endpoint = addr
	opts := []configgrpc.ToClientConnOption{
		configgrpc.WithGrpcDialOption(experimental.WithBufferPool(sendBuffers)),
		// Fixed windows turn off gRPC's bandwidth estimator: grpc-go's
		// client runs the same estimator as its server on the data it
		// receives (here, the responses), and pings the gateway at each
		// new burst of it.
		configgrpc.WithGrpcDialOption(grpc.WithStaticStreamWindowSize(memberWindow)),
		configgrpc.WithGrpcDialOption(grpc.WithStaticConnWindowSize(memberWindow)),
	}
	if cc.Compression == configcompression.TypeZstd {
		// Compress with fastZstd instead of the registered zstd.
		cc.Compression = ""
		opts = append(opts, configgrpc.WithGrpcDialOption(grpc.WithCompressor(fastZstd{}))) //nolint:staticcheck // SA1019: see fastZstd
	}
	conn, err := cc.ToClientConn(ctx, r.host.GetExtensions(), r.set.TelemetrySettings, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to member %s: %w", addr, err)
	}
	m.conn = conn
	set := r.set
	set.Logger = m.logger
	set.ID = component.NewIDWithName(r.set.ID.Type(), joinName(r.set.ID.Name(), addr))
	qs := xexporterhelper.QueueBatchSettings{Encoding: queueEncoding{maxBytes: r.cfg.MaxRequestBytes}}
	m.helper, err = xexporterhelper.NewTracesRequest(ctx, set, r.convert, m.push,
		exporterhelper.WithTimeout(r.cfg.Timeout),
		exporterhelper.WithRetry(r.cfg.Retry),
		xexporterhelper.WithQueueBatch(r.queue, qs),
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
	)
	if err == nil {
		err = m.helper.Start(ctx, r.host)
	}
	if err != nil {
		m.cancelQuit()
		return nil, errors.Join(fmt.Errorf("start member %s: %w", addr, err), conn.Close())
	}
	return m, nil
}

func joinName(name, addr string) string {
	if name == "" {
		return addr
	}
	return name + "/" + addr
}

// errMemberClosed is returned for a request handed to a member that left.
var errMemberClosed = errors.New("member closed")

// enqueue hands a routed part to the member's sending queue.
func (m *member) enqueue(ctx context.Context, r *request) error {
	m.closing.RLock()
	defer m.closing.RUnlock()
	if m.closed {
		return errMemberClosed
	}
	ctx, done, closed := m.untilDrain(ctx)
	defer done()
	return closed(m.queue(ctx, r))
}

// push is the member's RequestConsumeFunc: send, fail over when the member is
// or becomes down.
func (m *member) push(ctx context.Context, xr xexporterhelper.Request) error {
	req, ok := xr.(*request)
	if !ok {
		return consumererror.NewPermanent(fmt.Errorf("push a %T", xr))
	}
	m.retry.forget(req)
	var err error
	if !m.down.Load() {
		start := m.r.since()
		err = m.sendRetrying(ctx, req.bufs)
		if err != nil && m.r.cfg.Downgrade != nil && status.Code(err) == codes.InvalidArgument {
			if older := m.r.cfg.Downgrade(req.bytes()); older != nil {
				err = m.sendRetrying(ctx, [][]byte{older})
			}
		}
		unanswered, hung := m.sent(start, err)
		if err == nil {
			// A successful answer means the gateway read the whole
			// request: gRPC holds no reference to it any more.
			req.release()
			return nil
		}
		switch {
		case isDown(err), hung:
			// Down, or hung (hung.go): a send that timed out may have
			// been taken all the same, and the failover sends it again.
			if !m.stopped() { // a stopped member's probes are over
				m.markDown(err)
			}
		case unanswered && !m.r.cfg.Retry.Enabled:
			// Nothing would retry it: fail it over now, without
			// marking the member down for one send.
		case m.leaving.Load():
			// The member shuts down (it left the set, or the router
			// stops): exporterhelper retries no more, so what it would
			// have retried fails over, or falls back, rather than go.
			// Past Shutdown's deadline the connection is closed, and
			// every send left ends here at once.
			if cerr := classify(err); consumererror.IsPermanent(cerr) {
				return cerr
			}
		default:
			return m.retryLater(req, classify(err))
		}
	} else {
		err = fmt.Errorf("member %s is down", m.addr)
	}
	if ferr := m.failover(ctx, req, err); ferr != nil {
		return m.retryLater(req, ferr)
	}
	return nil
}

// failover sends req, which m could not deliver for cause, to the other
// members up, or gives it to Settings.Fallback.
func (m *member) failover(ctx context.Context, req *request, err error) error {
	rerr := m.r.reroute(ctx, req, m)
	if rerr == nil {
		return nil
	}
	if fb := m.r.cfg.Fallback; fb != nil {
		ferr := fb(ctx, req.bytes())
		if ferr == nil {
			req.release()
			return nil
		}
		rerr = errors.Join(rerr, fmt.Errorf("fall back: %w", ferr))
	}
	return fmt.Errorf("fail over from %s (%w): %w", m.addr, err, rerr)
}

// stopped reports whether the member's shutdown gave up waiting for its
// queue (or ended).
func (m *member) stopped() bool {
	select {
	case <-m.stop:
		return true
	default:
		return false
	}
}

// sendRetrying sends data, again after Failover.Backoff while the member
// looks down, up to Failover.Attempts sends.
func (m *member) sendRetrying(ctx context.Context, bufs [][]byte) error {
	f := &m.r.cfg.Failover
	for attempt := 1; ; attempt++ {
		err := m.send(ctx, bufs)
		if !isDown(err) || attempt >= f.Attempts {
			return err
		}
		t := time.NewTimer(f.Backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-m.stop:
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// send makes one Export call with bufs, concatenated, as the request body.
func (m *member) send(ctx context.Context, bufs [][]byte, opts ...grpc.CallOption) error {
	var resp rawMessage
	opts = append(opts, grpc.ForceCodecV2(rawCodec{}))
	if err := m.conn.Invoke(ctx, exportMethod, &outMessage{bufs: bufs}, &resp, opts...); err != nil {
		return err
	}
	if rejected, msg := partialSuccess(resp.data); rejected != 0 || msg != "" {
		m.logger.Warn("Partial success response", zap.String("message", msg), zap.Int64("dropped_spans", rejected))
	}
	return nil
}

// markDown marks the member down, once, and starts probing it, unless the
// member is stopped.
func (m *member) markDown(cause error) {
	m.stopMu.Lock()
	defer m.stopMu.Unlock()
	if m.stopped() || m.down.Swap(true) {
		// Down already, or closed: close counted it out of members_up.
		return
	}
	m.logger.Warn("Member down; its traces go to the next member in hash order until it answers", zap.Error(cause))
	m.r.obs.MembersUp(-1)
	m.hold = holdDown(m.r.cfg.Failover.ProbeInterval, m.hold, time.Since(m.upAt))
	m.probes.Add(1)
	go m.probe(m.hold)
}

// maxHoldFactor bounds the hold of a flapping member at this many probe
// intervals.
const maxHoldFactor = 32

// holdDown returns how long a member that goes down now stays down before
// its first probe: one probe interval, doubled each time it goes down again
// within ten probe intervals of coming back (prev is the previous hold), so
// that a flapping member does not move its traces back and forth.
func holdDown(interval, prev, upFor time.Duration) time.Duration {
	if prev == 0 || upFor >= 10*interval {
		return interval
	}
	return min(2*prev, maxHoldFactor*interval)
}

// probe waits hold, then sends an empty Export every ProbeInterval until one
// gets an answer that is not "down", and marks the member up.
func (m *member) probe(hold time.Duration) {
	defer m.probes.Done()
	interval := m.r.cfg.Failover.ProbeInterval
	t := time.NewTimer(hold)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
		// Reconnect now rather than after gRPC's reconnect backoff.
		m.conn.ResetConnectBackoff()
		ctx, cancel := context.WithTimeout(context.Background(), interval)
		err := m.send(ctx, nil, grpc.WaitForReady(true))
		cancel()
		if m.stopped() {
			// The connection closed under the probe (CANCELED): no
			// answer of the member, which stays down as it is closed.
			return
		}
		if !isDown(err) && status.Code(err) != codes.DeadlineExceeded {
			m.answered()
			m.upAt = time.Now()
			m.down.Store(false)
			m.r.obs.MembersUp(1)
			m.logger.Info("Member up again")
			return
		}
		t.Reset(interval)
	}
}

// shutdown drains the member's queue and closes it (drain, then close).
func (m *member) shutdown(ctx context.Context) error {
	return errors.Join(m.drain(ctx), m.close())
}

// drain stops the member taking requests and sends its queue, failing over
// what it cannot send, its sends in retry back-off included, to the other
// members: their queues, or, when they are closing too, their connections
// (Router.Shutdown drains every member before it closes any). At ctx's
// deadline the connection is closed, so that what is left fails at once.
// A second call does nothing.
func (m *member) drain(ctx context.Context) error {
	if m.cancelQuit != nil {
		m.cancelQuit() // a request waiting under closing's read lock gives up
	}
	m.closing.Lock()
	if m.closed {
		m.closing.Unlock()
		return nil
	}
	m.closed = true
	m.leaving.Store(true)
	m.closing.Unlock()
	m.drainPending(ctx)
	// exporterhelper's in-memory queue sends all it holds, one try each,
	// whatever ctx says: at the deadline the connection is closed, so that
	// each send left fails at once and push fails it over, or falls back.
	shut := make(chan error, 1)
	go func() { shut <- m.helper.Shutdown(context.WithoutCancel(ctx)) }()
	var err error
	select {
	case err = <-shut:
	case <-ctx.Done():
		cerr := m.close()
		err = errors.Join(<-shut, fmt.Errorf("queue of %s not sent by the deadline: %w", m.addr, ctx.Err()), cerr)
	}
	// exporterhelper's retry sender gave up, at its shutdown, the sends
	// waiting for a retry: they go to the other members now, or, when none
	// is up, as soon as one is, up to ctx's deadline.
	return errors.Join(err, m.failoverRetries(ctx))
}

// close stops probing the member and closes its connection, once; a later
// call returns nil.
func (m *member) close() (err error) {
	m.closeOnce.Do(func() {
		m.stopMu.Lock()
		close(m.stop)
		m.stopMu.Unlock()
		err = m.conn.Close()
		m.probes.Wait()
		if !m.down.Load() {
			m.r.obs.MembersUp(-1)
		}
	})
	return err
}
