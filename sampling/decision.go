// Package sampling is tailsift's policy engine: it decides, once a trace is
// complete, whether to keep it and with which probability.
//
// A decision is a value: keep or drop, the OpenTelemetry consistent-sampling
// threshold the trace was kept with, and the policy that decided. Policies are
// evaluated in order and the first keep wins. Evaluation allocates nothing.
package sampling

import (
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
)

// Status bits of Trace.StatusMask.
const (
	StatusUnsetBit uint8 = 1 << iota
	StatusOKBit
	StatusErrorBit
)

// Trace is the summary of a buffered trace that policies decide on. The
// buffer fills it as spans arrive, so evaluating needs no span data.
type Trace struct {
	ID [16]byte
	// SpanCount is the number of spans received.
	SpanCount int
	// StatusMask has a StatusXBit set for each status code seen on any span.
	StatusMask uint8
	// Start and End are the earliest span start and the latest span end, in
	// Unix nanoseconds; zero when no span carried one.
	Start, End uint64
	// Randomness is the trace's explicit rv when one arrived, else derived
	// from the trace ID, as the OpenTelemetry sampling specification defines.
	Randomness sampling.Randomness
	// HeadThreshold is the th that arrived with the trace, if HasHead.
	HeadThreshold sampling.Threshold
	HasHead       bool
}

// Duration is the trace's wall duration: latest end minus earliest start.
func (t *Trace) Duration() uint64 {
	if t.End <= t.Start {
		return 0
	}
	return t.End - t.Start
}

// Decision is the outcome of a policy or of the engine.
type Decision struct {
	// Keep is true when the trace is kept.
	Keep bool
	// Threshold is the consistent-sampling threshold the trace is kept with:
	// AlwaysSampleThreshold for probability 1.
	Threshold sampling.Threshold
	// Policy names the policy that decided, empty when no policy kept.
	Policy string
}

// Probability is the sampling probability the decision stands for (0 when dropped).
func (d Decision) Probability() float64 {
	if !d.Keep {
		return 0
	}
	return d.Threshold.Probability()
}

// Policy decides on one trace. Implementations must not allocate per call and
// must be safe for concurrent use.
type Policy interface {
	// Evaluate returns whether the trace matches and, if so, the threshold
	// it is kept with. The engine fills Decision.Policy.
	Evaluate(t *Trace) Decision
}

// keepAlways is the decision of a rule with probability 1.
var keepAlways = Decision{Keep: true, Threshold: sampling.AlwaysSampleThreshold}
