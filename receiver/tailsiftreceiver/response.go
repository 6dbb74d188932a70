package tailsiftreceiver

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tailsift/tailsift/internal/cluster"
	"github.com/tailsift/tailsift/internal/tracebuf"
)

// retryDelay is the back-off the receiver asks for when its buffer queue is
// full: RetryInfo on gRPC, Retry-After on HTTP.
const retryDelay = time.Second

// outcome is what one export request came to.
type outcome struct {
	// st is non-nil when the request failed as a whole.
	st *status.Status
	// rejected is the number of spans refused for bad IDs in an otherwise
	// accepted request; message says why. OTLP reports them as a partial
	// success.
	rejected int
	message  string
	// httpCode, when not 0, is the HTTP status instead of st's mapping.
	httpCode int
	// taken is the number of spans taken in of a request refused (st)
	// part-way: one heavier than buffer.max_queued_bytes, taken in as
	// pieces, of which one found no room.
	taken int
}

// classify turns what Buffer.IngestOwned returned into an OTLP outcome. It
// is the one place the buffer's typed errors meet gRPC codes; httpStatus
// then gives the HTTP status, and writeStatus the Retry-After:
//   - nil: success;
//   - *tracebuf.InvalidError with some spans accepted: partial success, with
//     the exact number of rejected spans;
//   - *tracebuf.InvalidError otherwise (malformed bytes, or bad IDs in every
//     span): INVALID_ARGUMENT, HTTP 400;
//   - *tracebuf.TooLargeError with other spans taken in: partial success,
//     the spans too large (and any with bad IDs) rejected;
//   - *tracebuf.TooLargeError otherwise (a request of one span that with
//     its resource and scope weighs more than the whole of
//     buffer.max_queued_bytes; nothing was taken, and a retry never fits):
//     INVALID_ARGUMENT without a retry delay, as gRPC's and the otlp
//     receiver's answers to a request over their size limits are
//     permanent; HTTP 413, as a body over max_request_body_size;
//   - *tracebuf.RefusedError (queue full: nothing was taken, or the pieces
//     before of a request heavier than the queue) and tracebuf.ErrShutdown:
//     UNAVAILABLE with a retry delay, HTTP 503 with Retry-After;
//   - anything else: INTERNAL, HTTP 500.
func classify(err error) outcome {
	if err == nil {
		return outcome{}
	}
	if inv, ok := errors.AsType[*tracebuf.InvalidError](err); ok {
		if inv.Partial() {
			return outcome{rejected: inv.Rejected, message: inv.Error()}
		}
		return outcome{st: status.New(codes.InvalidArgument, inv.Error())}
	}
	if tl, ok := errors.AsType[*tracebuf.TooLargeError](err); ok {
		if tl.Partial() {
			return outcome{rejected: tl.Spans + tl.Invalid, message: tl.Error()}
		}
		return outcome{st: status.New(codes.InvalidArgument, tl.Error()), httpCode: http.StatusRequestEntityTooLarge}
	}
	if errors.Is(err, cluster.ErrInvalidControl) {
		return outcome{st: status.New(codes.InvalidArgument, err.Error())}
	}
	if rf, ok := errors.AsType[*tracebuf.RefusedError](err); ok {
		return outcome{st: retryable(err.Error()), taken: rf.Taken}
	}
	if errors.Is(err, tracebuf.ErrQueueFull) {
		return outcome{st: retryable(err.Error())}
	}
	if errors.Is(err, tracebuf.ErrShutdown) {
		return outcome{st: retryable(shuttingDown)}
	}
	return outcome{st: status.New(codes.Internal, err.Error())}
}

// retryable is UNAVAILABLE with a RetryInfo detail.
func retryable(msg string) *status.Status {
	st := status.New(codes.Unavailable, msg)
	if d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(retryDelay)}); err == nil {
		st = d
	}
	return st
}

// appendExportResponse appends an encoded ExportTraceServiceResponse: empty
// on full success, else with partial_success (field 1) holding
// rejected_spans (1) and error_message (2).
func appendExportResponse(dst []byte, rejected int, msg string) []byte {
	if rejected == 0 && msg == "" {
		return dst
	}
	size := 0
	if rejected != 0 {
		size += protowire.SizeTag(1) + protowire.SizeVarint(uint64(rejected))
	}
	if msg != "" {
		size += protowire.SizeTag(2) + protowire.SizeBytes(len(msg))
	}
	dst = protowire.AppendTag(dst, 1, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(size))
	if rejected != 0 {
		dst = protowire.AppendTag(dst, 1, protowire.VarintType)
		dst = protowire.AppendVarint(dst, uint64(rejected))
	}
	if msg != "" {
		dst = protowire.AppendTag(dst, 2, protowire.BytesType)
		dst = protowire.AppendString(dst, msg)
	}
	return dst
}

// httpStatus maps a gRPC code to the OTLP/HTTP status, as the otlp receiver
// does.
func httpStatus(c codes.Code) int {
	switch c {
	case codes.Canceled, codes.DeadlineExceeded, codes.Aborted, codes.OutOfRange, codes.Unavailable, codes.DataLoss:
		return http.StatusServiceUnavailable
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.InvalidArgument:
		return http.StatusBadRequest
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.Unimplemented:
		return http.StatusNotFound
	default:
		return http.StatusInternalServerError
	}
}

// httpCodeToGRPC is the inverse mapping, for errors that start as HTTP
// statuses (decompression failures, body limits).
func httpCodeToGRPC(code int) codes.Code {
	switch code {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		return codes.InvalidArgument
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusForbidden:
		return codes.PermissionDenied
	case http.StatusNotFound:
		return codes.Unimplemented
	case http.StatusTooManyRequests:
		return codes.ResourceExhausted
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return codes.Unavailable
	default:
		return codes.Unknown
	}
}

// retryAfter returns the Retry-After value of st's RetryInfo, if any.
func retryAfter(st *status.Status) (string, bool) {
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			secs := int64((ri.GetRetryDelay().AsDuration() + time.Second - 1) / time.Second)
			return strconv.FormatInt(secs, 10), true
		}
	}
	return "", false
}
