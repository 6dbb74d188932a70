// Package samplingtest helps tests drive a sampling.Engine with real spans.
package samplingtest

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/wire"
	"github.com/tailsift/tailsift/sampling"
)

// Summarize returns the summary the buffer would build for td, one trace's
// spans, as the engine e sees them: counts, status, times, identity (from the
// root's tracestate, else the first span's), span predicates and root keys,
// and the spans as pdata when e needs them. now is the decision time, Unix
// nanoseconds.
func Summarize(t testing.TB, e *sampling.Engine, td ptrace.Traces, now int64) *sampling.Trace {
	t.Helper()
	var m ptrace.ProtoMarshaler
	buf, err := m.MarshalTraces(td)
	require.NoError(t, err)
	var b wire.Batch
	require.NoError(t, wire.Scan(buf, &b))
	sum := &sampling.Trace{Now: now}
	identity := false
	for i := range b.Spans {
		sp := &b.Spans[i]
		sc := &b.Scopes[sp.Scope]
		if !identity || (!sp.HasParent && len(sp.TraceState) > 0) {
			sum.SetIdentity(sp.TraceID, sp.TraceState)
			identity = true
		}
		sum.AddSpan(len(sp.Raw), sp.Status, sp.Start, sp.End)
		v := View(sp, sc)
		e.ObserveSpan(sum, &v)
	}
	if e.NeedsSpans() {
		sum.Spans, sum.HasSpans = td, true
	}
	return sum
}

// View is the view the buffer gives the engine of a scanned span (as in
// tracebuf's shard.add).
func View(sp *wire.Span, sc *wire.Scope) sampling.SpanView {
	return sampling.SpanView{
		Resource: sc.Resource, Scope: sc.Scope, Span: sp.Raw, Name: sp.Name,
		TraceState: sp.TraceState, Flags: sp.Flags, Status: sp.Status,
		Root: !sp.HasParent, Start: sp.Start, End: sp.End,
	}
}
