package sampling

import (
	"context"
	"fmt"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/ottl"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/ottl/contexts/ottlspan"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/protobuf/encoding/protowire"
)

// ValidateRootSpanCondition parses root_span_condition's OTTL conditions,
// naming the one that fails.
func ValidateRootSpanCondition(conds []string) error {
	for i, c := range conds {
		if _, err := parseSpanConditions([]string{c}, ottl.PropagateError); err != nil {
			return fmt.Errorf("root_span_condition::%d: %w", i, err)
		}
	}
	return nil
}

// WithRootSpanCondition makes a span for which one of the OTTL conditions
// holds (span context, as ottl_condition's `span` conditions) count as its
// trace's root, besides a span without a parent: the keys of keyed
// policies (dynamic, adaptive) are read from the first such span. It is
// for traces whose true root never reaches this collector, such as those a
// message consumer starts from a producer's context (`kind ==
// SPAN_KIND_CONSUMER`). Each span with a parent is then decoded into pdata
// to evaluate the conditions, which costs a few microseconds and
// allocates: leave it off when roots arrive.
func WithRootSpanCondition(conds []string) Option {
	return func(o *engineOptions) { o.rootConds = conds }
}

// rootCondition is root_span_condition, built.
type rootCondition struct {
	seq *ottl.ConditionSequence[*ottlspan.TransformContext]
}

func newRootCondition(conds []string) (*rootCondition, error) {
	if len(conds) == 0 {
		return nil, nil
	}
	seq, err := parseSpanConditions(conds, ottl.PropagateError)
	if err != nil {
		return nil, fmt.Errorf("root_span_condition: %w", err)
	}
	return &rootCondition{seq: seq}, nil
}

// holds reports whether a condition holds for the span v shows: v's
// resource, scope and span are wrapped in a one-span TracesData, decoded
// and evaluated. A span that does not decode, or a condition that fails
// to evaluate, does not hold.
func (r *rootCondition) holds(v *SpanView) bool {
	var scope []byte
	if v.Scope != nil {
		scope = protowire.AppendTag(scope, 1, protowire.BytesType) // ScopeSpans.scope
		scope = protowire.AppendBytes(scope, v.Scope)
	}
	scope = protowire.AppendTag(scope, 2, protowire.BytesType) // ScopeSpans.spans
	scope = protowire.AppendBytes(scope, v.Span)
	var rs []byte
	if v.Resource != nil {
		rs = protowire.AppendTag(rs, 1, protowire.BytesType) // ResourceSpans.resource
		rs = protowire.AppendBytes(rs, v.Resource)
	}
	rs = protowire.AppendTag(rs, 2, protowire.BytesType) // ResourceSpans.scope_spans
	rs = protowire.AppendBytes(rs, scope)
	msg := protowire.AppendTag(nil, 1, protowire.BytesType) // TracesData.resource_spans
	msg = protowire.AppendBytes(msg, rs)
	td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(msg)
	if err != nil || td.ResourceSpans().Len() != 1 {
		return false
	}
	rsp := td.ResourceSpans().At(0)
	if rsp.ScopeSpans().Len() != 1 || rsp.ScopeSpans().At(0).Spans().Len() != 1 {
		return false
	}
	ss := rsp.ScopeSpans().At(0)
	tCtx := ottlspan.NewTransformContext(rsp, ss, ss.Spans().At(0))
	defer tCtx.Close()
	ok, err := r.seq.Eval(context.Background(), tCtx)
	return err == nil && ok
}
