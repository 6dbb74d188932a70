package tracebuf

import (
	"github.com/tailsift/tailsift/internal/wire"
	"github.com/tailsift/tailsift/sampling"
)

// SpanView is the view the engine gets of scanned span sp under its scope
// sc (Engine.ObserveSpan).
func SpanView(sp *wire.Span, sc *wire.Scope) sampling.SpanView {
	return sampling.SpanView{
		Resource: sc.Resource, Scope: sc.Scope, Span: sp.Raw, Name: sp.Name,
		TraceState: sp.TraceState, Flags: sp.Flags, Status: sp.Status,
		Root: !sp.HasParent, Start: sp.Start, End: sp.End,
	}
}

// AddSpan adds scanned span sp to its trace's summary sum as the buffer
// does: counts, size, status and times, and the trace's identity (randomness,
// head threshold), which the first span sets and the first root replaces
// when it carries a tracestate, the authoritative one for rv and th. hasRoot
// says whether a root was added before; AddSpan returns whether one has been
// now.
func AddSpan(sum *sampling.Trace, hasRoot bool, sp *wire.Span) bool {
	root := !sp.HasParent
	if sum.SpanCount == 0 || (root && !hasRoot && len(sp.TraceState) > 0) {
		sum.SetIdentity(sp.TraceID, sp.TraceState)
	}
	sum.AddSpan(len(sp.Raw), sp.Status, sp.Start, sp.End)
	return hasRoot || root
}
