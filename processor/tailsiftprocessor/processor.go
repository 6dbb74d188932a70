package tailsiftprocessor

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tailsift/tailsift/internal/clock"
	"github.com/tailsift/tailsift/internal/selfmetrics"
	"github.com/tailsift/tailsift/internal/tracebuf"
	"github.com/tailsift/tailsift/processor/tailsiftprocessor/internal/metadata"
)

// tailsiftProcessor implements processor.Traces on the shared trace buffer:
// ConsumeTraces encodes the batch once and hands the bytes to the buffer,
// which holds them by trace and forwards kept traces to next.
type tailsiftProcessor struct {
	buf       *tracebuf.Buffer
	telemetry *metadata.TelemetryBuilder
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
	obs := selfmetrics.NewObserver(selfmetrics.Instruments{
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
		SpansDeduped:    tb.ProcessorTailsiftSpansDeduplicated,
		ArenaMapped:     tb.ProcessorTailsiftArenaMappedBytes,
	})
	buf, err := tracebuf.New(*cfg, next.ConsumeTraces, tracebuf.Settings{
		Logger:   set.Logger,
		Observer: obs,
		Clock:    clk,
	})
	if err != nil {
		tb.Shutdown()
		return nil, err
	}
	if buf.Engine().HasBudget() {
		if err := tb.RegisterProcessorTailsiftBudgetClassProbabilityCallback(selfmetrics.ClassProbabilities(buf.Engine())); err != nil {
			tb.Shutdown()
			return nil, fmt.Errorf("register budget metric: %w", err)
		}
	}
	return &tailsiftProcessor{buf: buf, telemetry: tb}, nil
}

func (p *tailsiftProcessor) Start(ctx context.Context, host component.Host) error {
	return p.buf.StartWithStorage(ctx, host)
}

// Shutdown decides every buffered trace and forwards the kept ones within ctx.
func (p *tailsiftProcessor) Shutdown(ctx context.Context) error {
	err := p.buf.ShutdownWithStorage(ctx)
	p.telemetry.Shutdown()
	return err
}

func (p *tailsiftProcessor) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: false}
}

// ConsumeTraces buffers td's spans by trace. It returns once they are queued
// for their shards, not when they are decided.
func (p *tailsiftProcessor) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	var m ptrace.ProtoMarshaler
	buf, err := m.MarshalTraces(td)
	if err != nil {
		return consumererror.NewPermanent(fmt.Errorf("tailsift: encode traces: %w", err))
	}
	return pipelineError(p.buf.Ingest(ctx, buf))
}

// pipelineError wraps the buffer's typed errors for the pipeline. Invalid
// data is permanent, with the INVALID_ARGUMENT status that the otlp
// receiver answers (HTTP 400), so the client does not resend it. The
// consumer API cannot report a partial success: when only some spans had
// bad IDs, the others were accepted, and the message gives the exact
// counts. Everything else (queue full, where nothing was taken, or shutting
// down) stays retryable: the otlp receiver answers UNAVAILABLE (HTTP 503).
func pipelineError(err error) error {
	if _, ok := errors.AsType[*tracebuf.InvalidError](err); ok {
		return consumererror.NewPermanent(invalidArgument{err})
	}
	return err
}

// invalidArgument gives an error the gRPC status receivers look for.
type invalidArgument struct{ error }

func (e invalidArgument) GRPCStatus() *status.Status {
	return status.New(codes.InvalidArgument, e.Error())
}

func (e invalidArgument) Unwrap() error { return e.error }
