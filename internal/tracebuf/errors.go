package tracebuf

import (
	"errors"
	"fmt"
)

// The errors Ingest returns are typed, and carry no transport status: the
// receiver maps them once to gRPC codes and HTTP statuses, and the processor
// wraps them for the pipeline (permanent for InvalidError, retryable
// otherwise).

// ErrShutdown is returned by Ingest once Shutdown has begun (or before
// Start). Nothing of the request was taken; the caller may retry elsewhere.
var ErrShutdown = errors.New("tailsift: shutting down")

// ErrQueueFull is what a RefusedError is (errors.Is), for callers that only
// ask whether to retry.
var ErrQueueFull = errors.New("tailsift: buffer queue full")

// RefusedError reports a request refused because the buffer had no room
// for it before the caller's context ended (buffer.max_queued_bytes, or the
// queue of one of the shards its traces go to). Acceptance is
// all-or-nothing: no span of the request was taken, so a retry sends no
// duplicate; except for a request heavier than the whole queue, taken in
// as pieces, of which Taken spans (the pieces before the one that found no
// room) were taken in: the retry brings them again, and the spans of a
// trace still buffered are kept once. It is retryable.
type RefusedError struct {
	// Spans is the number of valid spans refused (spans with invalid IDs
	// are reported by an InvalidError of their own, never both).
	Spans int
	// Taken is the number of spans of the request taken in before the
	// refusal (0 but for a request taken in pieces).
	Taken int
	// Cause is why waiting ended: the caller's context error, or
	// ErrShutdown.
	Cause error
}

func (e *RefusedError) Error() string {
	if e.Taken > 0 {
		return fmt.Sprintf("tailsift: buffer queue full, a request heavier than buffer.max_queued_bytes taken in pieces: %d spans taken in, "+
			"the other %d refused, retry later (spans of a trace still buffered are kept once): %v", e.Taken, e.Spans, e.Cause)
	}
	return fmt.Sprintf("tailsift: buffer queue full, %d spans refused, retry later: %v", e.Spans, e.Cause)
}

// Unwrap returns the cause.
func (e *RefusedError) Unwrap() error { return e.Cause }

// Is makes errors.Is(err, ErrQueueFull) true.
func (e *RefusedError) Is(target error) bool { return target == ErrQueueFull }

// TooLargeError reports spans refused because each, with its resource and
// scope, weighs more than the whole of buffer.max_queued_bytes: its bytes
// and its scan (QueueWeight) could never fit the queue, however long it
// waited, and a smaller request would not help. A request heavier than the
// queue is otherwise taken in as pieces within it: Taken spans of the
// request were taken in. It is permanent: resent as it is, such a span is
// refused again; the operator must raise the key it names, or the client
// send smaller spans. Spans taken in again (a handover given back, a
// replay from the store) or forwarded by another gateway (IngestForwarded)
// were accepted once and are never refused for their size
// (Buffer.reserve).
type TooLargeError struct {
	// Spans is the number of valid spans refused for their size.
	Spans int
	// Weight is what the heaviest of them would hold in the queue, and
	// Max buffer.max_queued_bytes.
	Weight, Max int64
	// Taken is the number of the request's other spans taken in, and
	// Invalid the number of its spans refused for bad IDs (counted as
	// such).
	Taken, Invalid int
}

// Partial reports whether some spans of the request were taken in.
func (e *TooLargeError) Partial() bool { return e.Taken > 0 }

func (e *TooLargeError) Error() string {
	msg := fmt.Sprintf("tailsift: a span needs %d bytes of queue with its resource and scope, more than buffer.max_queued_bytes (%d) holds in all; "+
		"raise buffer.max_queued_bytes or send smaller spans", e.Weight, e.Max)
	if e.Spans > 1 {
		msg = fmt.Sprintf("tailsift: %d spans each need more bytes of queue with their resource and scope (the heaviest %d) than buffer.max_queued_bytes (%d) holds in all; "+
			"raise buffer.max_queued_bytes or send smaller spans", e.Spans, e.Weight, e.Max)
	}
	switch {
	case e.Invalid == 1:
		msg += "; 1 span with bad IDs refused"
	case e.Invalid > 1:
		msg += fmt.Sprintf("; %d spans with bad IDs refused", e.Invalid)
	}
	if e.Taken > 0 {
		msg += fmt.Sprintf(" (the other %d spans of the request were taken in)", e.Taken)
	}
	return msg
}

// InvalidError reports spans the buffer refuses as malformed; it is
// permanent. Either the request did not scan as OTLP (Total is 0 and Err
// says why), or Rejected of its Total spans have an all-zero or missing
// trace ID or span ID: those are dropped and counted, and the other
// Total-Rejected spans were accepted (an OTLP partial success).
type InvalidError struct {
	Rejected, Total int
	Err             error
}

func (e *InvalidError) Error() string {
	if e.Total == 0 {
		return fmt.Sprintf("tailsift: malformed OTLP traces request: %v", e.Err)
	}
	return fmt.Sprintf("tailsift: rejected %d of %d spans: %v", e.Rejected, e.Total, e.Err)
}

// Unwrap returns what was wrong.
func (e *InvalidError) Unwrap() error { return e.Err }

// Partial reports whether some spans of the request were accepted.
func (e *InvalidError) Partial() bool { return e.Total > 0 && e.Rejected < e.Total }

// InvalidIDs is the error of rejected spans of total refused for their bad
// IDs: a partial success when some spans are left.
func InvalidIDs(rejected, total int) *InvalidError {
	return &InvalidError{Rejected: rejected, Total: total, Err: errInvalidIDs}
}

// errInvalidIDs is the reason spans with bad IDs are rejected.
var errInvalidIDs = errors.New("trace_id and span_id must be present and not all zero")
