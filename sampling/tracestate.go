package sampling

import (
	"bytes"
	"strings"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
)

// SetIdentity fills t.ID and t.Randomness from the trace ID and, when it
// carries OpenTelemetry values, the tracestate that arrived with the trace:
// an explicit rv replaces the trace ID's randomness, a th is the head
// sampler's threshold. An unparsable tracestate is ignored.
func (t *Trace) SetIdentity(id [16]byte, tracestate []byte) {
	t.ID = id
	t.Randomness = sampling.TraceIDToRandomness(id)
	t.HasHead = false
	if !bytes.Contains(tracestate, []byte("ot=")) {
		return
	}
	w3c, err := sampling.NewW3CTraceState(string(tracestate))
	if err != nil {
		return
	}
	ot := w3c.OTelValue()
	if rnd, ok := ot.RValueRandomness(); ok {
		t.Randomness = rnd
	}
	if th, ok := ot.TValueThreshold(); ok {
		t.HeadThreshold, t.HasHead = th, true
	}
}

// Marker writes a kept decision's threshold into span tracestates.
type Marker struct {
	th     sampling.Threshold
	simple string // "ot=th:<tvalue>", the whole tracestate when none arrived
}

// NewMarker prepares the tracestate edits for threshold th.
func NewMarker(th sampling.Threshold) Marker {
	return Marker{th: th, simple: "ot=th:" + th.TValue()}
}

// Mark returns the tracestate for a kept span whose tracestate was existing:
// the ot=th value is set to the marker's threshold, unless existing already
// holds a stricter one; every other key and value is kept. An existing
// tracestate that does not parse is replaced by the marker's value alone.
func (m Marker) Mark(existing []byte) string {
	if len(existing) == 0 {
		return m.simple
	}
	w3c, err := sampling.NewW3CTraceState(string(existing))
	if err != nil {
		return m.simple
	}
	ot := w3c.OTelValue()
	if cur, ok := ot.TValueThreshold(); ok && !sampling.ThresholdGreater(m.th, cur) {
		// The span already carries this or a lower probability; keep it.
		return string(existing)
	}
	if err := ot.UpdateTValueWithSampling(m.th); err != nil {
		return m.simple
	}
	var sb strings.Builder
	if err := w3c.Serialize(&sb); err != nil {
		return m.simple
	}
	return sb.String()
}
