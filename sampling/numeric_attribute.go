package sampling

import (
	"errors"
	"math"
)

// NumericAttributeConfig keeps traces where a resource or span attribute Key
// holds an integer in [MinValue, MaxValue], as contrib's numeric_attribute
// policy does.
type NumericAttributeConfig struct {
	// Key is the attribute looked up on each span's resource and on the span.
	Key string `mapstructure:"key"`
	// MinValue is the inclusive lower bound. As in contrib, 0 means no lower
	// bound (math.MinInt64), not 0.
	MinValue int64 `mapstructure:"min_value"`
	// MaxValue is the inclusive upper bound. As in contrib, 0 means no upper
	// bound (math.MaxInt64), not 0.
	MaxValue int64 `mapstructure:"max_value"`
	// InvertMatch keeps the traces where no resource or span matched instead
	// (see numericAttribute.Evaluate).
	InvertMatch bool `mapstructure:"invert_match"`
}

// Validate implements the config validator.
func (c *NumericAttributeConfig) Validate() error {
	switch {
	case c.Key == "":
		return errors.New("key: must not be empty")
	case c.MinValue == 0 && c.MaxValue == 0:
		return errors.New("min_value: set min_value or max_value (0 means unset)")
	case c.MinValue != 0 && c.MaxValue != 0 && c.MaxValue < c.MinValue:
		return errors.New("max_value: must not be below min_value")
	}
	return nil
}

type numericAttribute struct {
	bit    uint64
	invert bool
}

func newNumericAttribute(settings any, b *builder) (evaluator, error) {
	c := settings.(*NumericAttributeConfig)
	// contrib's getSharedPolicyEvaluator passes a nil bound for a 0 value,
	// and the filter reads a nil bound as MinInt64 or MaxInt64.
	lo, hi := c.MinValue, c.MaxValue
	if lo == 0 {
		lo = math.MinInt64
	}
	if hi == 0 {
		hi = math.MaxInt64
	}
	key := c.Key
	// A present attribute that is not an integer reads as 0, as pdata's
	// Value.Int() does for contrib: Value.Int is 0 for other kinds.
	bit, err := b.MatchSpans(func(v *SpanView) bool {
		if a, ok := v.ResourceAttr(key); ok && a.Int >= lo && a.Int <= hi {
			return true
		}
		a, ok := v.SpanAttr(key)
		return ok && a.Int >= lo && a.Int <= hi
	})
	if err != nil {
		return nil, err
	}
	return numericAttribute{bit: bit, invert: c.InvertMatch}, nil
}

// Evaluate keeps the trace when some span matched, or with invert_match when
// none did. A span matches when its resource or the span itself has the
// attribute in range.
//
// contrib's hasResourceOrSpanWithCondition answers Sampled as soon as one
// resource or one span matches, else NotSampled. Its
// invertHasResourceOrSpanWithCondition, given the negated conditions,
// answers NotSampled as soon as one resource or one span matches, else
// Sampled. So invert_match is exactly "no span matched", the negation of
// the same any-span bit. In v0.161.0 the inverted answers are plain Sampled
// and NotSampled, not the deprecated InvertSampled/InvertNotSampled: an
// inverted filter that matched does not veto other policies' Sampled, it
// just does not sample. The same holds for string_attribute and
// boolean_attribute.
func (p numericAttribute) Evaluate(t *Trace) Decision {
	if (t.Matched&p.bit != 0) != p.invert {
		return keepAlways
	}
	return Decision{}
}
