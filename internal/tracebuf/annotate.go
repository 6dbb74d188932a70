package tracebuf

import (
	"math"

	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"

	"github.com/tailsift/tailsift/internal/wire"
	"github.com/tailsift/tailsift/sampling"
)

// annotate is what output.annotate_roots and annotate_spans put on kept
// spans: sampling.rule (the policy that kept the trace) and SampleRate (1 in
// how many traces it stands for, rounded), on its root spans or on all of
// them, late spans included. A span's own attributes of those keys are
// replaced, not repeated.
type annotate struct {
	roots, spans bool
	rules        []string // the engine's policies: a keptMark names its rule by index
	buf          []byte
}

func newAnnotate(cfg OutputConfig, e *sampling.Engine) annotate {
	a := annotate{roots: cfg.AnnotateRoots || cfg.AnnotateSpans, spans: cfg.AnnotateSpans}
	if a.roots {
		for _, p := range e.Policies() {
			a.rules = append(a.rules, p.Name)
		}
	}
	return a
}

func (a *annotate) on() bool { return a.roots }

// wants reports whether the span message raw is to be annotated.
func (a *annotate) wants(raw []byte) bool {
	return a.spans || (a.roots && wire.IsRoot(raw))
}

// index returns rule's index among the policies, or -1.
func (a *annotate) index(rule string) int {
	for i, r := range a.rules {
		if r == rule {
			return i
		}
	}
	return -1
}

// attrs returns the encoded attributes for a trace kept by rule with th,
// valid until the next call.
func (a *annotate) attrs(rule string, th otelsampling.Threshold) []byte {
	a.buf = wire.AppendStringAttr(a.buf[:0], "sampling.rule", rule)
	rate := int64(math.Round(1 / th.Probability()))
	a.buf = wire.AppendIntAttr(a.buf, "SampleRate", max(rate, 1))
	return a.buf
}

// supplementAttrs returns the attributes for a trace kept as a supplement
// (a rescue, a retroactive keep) by rule: sampling.rule alone. Its spans
// count 0 (the tracestate's supplement marker): a SampleRate of 1 made a
// backend that sums SampleRate count each rescued trace once more.
func (a *annotate) supplementAttrs(rule string) []byte {
	a.buf = wire.AppendStringAttr(a.buf[:0], "sampling.rule", rule)
	return a.buf
}

// lateAttrs returns the attributes for the late spans of a trace kept with
// mark, or nil when annotations are off or mark names no rule (a decision
// handed over by another gateway or restored from the store).
func (a *annotate) lateAttrs(mark keptMark) []byte {
	i := mark.rule()
	if !a.roots || i < 0 || i >= len(a.rules) {
		return nil
	}
	if mark.rv&supplementMask != 0 {
		return a.supplementAttrs(a.rules[i])
	}
	return a.attrs(a.rules[i], mark.threshold())
}
