package sampling

import "errors"

// SpanCountConfig keeps traces with at least MinSpans and, when MaxSpans is
// set, at most MaxSpans spans, as contrib's span_count policy does. contrib's
// fields are int32; these are int64 so that the config decoder, which wraps
// an out-of-range integer, cannot turn a large count into a small one.
type SpanCountConfig struct {
	// MinSpans is the smallest number of spans a kept trace has.
	MinSpans int64 `mapstructure:"min_spans"`
	// MaxSpans is the largest number of spans a kept trace has; 0 means no
	// upper bound.
	MaxSpans int64 `mapstructure:"max_spans"`
}

// Validate implements the config validator.
func (c *SpanCountConfig) Validate() error {
	switch {
	case c.MinSpans < 0:
		return errors.New("min_spans: must not be negative")
	case c.MaxSpans < 0:
		return errors.New("max_spans: must not be negative")
	case c.MaxSpans != 0 && c.MaxSpans < c.MinSpans:
		return errors.New("max_spans: must not be below min_spans (0 means no upper bound)")
	case c.MinSpans == 0 && c.MaxSpans == 0:
		return errors.New("min_spans: set min_spans or max_spans")
	}
	return nil
}

type spanCount struct{ lower, upper int64 }

func newSpanCount(settings any, _ *builder) (evaluator, error) {
	c := settings.(*SpanCountConfig)
	return spanCount{lower: c.MinSpans, upper: c.MaxSpans}, nil
}

// Evaluate keeps the trace when lower <= SpanCount and, unless upper is 0,
// SpanCount <= upper: contrib's two cases "max 0 and count >= min" and
// "min <= count <= max".
func (p spanCount) Evaluate(t *Trace) Decision {
	n := int64(t.SpanCount)
	if n >= p.lower && (p.upper == 0 || n <= p.upper) {
		return keepAlways
	}
	return Decision{}
}
