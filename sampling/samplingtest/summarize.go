// Package samplingtest helps tests drive a sampling.Engine with real spans.
package samplingtest

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/tracebuf"
	"github.com/tailsift/tailsift/internal/wire"
	"github.com/tailsift/tailsift/sampling"
)

// Summarize returns the summary the buffer would build for td, one trace's
// spans, as the engine e sees them: counts, status, times and identity
// (tracebuf.AddSpan), span predicates and root keys (tracebuf.SpanView), and
// the spans as pdata when e needs them. now is the decision time, Unix
// nanoseconds.
func Summarize(t testing.TB, e *sampling.Engine, td ptrace.Traces, now int64) *sampling.Trace {
	t.Helper()
	var m ptrace.ProtoMarshaler
	buf, err := m.MarshalTraces(td)
	require.NoError(t, err)
	var b wire.Batch
	require.NoError(t, wire.Scan(buf, &b))
	sum := &sampling.Trace{Now: now}
	hasRoot := false
	for i := range b.Spans {
		sp := &b.Spans[i]
		hasRoot = tracebuf.AddSpan(sum, hasRoot, sp)
		v := tracebuf.SpanView(sp, &b.Scopes[sp.Scope])
		e.ObserveSpan(sum, &v)
	}
	if e.NeedsSpans() {
		sum.Spans, sum.HasSpans = td, true
	}
	return sum
}

// View is the view the buffer gives the engine of a scanned span.
func View(sp *wire.Span, sc *wire.Scope) sampling.SpanView { return tracebuf.SpanView(sp, sc) }
