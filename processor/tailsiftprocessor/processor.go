package tailsiftprocessor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tailsift/tailsift/internal/clock"
	"github.com/tailsift/tailsift/internal/cluster"
	"github.com/tailsift/tailsift/internal/selfmetrics"
	"github.com/tailsift/tailsift/internal/statuspage"
	"github.com/tailsift/tailsift/internal/tracebuf"
	"github.com/tailsift/tailsift/processor/tailsiftprocessor/internal/metadata"
)

// tailsiftProcessor implements processor.Traces on the shared trace buffer:
// ConsumeTraces encodes the batch once and hands the bytes to the buffer,
// which holds them by trace and forwards kept traces to next.
type tailsiftProcessor struct {
	buf  *tracebuf.Buffer
	node *cluster.Node // nil without a cluster block
	// handoverTimeout bounds the node's shutdown: half of
	// output.shutdown_timeout, the rest being the buffer's.
	handoverTimeout time.Duration
	// shutdownTimeout is output.shutdown_timeout: the bound of Shutdown.
	shutdownTimeout time.Duration
	telemetry       *metadata.TelemetryBuilder
	status          *statuspage.Recorder // the buffer's state for the status page
	unlist          func()               // removes it from the page; nil before Start
}

var _ processor.Traces = (*tailsiftProcessor)(nil)

func newProcessor(set processor.Settings, cfg *Config, next consumer.Traces) (*tailsiftProcessor, error) {
	return newProcessorWithClock(set, cfg, next, clock.Real{})
}

func newProcessorWithClock(set processor.Settings, cfg *Config, next consumer.Traces, clk clock.Clock) (*tailsiftProcessor, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, fmt.Errorf("create telemetry: %w", err)
	}
	var status *statuspage.Recorder
	buf, err := selfmetrics.NewBuffer(*cfg, next.ConsumeTraces, tracebuf.Settings{Logger: set.Logger, Clock: clk},
		instruments(tb), selfmetrics.BudgetGauges{
			ClassProbability: tb.RegisterProcessorTailsiftBudgetClassProbabilityCallback,
			Rate:             tb.RegisterProcessorTailsiftBudgetRateCallback,
		},
		func(o tracebuf.Observer) tracebuf.Observer {
			status = statuspage.NewRecorder(set.ID.String(), "processor", int64(cfg.Buffer.MaxBytes), o)
			return status
		})
	if err != nil {
		tb.Shutdown()
		return nil, err
	}
	status.Bind(buf.Engine())
	p := &tailsiftProcessor{buf: buf, telemetry: tb, status: status, handoverTimeout: cfg.Output.ShutdownTimeout / 2,
		shutdownTimeout: cfg.Output.ShutdownTimeout}
	p.node = selfmetrics.NewNode(*cfg, buf, cluster.Settings{
		ID: set.ID, Telemetry: set.TelemetrySettings, BuildInfo: set.BuildInfo, Clock: clk,
	}, clusterInstruments(tb))
	return p, nil
}

// Start starts the buffer, shows it on the status page and, with a cluster
// block, joins the ring.
func (p *tailsiftProcessor) Start(ctx context.Context, host component.Host) error {
	p.unlist = statuspage.Default.Add(p.status)
	if err := p.buf.StartWithStorage(ctx, host); err != nil {
		return err
	}
	if p.node != nil {
		return p.node.Start(ctx, host)
	}
	return nil
}

// Shutdown decides every buffered trace and forwards the kept ones within
// ctx and output.shutdown_timeout. With a cluster block it first hands the
// buffer over to the other members (the drain itself ran in the otlp guard
// receiver's Shutdown, before the receivers stopped: cluster.DrainAll).
func (p *tailsiftProcessor) Shutdown(ctx context.Context) error {
	var errs []error
	// One deadline for the handover and the buffer: the buffer used to
	// start a whole output.shutdown_timeout of its own after the handover
	// took half of one, 1.5 times the bound in all.
	if d := p.shutdownTimeout; d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	if p.node != nil {
		nctx := ctx
		if p.handoverTimeout > 0 {
			var cancel context.CancelFunc
			nctx, cancel = context.WithTimeout(ctx, p.handoverTimeout)
			defer cancel()
		}
		errs = append(errs, p.node.Shutdown(nctx))
	}
	errs = append(errs, p.buf.ShutdownWithStorage(ctx))
	if p.unlist != nil {
		p.unlist()
	}
	p.telemetry.Shutdown()
	return errors.Join(errs...)
}

func (p *tailsiftProcessor) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: false}
}

// ConsumeTraces buffers td's spans by trace. It returns once they are queued
// for their shards, not when they are decided. A batch heavier than the
// whole of buffer.max_queued_bytes (the otlp receiver in front has its own
// size limits, which the processor cannot see; a batch processor can merge
// requests) is taken in by the buffer as pieces within it, as the tailsift
// receiver's requests are (tracebuf's split.go): refusing it would lose its
// traces, since the client cannot resend it in a form that fits. With a
// cluster, the processor cuts it before the node (pieces.go), so that what
// the node forwards fits the owner's queue.
func (p *tailsiftProcessor) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	var m ptrace.ProtoMarshaler
	buf, err := m.MarshalTraces(td)
	if err != nil {
		return consumererror.NewPermanent(fmt.Errorf("tailsift: encode traces: %w", err))
	}
	return pipelineError(p.ingestEncoded(ctx, buf))
}

// ingestEncoded hands an encoded batch to the cluster node (in pieces
// when it weighs more than the whole queue: pieces.go), or to the buffer
// without one.
func (p *tailsiftProcessor) ingestEncoded(ctx context.Context, buf []byte) error {
	if p.node != nil {
		return p.ingestNode(ctx, buf)
	}
	return p.buf.Ingest(ctx, buf)
}

// pipelineError wraps the buffer's typed errors for the pipeline. Invalid
// data is permanent, with the INVALID_ARGUMENT status that the otlp
// receiver answers (HTTP 400), so the client does not resend it. The
// consumer API cannot report a partial success: when only some spans had
// bad IDs, the others were accepted, and the message gives the exact
// counts. Spans that each weigh more than the whole of
// buffer.max_queued_bytes are permanent too, with the same status (the
// message counts the other spans, taken in). A full queue (nothing was
// taken, or the pieces before of a batch taken in pieces, as the message
// counts) or a shutdown stays retryable,
// with the status UNAVAILABLE and a RetryInfo of retryDelay: the otlp
// receiver answers it with RetryInfo on gRPC and HTTP 503 with Retry-After,
// as the tailsift receiver does. Anything else is returned as it is.
func pipelineError(err error) error {
	if _, ok := errors.AsType[*tracebuf.InvalidError](err); ok || errors.Is(err, cluster.ErrInvalidControl) {
		return consumererror.NewPermanent(invalidArgument{err})
	}
	// A request heavier than the whole queue never fits: INVALID_ARGUMENT
	// (HTTP 400 from the otlp receiver), not RESOURCE_EXHAUSTED, which the
	// otlp receiver answers with a retryable 429.
	if _, ok := errors.AsType[*tracebuf.TooLargeError](err); ok {
		return consumererror.NewPermanent(invalidArgument{err})
	}
	if errors.Is(err, tracebuf.ErrQueueFull) || errors.Is(err, tracebuf.ErrShutdown) {
		return retryLater{err}
	}
	return err
}

// retryDelay is the back-off asked of the client when the buffer refuses a
// request for lack of room.
const retryDelay = time.Second

// retryLater gives a retryable refusal the gRPC status receivers look for:
// UNAVAILABLE with a RetryInfo detail.
type retryLater struct{ error }

func (e retryLater) GRPCStatus() *status.Status {
	st := status.New(codes.Unavailable, e.Error())
	if d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(retryDelay)}); err == nil {
		return d
	}
	return st
}

func (e retryLater) Unwrap() error { return e.error }

// invalidArgument gives an error the gRPC status receivers look for.
type invalidArgument struct{ error }

func (e invalidArgument) GRPCStatus() *status.Status {
	return status.New(codes.InvalidArgument, e.Error())
}

func (e invalidArgument) Unwrap() error { return e.error }

// instruments are the processor's generated instruments for the buffer's
// events.
func instruments(tb *metadata.TelemetryBuilder) selfmetrics.Instruments {
	return selfmetrics.Instruments{
		SpansReceived:   tb.ProcessorTailsiftSpansReceived,
		SpansRefused:    tb.ProcessorTailsiftSpansRefused,
		TracesDecided:   tb.ProcessorTailsiftTracesDecided,
		SpansDecided:    tb.ProcessorTailsiftSpansDecided,
		EarlyDecisions:  tb.ProcessorTailsiftEarlyDecisions,
		LateSpans:       tb.ProcessorTailsiftLateSpans,
		ExportFailures:  tb.ProcessorTailsiftExportFailures,
		BufferedBytes:   tb.ProcessorTailsiftBufferedBytes,
		BufferedTraces:  tb.ProcessorTailsiftBufferedTraces,
		DecisionLatency: tb.ProcessorTailsiftDecisionLatency,
		DecisionLag:     tb.ProcessorTailsiftDecisionLag,
		HeldBytes:       tb.ProcessorTailsiftRescueHeldBytes,
		HeldTraces:      tb.ProcessorTailsiftRescueHeldTraces,
		TracesRescued:   tb.ProcessorTailsiftTracesRescued,
		TracesProbed:    tb.ProcessorTailsiftTracesProbed,
		SpansDeduped:    tb.ProcessorTailsiftSpansDeduplicated,
		ArenaMapped:     tb.ProcessorTailsiftArenaMappedBytes,
		RouteTraces:     tb.ProcessorTailsiftRouteTracesDecided,
		RoutePartial:    tb.ProcessorTailsiftRoutePartialTraces,
		RouteLate:       tb.ProcessorTailsiftRouteLateSpans,
	}
}

// clusterInstruments are the processor's generated instruments for its cluster
// node's events.
func clusterInstruments(tb *metadata.TelemetryBuilder) selfmetrics.ClusterInstruments {
	return selfmetrics.ClusterInstruments{
		SpansForwarded:      tb.ProcessorTailsiftClusterSpansForwarded,
		TracesHandedOver:    tb.ProcessorTailsiftClusterTracesHandedOver,
		BytesHandedOver:     tb.ProcessorTailsiftClusterBytesHandedOver,
		DecisionsHandedOver: tb.ProcessorTailsiftClusterDecisionsHandedOver,
		DecidedLocally:      tb.ProcessorTailsiftClusterHandoverDecidedLocally,
		Members:             tb.ProcessorTailsiftClusterMembers,
	}
}
