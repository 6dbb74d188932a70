package sampling

// TraceFlagsConfig keeps traces with a span whose W3C sampled flag is set, as
// contrib's trace_flags policy does. It has no settings.
type TraceFlagsConfig struct{}

// w3cFlagSampled is the W3C trace-flags sampled bit, the low bit of Span.flags.
const w3cFlagSampled = 0x01

type traceFlags struct{ bit uint64 }

func newTraceFlags(_ any, b *builder) (evaluator, error) {
	bit, err := b.MatchSpans(func(v *SpanView) bool { return v.Flags&w3cFlagSampled != 0 })
	if err != nil {
		return nil, err
	}
	return traceFlags{bit: bit}, nil
}

// Evaluate keeps the trace when any span had the sampled flag.
func (p traceFlags) Evaluate(t *Trace) Decision {
	if t.Matched&p.bit != 0 {
		return keepAlways
	}
	return Decision{}
}
