// Package sampling is tailsift's policy engine: it decides, once a trace is
// complete, whether to keep it and with which probability.
//
// A decision is a value: keep or drop, the OpenTelemetry consistent-sampling
// threshold the trace was kept with, and the policy that decided. The engine
// combines its policies' verdicts as contrib's tail_sampling does (see
// Engine.Decide). Evaluation allocates nothing.
package sampling

import (
	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// MaxKeys is the number of key slots a trace carries for keyed policies.
const MaxKeys = 4

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
	Randomness otelsampling.Randomness
	// HeadThreshold is the th that arrived with the trace, if HasHead.
	HeadThreshold otelsampling.Threshold
	HasHead       bool

	// SizeBytes is the encoded size of the spans received.
	SizeBytes uint64
	// Now is the decision time, Unix nanoseconds of the buffer's clock. Rate
	// based policies measure time with it, so tests can drive it.
	Now int64
	// Matched has bit i set when span predicate i (builder.MatchSpans) held
	// for at least one span.
	Matched uint64
	// Keys holds, per slot a policy registered with builder.Key, the key
	// hash of the trace's root span; KeySet has bit i set once slot i is
	// filled. A trace whose root never arrived has no keys.
	Keys   [MaxKeys]uint64
	KeySet uint8
	// Spans holds the trace's spans as pdata when a policy asked for them
	// (builder.NeedSpans) and HasSpans is set; otherwise it is the zero
	// value and must not be used.
	Spans    ptrace.Traces
	HasSpans bool

	// What the decisions on this trace have done, so that Redecide does
	// not do it twice; the zero Trace has done nothing.
	//
	// charged has bit i set once charger i (builder.charger) charged the
	// trace; pending, during Redecide, those that would charge it if it is
	// kept. redo is set while Redecide evaluates. counted: the budget
	// counted the trace in its class's demand. observed: the decision
	// observers counted it as kept.
	charged, pending  uint64
	redo              bool
	counted, observed bool
	// explicitRV: Randomness is an rv that arrived in the tracestate.
	explicitRV bool
	// derived is the randomness the engine derived for its last decision
	// when that decision's rv is derivedRV (keepSet.derive).
	derived otelsampling.Randomness
}

// Scale returns the threshold of a policy's conditional probability q (its
// own threshold th) applied on top of the head sampler's probability p: the
// threshold of p·q. Without a head threshold it is th. A policy that samples
// on the trace's randomness must compare it against the scaled threshold, so
// that among the traces that reached it, it keeps the fraction q.
func (t *Trace) Scale(th otelsampling.Threshold) otelsampling.Threshold {
	if !t.HasHead || t.HeadThreshold == otelsampling.AlwaysSampleThreshold {
		return th
	}
	if th == otelsampling.AlwaysSampleThreshold {
		return t.HeadThreshold
	}
	if th == otelsampling.NeverSampleThreshold {
		return th
	}
	scaled, err := otelsampling.ProbabilityToThreshold(t.HeadThreshold.Probability() * th.Probability())
	if err != nil || otelsampling.ThresholdLessThan(scaled, t.HeadThreshold) {
		// Below the smallest representable probability, or rounding put
		// it above the head's: keep the stricter of the two.
		return maxThreshold(t.HeadThreshold, th)
	}
	return scaled
}

// ShouldSample reports whether a policy with threshold th (its conditional
// probability) samples t: the trace's randomness against Scale(th).
func (t *Trace) ShouldSample(th otelsampling.Threshold) bool {
	return t.Scale(th).ShouldSample(t.Randomness)
}

func maxThreshold(a, b otelsampling.Threshold) otelsampling.Threshold {
	if otelsampling.ThresholdGreater(a, b) {
		return a
	}
	return b
}

// AddSpan counts one arriving span in the summary: its encoded size, status
// code (0 unset, 1 ok, 2 error) and timestamps (Unix ns, 0 when absent). The
// buffer calls it for every span; tests summarize traces with it too.
func (t *Trace) AddSpan(size int, status uint8, start, end uint64) {
	t.SpanCount++
	t.SizeBytes += uint64(size)
	t.StatusMask |= 1 << status
	if start != 0 && (t.Start == 0 || start < t.Start) {
		t.Start = start
	}
	t.End = max(t.End, end)
}

// Duration is the trace's wall duration: latest end minus earliest start.
func (t *Trace) Duration() uint64 {
	if t.End <= t.Start {
		return 0
	}
	return t.End - t.Start
}

// Verdict is a policy's answer, with contrib tail_sampling's meanings.
type Verdict uint8

// Verdicts. The zero value is NotSampled.
const (
	// NotSampled: the policy does not keep the trace.
	NotSampled Verdict = iota
	// Sampled: the policy keeps the trace, with the decision's threshold.
	Sampled
	// Dropped: the trace is dropped whatever other policies say (drop).
	Dropped
	// InvertSampled: an invert_match filter found no match. It keeps the
	// trace only if no policy answered NotSampled (contrib's rule).
	InvertSampled
	// InvertNotSampled: an invert_match filter matched. It vetoes every
	// Sampled verdict except Dropped's precedence.
	InvertNotSampled
)

var verdictNames = [...]string{"not_sampled", "sampled", "dropped", "invert_sampled", "invert_not_sampled"}

func (v Verdict) String() string {
	if int(v) < len(verdictNames) {
		return verdictNames[v]
	}
	return "unknown"
}

// Decision is the outcome of a policy or of the engine.
type Decision struct {
	// Verdict is the policy's answer; the engine's final decision is
	// Sampled, NotSampled or Dropped.
	Verdict Verdict
	// rv, when not 0, names the derived randomness (builder.salt) that
	// Threshold was decided on instead of the trace's own: probabilistic
	// with hash_salt, its reflection (not), or one the engine derived
	// (keepSet.derive); see saltMask. Engine.Randomness recomputes it. (A derived
	// randomness is not stored here: a Decision of more than four words
	// is returned through memory, which made every evaluation 5 times
	// slower.)
	rv uint8
	// Threshold is the consistent-sampling threshold the trace is kept with:
	// AlwaysSampleThreshold for probability 1. A policy returns its own,
	// conditional threshold; the engine scales it by the head sampler's
	// (Trace.Scale).
	Threshold otelsampling.Threshold
	// Policy names the policy that decided, empty when no policy kept or
	// dropped the trace. For a trace a budget dropped (NotSampled), it names
	// the policy that would have kept it.
	Policy string
}

// sampledAt is a Sampled decision with threshold th.
func sampledAt(th otelsampling.Threshold) Decision {
	return Decision{Verdict: Sampled, Threshold: th}
}

// Keep reports whether the decision keeps the trace: its verdict is
// Sampled. (A policy's InvertSampled is not a keep by itself; the engine
// turns it into Sampled when it keeps the trace.)
func (d Decision) Keep() bool { return d.Verdict == Sampled }

// Probability is the sampling probability the decision stands for (0 when dropped).
func (d Decision) Probability() float64 {
	if !d.Keep() {
		return 0
	}
	return d.Threshold.Probability()
}

// evaluator is a policy: it decides on one trace. Implementations must not
// allocate per call and must be safe for concurrent use: shards decide
// concurrently. The registry (config.go) is the only way to add one, so the
// interface is unexported; see Engine.Redecide for the rule a stateful
// evaluator follows on a second decision.
type evaluator interface {
	// Evaluate returns the policy's verdict and, for Sampled, the
	// conditional threshold it keeps the trace with. The engine fills
	// Decision.Policy.
	Evaluate(t *Trace) Decision
}

// keepAlways is the decision of a rule with probability 1.
var keepAlways = sampledAt(otelsampling.AlwaysSampleThreshold)
