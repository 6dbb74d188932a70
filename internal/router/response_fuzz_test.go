package router

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// FuzzPartialSuccess checks the router's reading of a member's answer
// against the protobuf library's: for every ExportTraceServiceResponse it
// accepts, the rejected spans and the message are its. (The count decides
// what the router reports as refused by a member, another process.) pdata
// is not the reference: it reads some malformed groups that protobuf
// refuses.
func FuzzPartialSuccess(f *testing.F) {
	for _, seed := range []struct {
		rejected int64
		msg      string
	}{{0, ""}, {3, "too old"}, {-1, "negative"}, {1 << 40, ""}} {
		resp := ptraceotlp.NewExportResponse()
		resp.PartialSuccess().SetRejectedSpans(seed.rejected)
		resp.PartialSuccess().SetErrorMessage(seed.msg)
		b, err := resp.MarshalProto()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	// Two answers concatenated are one whose partial_success messages
	// merge (protobuf's rule for a repeated singular message): 3 rejected
	// from the first, the message from the second.
	first, second := ptraceotlp.NewExportResponse(), ptraceotlp.NewExportResponse()
	first.PartialSuccess().SetRejectedSpans(3)
	second.PartialSuccess().SetErrorMessage("too old")
	a, err := first.MarshalProto()
	if err != nil {
		f.Fatal(err)
	}
	b, err := second.MarshalProto()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(append(a, b...))
	f.Fuzz(func(t *testing.T, data []byte) {
		rejected, msg := partialSuccess(data)
		var resp collectortrace.ExportTraceServiceResponse
		if proto.Unmarshal(data, &resp) != nil {
			return
		}
		ps := resp.GetPartialSuccess()
		if rejected != ps.GetRejectedSpans() || msg != ps.GetErrorMessage() {
			t.Fatalf("router reads %d %q, protobuf %d %q", rejected, msg, ps.GetRejectedSpans(), ps.GetErrorMessage())
		}
	})
}
