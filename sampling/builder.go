package sampling

import (
	"errors"
	"fmt"
)

// MaxSpanPredicates is the number of span predicates an engine can hold.
const MaxSpanPredicates = 64

// builder is what a policy constructor registers its needs with: predicates
// the buffer evaluates on each arriving span, key functions it evaluates on
// the root span, and whether the policy needs the spans as pdata. It also
// builds sub-policies for the composing types (and, not, drop, composite).
type builder struct {
	preds     []func(*SpanView) bool
	keys      []func(*SpanView) uint64
	needSpans bool
	chargers  []charger
	salts     []uint64
	arrivals  int // status_code policies with keep_on_arrival, at any depth
}

// salt registers a hash_salt, as the FNV-1a state after its bytes, and
// returns the Decision.rv naming the randomness derived from it.
// maxSalts is the number of salts an engine can hold: Decision.rv names
// one in its saltMask bits.
const maxSalts = int(saltMask)

func (b *builder) salt(state uint64) (uint8, error) {
	if len(b.salts) >= maxSalts {
		return 0, fmt.Errorf("too many salted policies (at most %d)", maxSalts)
	}
	b.salts = append(b.salts, state)
	return uint8(len(b.salts)), nil
}

// maxChargers is the number of chargers an engine can hold: one bit each in
// Trace.charged.
const maxChargers = 64

// charger is a policy that charges a shared limit for the traces it admits:
// a token bucket (rate_limiting, bytes_limiting) or composite's per-second
// counts. In Evaluate it charges as contrib does and sets its bit in
// Trace.charged; while Trace.redo is set it charges nothing, and instead
// sets its bit in Trace.pending when it would charge and has not (its bit
// in Trace.charged clear), answering as if it had.
type charger interface {
	// charge takes t's cost from the limit unconditionally: Redecide calls
	// it for a trace it keeps, once, when the trace's bit was pending.
	charge(t *Trace)
}

// charger registers a charger and returns its bit in Trace.charged and
// Trace.pending.
func (b *builder) charger(c charger) (uint64, error) {
	if len(b.chargers) >= maxChargers {
		return 0, fmt.Errorf("too many rate-limiting policies (at most %d)", maxChargers)
	}
	b.chargers = append(b.chargers, c)
	return 1 << (len(b.chargers) - 1), nil
}

// MatchSpans registers a predicate on arriving spans and returns its bit in
// Trace.Matched: set when the predicate held for at least one span of the
// trace. f runs on the shard goroutines, concurrently for different traces,
// and must not allocate per call or retain the view.
func (b *builder) MatchSpans(f func(v *SpanView) bool) (uint64, error) {
	if len(b.preds) >= MaxSpanPredicates {
		return 0, fmt.Errorf("too many span-matching policies (at most %d)", MaxSpanPredicates)
	}
	b.preds = append(b.preds, f)
	return 1 << (len(b.preds) - 1), nil
}

// Key registers a key function evaluated on the trace's root span and returns
// its slot in Trace.Keys. Zero is a valid key hash. The same rules as for
// MatchSpans apply to f.
func (b *builder) Key(f func(v *SpanView) uint64) (int, error) {
	if len(b.keys) >= MaxKeys {
		return 0, fmt.Errorf("too many keyed policies (at most %d)", MaxKeys)
	}
	b.keys = append(b.keys, f)
	return len(b.keys) - 1, nil
}

// NeedSpans asks the buffer to decode each trace into Trace.Spans before
// deciding it. That costs a pdata decode per trace; only policies that need
// whole spans (ottl_condition) ask.
func (b *builder) NeedSpans() { b.needSpans = true }

// Policy validates and builds a sub-policy.
func (b *builder) Policy(c *PolicyConfig) (evaluator, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	f, ok := registry[c.Type]
	if !ok {
		return nil, errors.New("type: unknown policy type " + c.Type)
	}
	return f.create(c.settings, b)
}
