package sampling

import "errors"

// BooleanAttributeConfig keeps traces where a resource or span attribute Key
// equals Value, as contrib's boolean_attribute policy does.
type BooleanAttributeConfig struct {
	// Key is the attribute looked up on each span's resource and on the span.
	Key string `mapstructure:"key"`
	// Value is the boolean the attribute must equal.
	Value bool `mapstructure:"value"`
	// InvertMatch keeps the traces where no resource or span matched instead.
	InvertMatch bool `mapstructure:"invert_match"`
}

// Validate implements the config validator.
func (c *BooleanAttributeConfig) Validate() error {
	if c.Key == "" {
		return errors.New("key: must not be empty")
	}
	return nil
}

type booleanAttribute struct {
	bit    uint64
	invert bool
}

func newBooleanAttribute(settings any, b *builder) (evaluator, error) {
	c := settings.(*BooleanAttributeConfig)
	key, want := c.Key, c.Value
	// A present attribute that is not a boolean reads as false, as pdata's
	// Value.Bool() does for contrib: Value.Bool is false for other kinds.
	bit, err := b.MatchSpans(func(v *SpanView) bool {
		if a, ok := v.ResourceAttr(key); ok && a.Bool == want {
			return true
		}
		a, ok := v.SpanAttr(key)
		return ok && a.Bool == want
	})
	if err != nil {
		return nil, err
	}
	return booleanAttribute{bit: bit, invert: c.InvertMatch}, nil
}

// Evaluate keeps the trace when some span matched (its resource or itself
// has the attribute equal to Value), or with invert_match when none did; see
// numericAttribute.Evaluate for why that is contrib's invert semantics.
func (p booleanAttribute) Evaluate(t *Trace) Decision {
	if (t.Matched&p.bit != 0) != p.invert {
		return keepAlways
	}
	return Decision{}
}
