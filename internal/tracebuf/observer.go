package tracebuf

import (
	"time"

	"github.com/tailsift/tailsift/sampling"
)

// Reasons a trace is decided, as reported to the Observer.
const (
	ReasonQuiet    = "quiet"           // the root arrived and the trace went quiet
	ReasonMaxWait  = "max_wait"        // the trace reached completion.max_wait
	ReasonMaxSpans = "max_spans"       // early: the trace reached completion.max_spans
	ReasonMaxBytes = "max_trace_bytes" // early: the trace exceeded completion.max_trace_bytes
	ReasonMemory   = "memory"          // early: the buffer reached buffer.max_bytes
	ReasonShutdown = "shutdown"        // early: the component is shutting down
	ReasonArrival  = "arrival"         // early: a span with a keep_on_arrival status arrived
)

// Refusal reasons.
const (
	RefusedQueueFull = "queue_full" // retryable
	RefusedInvalid   = "invalid"    // permanent: bad IDs
	RefusedTooLarge  = "too_large"  // permanent: a span heavier than buffer.max_queued_bytes
)

// Observer receives the buffer's events, for self-metrics. It is called
// concurrently from Ingest callers and from every shard goroutine.
type Observer interface {
	// Received counts spans accepted into the buffer's queue.
	Received(spans int)
	// Refused counts spans refused, by reason.
	Refused(reason string, spans int)
	// Decided reports one decision: the deciding policy (empty if none
	// kept), the outcome, the trace's buffered span count, the reason, the
	// time since its first span, and how long after its rule fired the
	// decision came (negative when no timed rule applies).
	Decided(policy string, keep bool, spans int, reason string, latency, lag time.Duration)
	// Late counts spans that arrived after their trace was decided.
	Late(kept bool, spans int)
	// Buffered reports changes of buffered bytes and traces.
	Buffered(bytes, traces int64)
	// ExportFailed counts kept spans the next consumer did not take.
	ExportFailed(spans int)
	// Held reports changes of the bytes and traces held for rescue.
	Held(bytes, traces int64)
	// Deduplicated counts spans of kept traces left out as duplicates: the
	// same span ID and bytes as an earlier span under the same resource and
	// scope (a client's retry).
	Deduplicated(spans int)
	// Mapped reports changes of the bytes the buffer's arenas hold outside
	// the Go heap, which the Go runtime's metrics do not see: the span
	// records in use, free blocks, and the untouched rest of each shard's
	// current chunk.
	Mapped(bytes int64)
	// Rescued reports a dropped trace kept after all by a late span, and the
	// policy that kept it.
	Rescued(policy string)
	// Probed counts the traces probed at a learned quiet shorter than
	// completion.quiet, without a store or rescue.window, since the
	// shard's last report: kept then, or dropped and put on probation until
	// completion.quiet (completion.safe).
	Probed(kept, dropped int)
}

// KeptObserver is an Observer that also sees each kept trace's summary
// (the status page lists the recent kept errors and anomalies). Kept is
// called on the shard goroutine, right after Decided; it must not retain t.
type KeptObserver interface {
	Observer
	Kept(t *sampling.Trace, d sampling.Decision)
}

// RouteObserver is an Observer that also receives the completion counts
// of each route (the root span's service and name), summed since the last
// report, at most once a second per shard (docs/completion.md).
type RouteObserver interface {
	Observer
	RouteCompletion(c RouteCompletion)
}

// RouteCompletion is what one shard saw of one route since its last report.
type RouteCompletion struct {
	Route string // "service / root span name"
	// Traces decided that had their root.
	Traces int64
	// PartialTraces of them got spans after their decision, and LateSpans
	// is how many. Both are estimates when the shard decides more than
	// 4096 traces per completion.learn.max: they are then counted on a
	// sample of the traces, by trace ID, and scaled up.
	PartialTraces, LateSpans int64
}

// NopObserver ignores every event.
type NopObserver struct{}

func (NopObserver) Received(int)                                                    {}
func (NopObserver) Refused(string, int)                                             {}
func (NopObserver) Decided(string, bool, int, string, time.Duration, time.Duration) {}
func (NopObserver) Late(bool, int)                                                  {}
func (NopObserver) Buffered(int64, int64)                                           {}
func (NopObserver) ExportFailed(int)                                                {}
func (NopObserver) Held(int64, int64)                                               {}
func (NopObserver) Deduplicated(int)                                                {}
func (NopObserver) Mapped(int64)                                                    {}
func (NopObserver) Rescued(string)                                                  {}
func (NopObserver) Probed(int, int)                                                 {}
