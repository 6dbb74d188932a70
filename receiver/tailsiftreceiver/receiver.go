package tailsiftreceiver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/experimental"

	"github.com/tailsift/tailsift/internal/clock"
	"github.com/tailsift/tailsift/internal/cluster"
	"github.com/tailsift/tailsift/internal/red"
	"github.com/tailsift/tailsift/internal/router"
	"github.com/tailsift/tailsift/internal/selfmetrics"
	"github.com/tailsift/tailsift/internal/statuspage"
	"github.com/tailsift/tailsift/internal/tracebuf"
	"github.com/tailsift/tailsift/internal/zstdlimit"
	"github.com/tailsift/tailsift/receiver/tailsiftreceiver/internal/metadata"
)

// maxQueueWait bounds how long a request waits for room in a full buffer
// queue before it is refused as retryable. A request whose deadline is
// nearer waits half of what is left, so the client still hears the answer.
const maxQueueWait = 2 * time.Second

// tailsiftReceiver serves OTLP traces straight into a trace buffer.
type tailsiftReceiver struct {
	cfg       *Config
	set       receiver.Settings
	buf       *tracebuf.Buffer
	node      *cluster.Node // nil without a cluster block
	telemetry *metadata.TelemetryBuilder
	status    *statuspage.Recorder // the buffer's state for the status page
	unlist    func()               // removes it from the page; nil before Start
	obsGRPC   *receiverhelper.ObsReport
	obsHTTP   *receiverhelper.ObsReport
	grpcInfo  *grpc.UnaryServerInfo // of every Export call
	// queueWait is how long a request may wait for queue room, in
	// nanoseconds (maxQueueWait; tests shorten it).
	queueWait atomic.Int64

	serverGRPC *grpc.Server
	serverHTTP *http.Server
	pool       *recvPool // the gRPC server's receive buffers
	maxBody    int64
	// grpcAddr and httpAddr are where the servers listen (tests use port 0).
	grpcAddr, httpAddr net.Addr
	serving            sync.WaitGroup
	gate               gate // the servers' requests, which Shutdown waits for
	startOnce          sync.Once
	startErr           error
	stopOnce           sync.Once
	stopErr            error
	forget             func() // takes it out of the shared receivers

	clock       clock.Clock
	nextTraces  consumer.Traces  // nil when in no traces pipeline
	nextMetrics consumer.Metrics // nil when in no metrics pipeline
	red         *red.Table       // nil when in no metrics pipeline
	stopREDLoop context.CancelFunc
	redDone     chan struct{}

	router *router.Router // route mode only (route.go); buf is nil then
}

var (
	_ receiver.Traces  = (*tailsiftReceiver)(nil)
	_ receiver.Metrics = (*tailsiftReceiver)(nil)
)

// newReceiver creates the receiver; createTraces and createMetrics attach
// its pipelines.
func newReceiver(set receiver.Settings, cfg *Config, clk clock.Clock) (*tailsiftReceiver, error) {
	obsGRPC, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID: set.ID, Transport: "grpc", ReceiverCreateSettings: set,
	})
	if err != nil {
		return nil, err
	}
	obsHTTP, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID: set.ID, Transport: "http", ReceiverCreateSettings: set,
	})
	if err != nil {
		return nil, err
	}
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, fmt.Errorf("create telemetry: %w", err)
	}
	if cfg.Route.HasValue() {
		return newRouteReceiver(set, cfg, clk, tb, obsGRPC, obsHTTP), nil
	}
	var status *statuspage.Recorder
	r := &tailsiftReceiver{clock: clk}
	buf, err := selfmetrics.NewBuffer(cfg.bufferConfig, r.consumeKept,
		tracebuf.Settings{Logger: set.Logger, Clock: clk, Accepted: r.accepted},
		instruments(tb), selfmetrics.BudgetGauges{
			ClassProbability: tb.RegisterReceiverTailsiftBudgetClassProbabilityCallback,
			Rate:             tb.RegisterReceiverTailsiftBudgetRateCallback,
		},
		func(o tracebuf.Observer) tracebuf.Observer {
			status = statuspage.NewRecorder(set.ID.String(), "receiver", int64(cfg.Buffer.MaxBytes), o)
			return status
		})
	if err != nil {
		tb.Shutdown()
		return nil, err
	}
	status.Bind(buf.Engine())
	r.status, r.pool, r.cfg, r.set, r.buf = status, new(recvPool), cfg, set, buf
	r.telemetry, r.obsGRPC, r.obsHTTP = tb, obsGRPC, obsHTTP
	r.node = selfmetrics.NewNode(cfg.bufferConfig, buf, cluster.Settings{
		ID: set.ID, Telemetry: set.TelemetrySettings, BuildInfo: set.BuildInfo, Clock: clk,
	}, clusterInstruments(tb))
	r.queueWait.Store(int64(maxQueueWait))
	return r, nil
}

// Start starts the buffer's shards, the cluster node, then the servers,
// and the RED metrics' flush loop. The receiver of a traces and a metrics
// pipeline is started once.
func (r *tailsiftReceiver) Start(ctx context.Context, host component.Host) error {
	r.startOnce.Do(func() { r.startErr = r.start(ctx, host) })
	return r.startErr
}

func (r *tailsiftReceiver) start(ctx context.Context, host component.Host) error {
	var err error
	if r.buf == nil {
		err = r.startRoute()
	} else {
		r.unlist = statuspage.Default.Add(r.status)
		if r.red != nil {
			// With output::exporter, kept spans reach no consumeKept: their
			// exemplars come from the scan of the bytes.
			r.buf.SetKeptWire(r.red.KeptBatch)
		}
		err = r.buf.StartWithStorage(ctx, host)
	}
	if err == nil && r.node != nil {
		err = r.node.Start(ctx, host)
	}
	if err == nil {
		err = r.startGRPC(ctx, host)
	}
	if err == nil {
		err = r.startHTTP(ctx, host)
	}
	if err == nil {
		r.startRED()
	}
	if err != nil {
		return errors.Join(err, r.Shutdown(ctx))
	}
	return nil
}

func (r *tailsiftReceiver) startGRPC(ctx context.Context, host component.Host) error {
	if !r.cfg.Protocols.GRPC.HasValue() {
		return nil
	}
	cfg := r.cfg.Protocols.GRPC.Get()
	srv, err := cfg.ToServer(ctx, host.GetExtensions(), r.set.TelemetrySettings, grpcServerOptions(r.pool)...)
	if err != nil {
		return err
	}
	r.grpcInfo = &grpc.UnaryServerInfo{Server: r, FullMethod: exportMethod}
	srv.RegisterService(&traceServiceDesc, r)
	ln, err := cfg.NetAddr.Listen(ctx)
	if err != nil {
		return err
	}
	r.serverGRPC, r.grpcAddr = srv, ln.Addr()
	r.set.Logger.Info("Starting GRPC server", zap.String("endpoint", ln.Addr().String()))
	r.serving.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(err))
		}
	})
	return nil
}

// Flow-control windows of the gRPC server: fixed, so that gRPC's
// bandwidth estimator, which pings the client at every new burst of data
// (33 pings for 20 requests of 300 KB on loopback in
// TestGRPCServerWindowsFixed: its estimate never reaches its 16 MiB limit
// there), is off. A stream may send one window of bytes before
// the receiver has read them; the dynamic windows this replaces grow to
// 16 MiB.
const (
	grpcStreamWindow = 1 << 20
	grpcConnWindow   = 4 << 20
)

// grpcServerOptions are the options of the receiver's gRPC server: the
// forced codec hands the Export request over as its encoded bytes (it
// applies to every service of this server, which serves only the trace
// service; other message types would still go through proto), read
// buffers come from pool, and the windows are fixed.
func grpcServerOptions(pool *recvPool) []configgrpc.ToServerOption {
	return []configgrpc.ToServerOption{
		configgrpc.WithGrpcServerOption(grpc.ForceServerCodecV2(newRawCodec(pool))),
		configgrpc.WithGrpcServerOption(experimental.BufferPool(pool)),
		configgrpc.WithGrpcServerOption(grpc.StaticStreamWindowSize(grpcStreamWindow)),
		configgrpc.WithGrpcServerOption(grpc.StaticConnWindowSize(grpcConnWindow)),
	}
}

func (r *tailsiftReceiver) startHTTP(ctx context.Context, host component.Host) error {
	if !r.cfg.Protocols.HTTP.HasValue() {
		return nil
	}
	cfg := r.cfg.Protocols.HTTP.Get()
	urlPath := string(cfg.TracesURLPath)
	if urlPath == "" {
		urlPath = defaultTracesURLPath
	}
	mux := http.NewServeMux()
	mux.HandleFunc(urlPath, r.handleTraces)
	srv, err := cfg.ServerConfig.ToServer(ctx, host.GetExtensions(), r.set.TelemetrySettings, mux,
		confighttp.WithErrorHandler(errorHandler),
		// zstd bodies whose frame names a window over zstdlimit.MaxWindow
		// are refused before it is allocated (gRPC's zstd is bounded by
		// the package's import).
		confighttp.WithDecoder(zstdlimit.Name, zstdlimit.HTTPDecoder))
	if err != nil {
		return err
	}
	srv.Handler = r.gated(srv.Handler)
	// ToServer has filled in the default body limit.
	r.maxBody = cfg.ServerConfig.MaxRequestBodySize
	ln, err := cfg.ServerConfig.ToListener(ctx)
	if err != nil {
		return err
	}
	r.serverHTTP, r.httpAddr = srv, ln.Addr()
	r.set.Logger.Info("Starting HTTP server", zap.String("endpoint", ln.Addr().String()))
	r.serving.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(err))
		}
	})
	return nil
}

// Shutdown stops the servers, letting requests in flight finish (at most
// handlerGrace past the deadline; later ones are refused retryably), then
// decides every buffered trace and hands the kept ones to the next consumer,
// all within ctx and output.shutdown_timeout, whichever ends first. It
// returns what the next consumer refused. With a cluster block it first
// drains: the servers keep serving for cluster::drain (at most half of the
// time left), forwarding everything to the other members, and the buffer is
// handed over to them; the buffer decides only what is left.
func (r *tailsiftReceiver) Shutdown(ctx context.Context) error {
	r.stopOnce.Do(func() {
		if d := r.cfg.Output.ShutdownTimeout; d > 0 { // 0 only in a Config never validated
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
		var errs []error
		if r.node != nil {
			r.drain(ctx)
		}
		// From now on requests are refused, retryably; those under way
		// are waited for below.
		r.gate.close()
		var httpErr error
		if r.serverHTTP != nil {
			httpErr = r.serverHTTP.Shutdown(ctx)
		}
		stopped := make(chan struct{})
		if r.serverGRPC != nil {
			go func() {
				r.serverGRPC.GracefulStop()
				close(stopped)
			}()
			select {
			case <-stopped:
			case <-ctx.Done():
			}
		} else {
			close(stopped)
		}
		// Requests still under way at the deadline get handlerGrace more
		// before their connections are closed, which neither server's
		// Close nor Stop waits for: their answers reach the clients, and
		// nothing of them runs once the buffer is closed.
		gctx, release := graceAfter(ctx, handlerGrace)
		if !r.gate.wait(gctx.Done()) {
			r.set.Logger.Warn("tailsift receiver: requests still served as the buffer closes",
				zap.Duration("waited_past_deadline", handlerGrace))
		}
		// Both servers send the last answers before their connections
		// close.
		if httpErr != nil && r.serverHTTP.Shutdown(gctx) != nil {
			errs = append(errs, httpErr, r.serverHTTP.Close())
		}
		select {
		case <-stopped:
		case <-gctx.Done():
			r.serverGRPC.Stop()
			<-stopped
		}
		release()
		r.serving.Wait()
		if r.node != nil {
			// Hands over what arrived since, and sends the queues, in half
			// the time left: the rest is the buffer's.
			nctx, cancel := halfLeft(ctx)
			errs = append(errs, r.node.Shutdown(nctx))
			cancel()
		}
		if r.buf != nil {
			errs = append(errs, r.buf.ShutdownWithStorage(ctx))
		}
		errs = append(errs, r.stopRED(ctx))
		if r.forget != nil {
			r.forget()
		}
		if r.unlist != nil {
			r.unlist()
		}
		r.telemetry.Shutdown()
		r.stopErr = errors.Join(errs...)
	})
	return r.stopErr
}

// drain keeps the servers up for cluster::drain, at most half the time ctx
// leaves, while the node forwards what arrives (it hands the buffer over as
// the drain begins, and what reaches it during the drain), then hands over
// what is left.
func (r *tailsiftReceiver) drain(ctx context.Context) {
	dctx, cancel := halfLeft(ctx)
	defer cancel()
	r.node.Drain(dctx)
	hctx, cancel2 := halfLeft(ctx)
	defer cancel2()
	r.node.HandOver(hctx)
}

// halfLeft is ctx bounded by half the time it leaves, if it has a deadline.
func halfLeft(ctx context.Context) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok {
		return context.WithTimeout(ctx, time.Until(d)/2)
	}
	return context.WithCancel(ctx)
}

// unaryInfo implements exporter.
func (r *tailsiftReceiver) unaryInfo() *grpc.UnaryServerInfo { return r.grpcInfo }

// exportGRPC handles one gRPC Export call.
func (r *tailsiftReceiver) exportGRPC(ctx context.Context, req []byte, free func()) ([]byte, error) {
	out := r.ingest(ctx, r.obsGRPC, formatProtobuf, req, free)
	if out.st != nil {
		return nil, out.st.Err()
	}
	return appendExportResponse(nil, out.rejected, out.message), nil
}

const (
	formatProtobuf = "protobuf"
	formatJSON     = "json"
)

// ingest hands an encoded ExportTraceServiceRequest to the buffer, which
// owns req from then on (and calls free, when not nil, once done with it),
// and reports the receive operation.
func (r *tailsiftReceiver) ingest(ctx context.Context, obs *receiverhelper.ObsReport, format string, req []byte, free func()) outcome {
	if r.router != nil {
		return r.forward(ctx, obs, format, req, free)
	}
	ctx = obs.StartTracesOp(ctx)
	wait := time.Duration(r.queueWait.Load())
	if d, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(d)/2)
	}
	// Waiting at most 0 is not waiting: the buffer bounds the wait by a
	// positive duration only.
	wait = max(wait, time.Nanosecond)
	var spans int
	var err error
	if r.node != nil {
		ictx, cancel := context.WithTimeout(ctx, wait)
		if _, _, control, _ := cluster.SplitControl(req); control {
			// Another gateway's: its control belongs to all of it.
			spans, err = r.node.Ingest(ictx, req, free)
		} else {
			// A request heavier than the queue is cut before the node,
			// so that what it forwards fits the owner's queue.
			spans, err = r.buf.IngestVia(ictx, req, free, r.node.Ingest)
		}
		cancel()
	} else {
		// The buffer arms the timer only when it has to wait for room.
		spans, err = r.buf.IngestOwnedWithin(ctx, req, free, wait)
	}
	return endOp(ctx, obs, format, spans, err, classify(err))
}

// endOp ends the receive operation of spans spans, which err and its
// outcome out tell about, and returns out.
func endOp(ctx context.Context, obs *receiverhelper.ObsReport, format string, spans int, err error, out outcome) outcome {
	switch {
	case out.st != nil && out.taken > 0:
		// Taken in part-way: the spans taken are accepted, the others
		// a second, failed operation.
		obs.EndTracesOp(ctx, format, out.taken, nil)
		obs.EndTracesOp(obs.StartTracesOp(ctx), format, spans-out.taken, err)
	case out.st != nil:
		obs.EndTracesOp(ctx, format, spans, err)
	case out.rejected > 0:
		obs.EndTracesOp(ctx, format, spans-out.rejected, nil)
		// The rejected spans are a second, failed operation, so that they
		// count as refused.
		obs.EndTracesOp(obs.StartTracesOp(ctx), format, out.rejected, err)
	default:
		obs.EndTracesOp(ctx, format, spans, nil)
	}
	return out
}

// instruments maps the generated instruments to the buffer's events.
func instruments(tb *metadata.TelemetryBuilder) selfmetrics.Instruments {
	return selfmetrics.Instruments{
		SpansReceived:   tb.ReceiverTailsiftSpansReceived,
		SpansRefused:    tb.ReceiverTailsiftSpansRefused,
		TracesDecided:   tb.ReceiverTailsiftTracesDecided,
		SpansDecided:    tb.ReceiverTailsiftSpansDecided,
		EarlyDecisions:  tb.ReceiverTailsiftEarlyDecisions,
		LateSpans:       tb.ReceiverTailsiftLateSpans,
		ExportFailures:  tb.ReceiverTailsiftExportFailures,
		BufferedBytes:   tb.ReceiverTailsiftBufferedBytes,
		BufferedTraces:  tb.ReceiverTailsiftBufferedTraces,
		DecisionLatency: tb.ReceiverTailsiftDecisionLatency,
		DecisionLag:     tb.ReceiverTailsiftDecisionLag,
		HeldBytes:       tb.ReceiverTailsiftRescueHeldBytes,
		HeldTraces:      tb.ReceiverTailsiftRescueHeldTraces,
		TracesRescued:   tb.ReceiverTailsiftTracesRescued,
		TracesProbed:    tb.ReceiverTailsiftTracesProbed,
		SpansDeduped:    tb.ReceiverTailsiftSpansDeduplicated,
		ArenaMapped:     tb.ReceiverTailsiftArenaMappedBytes,
		RouteTraces:     tb.ReceiverTailsiftRouteTracesDecided,
		RoutePartial:    tb.ReceiverTailsiftRoutePartialTraces,
		RouteLate:       tb.ReceiverTailsiftRouteLateSpans,
	}
}

// clusterInstruments are the receiver's generated instruments for its cluster
// node's events.
func clusterInstruments(tb *metadata.TelemetryBuilder) selfmetrics.ClusterInstruments {
	return selfmetrics.ClusterInstruments{
		SpansForwarded:      tb.ReceiverTailsiftClusterSpansForwarded,
		TracesHandedOver:    tb.ReceiverTailsiftClusterTracesHandedOver,
		BytesHandedOver:     tb.ReceiverTailsiftClusterBytesHandedOver,
		DecisionsHandedOver: tb.ReceiverTailsiftClusterDecisionsHandedOver,
		DecidedLocally:      tb.ReceiverTailsiftClusterHandoverDecidedLocally,
		Members:             tb.ReceiverTailsiftClusterMembers,
	}
}
