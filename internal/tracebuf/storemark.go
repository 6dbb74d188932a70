package tracebuf

import (
	"bytes"
	"fmt"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/store"
	"github.com/tailsift/tailsift/internal/wire"
	"github.com/tailsift/tailsift/sampling"
)

// How a trace read back from the store is marked when it is sent: the
// spans of a kept trace after a restart, of a rescue, and of a retroactive
// keep (storerescue.go, store.go).

// ReasonLateSpan is the stored reason of a keep by a late span (a rescue).
const ReasonLateSpan = "late_span"

// restoredMark is how the spans of a trace kept under stored decision d
// are marked after a restart, as they were before it: a rescue or a
// retroactive keep as a supplement (counting 0), any other keep with its
// threshold and, when a policy derived the randomness it was kept on (a
// hash_salt, not's reflection, the union's R*), that randomness as rv.
func restoredMark(d store.Decision) keptMark {
	switch d.Reason {
	case ReasonLateSpan:
		return keptMark{th: d.Threshold, rv: uint64(sampling.SupplementRescue) << supplementShift}
	case RetroactiveRule:
		return keptMark{th: d.Threshold, rv: uint64(sampling.SupplementRetro) << supplementShift}
	}
	m := keptMark{th: d.Threshold}
	if d.HasRV {
		m.rv = d.RV&rvMask | rvSet
	}
	return m
}

// storedDecision is the store's record of decision d, taken for reason,
// the trace's spans marked with mark when d keeps it: its rv, and a
// supplement as the reason restoredMark reads it from (a rescued trace
// another gateway handed over is recorded as a keep by a late span).
func storedDecision(d sampling.Decision, mark keptMark, reason string) store.Decision {
	sd := store.Decision{Keep: d.Keep(), Threshold: d.Threshold.Unsigned(), Policy: d.Policy, Reason: reason}
	if !d.Keep() {
		return sd
	}
	switch mark.supplement() {
	case sampling.SupplementRescue:
		sd.Reason = ReasonLateSpan
	case sampling.SupplementRetro:
		sd.Reason = RetroactiveRule
	}
	if rv, ok := mark.randomness(); ok {
		sd.RV, sd.HasRV = rv, true
	}
	return sd
}

// markStored decodes a stored trace's request for the next consumer: each
// span once (a span with the same ID and bytes as an earlier one is a
// duplicate), its tracestate marked by m, and, when rule is set,
// sampling.rule=rule on its root spans (on all its spans when all is set),
// in place of one they have. It returns the spans it holds.
func markStored(req []byte, m sampling.Marker, rule string, all bool) (ptrace.Traces, int, error) {
	return markStoredExcept(req, m, rule, all, make(map[[8]byte][]byte))
}

// markStoredExcept is markStored without the spans in sent (by ID and
// bytes); it adds the spans it returns to sent.
func markStoredExcept(req []byte, m sampling.Marker, rule string, all bool, sent map[[8]byte][]byte) (ptrace.Traces, int, error) {
	var batch wire.Batch
	if err := wire.Scan(req, &batch); err != nil {
		return ptrace.Traces{}, 0, fmt.Errorf("scan stored trace: %w", err)
	}
	var attr []byte
	if rule != "" {
		attr = wire.AppendStringAttr(nil, "sampling.rule", rule)
	}
	var out, spans []byte
	var ends []int
	scope := int32(-1)
	flush := func() {
		if len(ends) > 0 {
			out = wire.AppendResourceSpans(out, &batch.Scopes[scope], spans, ends)
		}
		spans, ends = spans[:0], ends[:0]
	}
	n := 0
	for i := range batch.Spans {
		sp := &batch.Spans[i]
		if first, ok := sent[sp.SpanID]; ok && bytes.Equal(first, sp.Raw) {
			continue
		}
		sent[sp.SpanID] = sp.Raw
		if sp.Scope != scope {
			flush()
			scope = sp.Scope
		}
		if len(attr) > 0 && (all || !sp.HasParent) {
			spans = wire.AppendSpanAttrs(spans, sp.Raw, m.Mark(sp.TraceState), attr)
		} else {
			spans = wire.AppendSpan(spans, sp.Raw, m.Mark(sp.TraceState))
		}
		ends = append(ends, len(spans))
		n++
	}
	flush()
	var u ptrace.ProtoUnmarshaler
	td, err := u.UnmarshalTraces(out)
	if err != nil {
		return td, 0, fmt.Errorf("decode stored trace: %w", err)
	}
	return td, n, nil
}
