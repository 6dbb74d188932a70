package sampling

import (
	"bytes"
	"strings"

	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
)

// SetIdentity fills t.ID and t.Randomness from the trace ID and, when it
// carries OpenTelemetry values, the tracestate that arrived with the trace:
// an explicit rv replaces the trace ID's randomness, a th is the head
// sampler's threshold. An unparsable tracestate is ignored.
func (t *Trace) SetIdentity(id [16]byte, tracestate []byte) {
	t.ID = id
	t.Randomness = otelsampling.TraceIDToRandomness(id)
	t.HasHead, t.explicitRV = false, false
	if !bytes.Contains(tracestate, []byte("ot=")) {
		return
	}
	w3c, err := otelsampling.NewW3CTraceState(string(tracestate))
	if err != nil {
		return
	}
	ot := w3c.OTelValue()
	if rnd, ok := ot.RValueRandomness(); ok {
		t.Randomness, t.explicitRV = rnd, true
	}
	if th, ok := ot.TValueThreshold(); ok {
		t.HeadThreshold, t.HasHead = th, true
	}
}

// Marker writes a kept decision's threshold, and the randomness it was
// decided on when a policy derived it, into span tracestates.
type Marker struct {
	th     otelsampling.Threshold
	rnd    otelsampling.Randomness
	hasRnd bool
	simple string // the whole tracestate when none arrived
	// supplement, when set, is a supplement marker's tailsift value.
	supplement Supplement
}

// Supplement is why spans go out that the trace's first decision did not
// keep. The first decision is the sample that adjusted counts stand for:
// each trace is in it with the probability its threshold says. Spans a
// later decision adds are kept with a probability that depends on what
// happened after the first (a late error, a request for the trace), which
// no threshold can state without counting the trace twice: a trace the
// first decision kept at p is counted 1/p, so the same trace rescued when
// the first decision dropped it must count 0 for the sum to stay unbiased.
// A supplement marker therefore erases ot's th (contrib's
// OpenTelemetryTraceState.AdjustedCount reads 0 for a span without one)
// and says why in a tailsift entry. See docs/policies/counts.md.
type Supplement uint8

const (
	// SupplementRescue marks late spans of a trace the first decision
	// dropped and a later one (Engine.Redecide) kept: tailsift=rescue.
	SupplementRescue Supplement = iota + 1
	// SupplementRetro marks spans the first decision dropped, exported
	// afterwards (retroactive keep from a store): tailsift=retro.
	SupplementRetro
)

// supplementKey is the tracestate key of a supplement marker's entry.
const supplementKey = "tailsift"

func (s Supplement) String() string {
	switch s {
	case SupplementRescue:
		return "rescue"
	case SupplementRetro:
		return "retro"
	}
	return ""
}

// NewSupplementMarker prepares the tracestate edits for spans kept by a
// decision other than the trace's first: ot's th removed (adjusted count
// 0), rv and the other entries kept, and tailsift=rescue or retro put
// first.
func NewSupplementMarker(why Supplement) Marker {
	m := Marker{supplement: why}
	m.simple = supplementKey + "=" + why.String()
	return m
}

// AdjustedCount returns how many spans a kept span with this tracestate
// stands for: 1/p for its ot th, 0 without a th (a supplement, or a span no
// probability sampler marked) or for a tracestate that does not parse.
func AdjustedCount(tracestate string) float64 {
	w3c, err := otelsampling.NewW3CTraceState(tracestate)
	if err != nil {
		return 0
	}
	return w3c.OTelValue().AdjustedCount()
}

// NewMarker prepares the tracestate edits for threshold th, decided on the
// trace's own randomness.
func NewMarker(th otelsampling.Threshold) Marker {
	return newMarker(th, otelsampling.Randomness{}, false)
}

// NewMarkerOn prepares the tracestate edits for threshold th, decided on
// randomness rnd that a policy derived (Engine.Randomness): the spans get
// it as rv next to th.
func NewMarkerOn(th otelsampling.Threshold, rnd otelsampling.Randomness) Marker {
	return newMarker(th, rnd, true)
}

func newMarker(th otelsampling.Threshold, rnd otelsampling.Randomness, hasRnd bool) Marker {
	m := Marker{th: th, rnd: rnd, hasRnd: hasRnd}
	var w3c otelsampling.W3CTraceState
	m.simple, _ = m.edit(&w3c)
	return m
}

// Mark returns the tracestate for a kept span whose tracestate was existing,
// every other key and value kept:
//   - with a randomness, ot's rv is set to it and ot's th to the marker's
//     threshold (a th that arrived was relative to another randomness);
//   - without, ot's th is set to the marker's threshold unless existing
//     already holds a stricter one.
//
// An existing tracestate that does not parse is replaced by the marker's
// values alone.
func (m Marker) Mark(existing []byte) string {
	if len(existing) == 0 {
		return m.simple
	}
	w3c, err := otelsampling.NewW3CTraceState(string(existing))
	if err != nil {
		return m.simple
	}
	if m.supplement != 0 {
		return m.markSupplement(&w3c)
	}
	if cur, ok := w3c.OTelValue().TValueThreshold(); ok && !m.hasRnd && !otelsampling.ThresholdGreater(m.th, cur) {
		// The span already carries this or a lower probability; keep it.
		return string(existing)
	}
	out, err := m.edit(&w3c)
	if err != nil {
		return m.simple
	}
	return out
}

// edit sets the marker's values in w3c and serializes it.
func (m Marker) edit(w3c *otelsampling.W3CTraceState) (string, error) {
	ot := w3c.OTelValue()
	if m.hasRnd {
		ot.SetRValue(m.rnd)
		ot.ClearTValue()
	}
	if err := ot.UpdateTValueWithSampling(m.th); err != nil {
		return "", err
	}
	var sb strings.Builder
	if err := w3c.Serialize(&sb); err != nil {
		return "", err
	}
	return sb.String(), nil
}

// markSupplement is Mark for a supplement marker.
func (m Marker) markSupplement(w3c *otelsampling.W3CTraceState) string {
	var sb strings.Builder
	sb.WriteString(m.simple)
	ot := w3c.OTelValue()
	ot.ClearTValue()
	if ot.HasAnyValue() {
		sb.WriteString(",ot=")
		if err := ot.Serialize(&sb); err != nil {
			return m.simple
		}
	}
	for _, kv := range w3c.ExtraValues() {
		if kv.Key == supplementKey {
			continue
		}
		sb.WriteString(",")
		sb.WriteString(kv.Key)
		sb.WriteString("=")
		sb.WriteString(kv.Value)
	}
	return sb.String()
}
