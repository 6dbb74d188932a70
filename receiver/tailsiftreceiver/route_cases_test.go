package tailsiftreceiver

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tailsift/tailsift/internal/router"
)

// TestRouteModeInvalidIDs: spans with bad IDs are not sent (every gateway
// refuses them). An ingesting receiver answers them with a partial success
// (rejected_spans); route mode answered a full success. It answers as an
// ingesting receiver now, and INVALID_ARGUMENT when no span is left.
func TestRouteModeInvalidIDs(t *testing.T) {
	gw, addrs := startRawGateways(t, 1)
	a := startAgent(t, addrs, nil)
	td := ptrace.NewTraces()
	ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
	ok := ss.Spans().AppendEmpty()
	ok.SetTraceID(pcommon.TraceID{1, 2, 3})
	ok.SetSpanID(pcommon.SpanID{1})
	bad := ss.Spans().AppendEmpty()
	bad.SetSpanID(pcommon.SpanID{2}) // zero trace ID
	bad2 := ss.Spans().AppendEmpty()
	bad2.SetTraceID(pcommon.TraceID{4}) // zero span ID
	resp, err := a.grpcExport(t.Context(), marshal(t, td))
	require.NoError(t, err)
	r := ptraceotlp.NewExportResponse()
	require.NoError(t, r.UnmarshalProto(resp))
	assert.Equal(t, int64(2), r.PartialSuccess().RejectedSpans())
	assert.Contains(t, r.PartialSuccess().ErrorMessage(), "rejected 2 of 3 spans: trace_id and span_id must be present")
	require.Eventually(t, func() bool { return gw.count() >= 1 }, 5*time.Second, 5*time.Millisecond)

	only := ptrace.NewTraces()
	only.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty().SetSpanID(pcommon.SpanID{3})
	_, err = a.grpcExport(t.Context(), marshal(t, only))
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
}

// TestClassifyForwardJoined: a request whose parts met a full queue at one
// gateway and a permanent refusal at another was answered INVALID_ARGUMENT
// as a whole, so that the sender dropped the part that was only refused for
// overload. It is a retryable refusal now; only a refusal that is permanent
// throughout is INVALID_ARGUMENT.
func TestClassifyForwardJoined(t *testing.T) {
	full := errors.New("sending queue is full")
	perm := consumererror.NewPermanent(errors.New("rpc error: code = ResourceExhausted desc = grpc: received message larger than max"))
	for name, tt := range map[string]struct {
		err  error
		want codes.Code
	}{
		"queue full":            {fmt.Errorf("send to a:1: %w", full), codes.Unavailable},
		"no members":            {router.ErrNoMembers, codes.Unavailable},
		"all down":              {router.ErrAllDown, codes.Unavailable},
		"full + permanent":      {errors.Join(fmt.Errorf("send to a:1: %w", full), fmt.Errorf("send to b:1: %w", perm)), codes.Unavailable},
		"permanent + permanent": {errors.Join(fmt.Errorf("send to a:1: %w", perm), fmt.Errorf("send to b:1: %w", perm)), codes.InvalidArgument},
		"permanent":             {fmt.Errorf("send to b:1: %w", perm), codes.InvalidArgument},
		"permanent join":        {consumererror.NewPermanent(errors.Join(full, full)), codes.InvalidArgument},
		"deadline":              {fmt.Errorf("send to a:1: %w", errors.New("context deadline exceeded")), codes.Unavailable},
	} {
		assert.Equal(t, tt.want, classifyForward(tt.err).st.Code(), name)
	}
}
