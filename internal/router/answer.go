package router

import (
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
)

// A member's answers: whether an error says it is down, what
// exporterhelper's retry makes of an error, and the partial success of an
// accepted request.

// isDown reports whether err says that the member is not there: connection
// refused, or UNAVAILABLE without RetryInfo (with RetryInfo it is an
// overloaded gateway asking for a later retry, which is not down).
func isDown(err error) bool {
	if err == nil {
		return false
	}
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.Unavailable {
		return false
	}
	return retryInfo(st) == nil
}

func retryInfo(st *status.Status) *errdetails.RetryInfo {
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri
		}
	}
	return nil
}

// classify turns a send error into what exporterhelper's retry expects, as
// the otlp exporter does: retryable codes are retried (after the delay the
// server asks for), the rest is permanent.
func classify(err error) error {
	if err == nil {
		return nil
	}
	st := status.Convert(err)
	ri := retryInfo(st)
	switch st.Code() {
	case codes.OK:
		return nil
	case codes.Canceled, codes.DeadlineExceeded, codes.Aborted, codes.OutOfRange, codes.Unavailable, codes.DataLoss:
	case codes.ResourceExhausted:
		if ri == nil {
			return consumererror.NewPermanent(err)
		}
	default:
		return consumererror.NewPermanent(err)
	}
	if d := ri.GetRetryDelay().AsDuration(); d > 0 {
		return exporterhelper.NewThrottleRetry(err, d)
	}
	return err
}

// partialSuccess reads ExportTraceServiceResponse.partial_success.
func partialSuccess(resp []byte) (rejected int64, msg string) {
	for len(resp) > 0 {
		num, typ, n := protowire.ConsumeTag(resp)
		if n < 0 {
			return 0, ""
		}
		resp = resp[n:]
		if num == 1 && typ == protowire.BytesType {
			ps, m := protowire.ConsumeBytes(resp)
			if m < 0 {
				return 0, ""
			}
			resp = resp[m:]
			// A repeated singular message merges: a later field wins, an
			// absent one leaves the earlier value.
			rejected, msg = readPartialSuccess(ps, rejected, msg)
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, resp)
		if m < 0 {
			return 0, ""
		}
		resp = resp[m:]
	}
	return rejected, msg
}

// readPartialSuccess reads an ExportTracePartialSuccess over rejected and
// msg, what earlier occurrences set.
func readPartialSuccess(ps []byte, rejected int64, msg string) (int64, string) {
	for len(ps) > 0 {
		num, typ, n := protowire.ConsumeTag(ps)
		if n < 0 {
			return rejected, msg
		}
		ps = ps[n:]
		switch {
		case num == 1 && typ == protowire.VarintType:
			v, m := protowire.ConsumeVarint(ps)
			if m < 0 {
				return rejected, msg
			}
			rejected, ps = int64(v), ps[m:]
		case num == 2 && typ == protowire.BytesType:
			v, m := protowire.ConsumeBytes(ps)
			if m < 0 {
				return rejected, msg
			}
			msg, ps = string(v), ps[m:]
		default:
			m := protowire.ConsumeFieldValue(num, typ, ps)
			if m < 0 {
				return rejected, msg
			}
			ps = ps[m:]
		}
	}
	return rejected, msg
}
