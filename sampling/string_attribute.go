package sampling

import (
	"errors"
	"fmt"
	"regexp"
)

// StringAttributeConfig keeps traces where a resource or span attribute Key
// is a string equal to one of Values, or matching one of them as a regular
// expression, as contrib's string_attribute policy does.
type StringAttributeConfig struct {
	// Key is the attribute looked up on each span's resource and on the span.
	Key string `mapstructure:"key"`
	// Values are the accepted values, or regular expressions (Go RE2
	// syntax, unanchored: add ^ and $ for a whole-value match) when
	// EnabledRegexMatching is set.
	Values []string `mapstructure:"values"`
	// EnabledRegexMatching makes Values regular expressions.
	EnabledRegexMatching bool `mapstructure:"enabled_regex_matching"`
	// CacheMaxSize is accepted for compatibility with contrib, where it
	// sizes an LRU cache of regex results (default 128). It is ignored:
	// tailsift matches the regular expressions directly.
	CacheMaxSize int `mapstructure:"cache_max_size"`
	// InvertMatch keeps the traces where no resource or span matched instead.
	InvertMatch bool `mapstructure:"invert_match"`
}

// Validate implements the config validator; it compiles the regular
// expressions to report the first bad one.
func (c *StringAttributeConfig) Validate() error {
	if c.Key == "" {
		return errors.New("key: must not be empty")
	}
	if len(c.Values) == 0 {
		return errors.New("values: must not be empty")
	}
	for i, v := range c.Values {
		if c.EnabledRegexMatching {
			if _, err := regexp.Compile(v); err != nil {
				return fmt.Errorf("values::%d: invalid regex `%s`: %w", i, v, err)
			}
		} else if v == "" {
			return fmt.Errorf("values::%d: must not be empty (an empty value never matches)", i)
		}
	}
	return nil
}

type stringAttribute struct {
	bit    uint64
	invert bool
}

func newStringAttribute(settings any, b *builder) (evaluator, error) {
	c := settings.(*StringAttributeConfig)
	var match func(s []byte) bool
	if c.EnabledRegexMatching {
		res := make([]*regexp.Regexp, 0, len(c.Values))
		for _, v := range c.Values {
			re, err := regexp.Compile(v)
			if err != nil {
				return nil, fmt.Errorf("invalid regex `%s`: %w", v, err)
			}
			res = append(res, re)
		}
		// Regexp is safe for concurrent use, and Match on bytes does
		// not allocate once its matcher pool is warm.
		match = func(s []byte) bool {
			for _, re := range res {
				if re.Match(s) {
					return true
				}
			}
			return false
		}
	} else {
		set := make(map[string]struct{}, len(c.Values))
		for _, v := range c.Values {
			if v != "" { // contrib drops empty values: they never match
				set[v] = struct{}{}
			}
		}
		match = func(s []byte) bool {
			_, ok := set[string(s)] // no allocation for a map index
			return ok
		}
	}
	key := c.Key
	bit, err := b.MatchSpans(func(v *SpanView) bool {
		// contrib matches a resource attribute's Str() whatever its
		// type ("" when not a string), but skips a span attribute whose
		// Str() is empty. With regexes the difference shows: ".*"
		// matches a resource's int attribute, not a span's.
		if a, ok := v.ResourceAttr(key); ok {
			var s []byte
			if a.Kind == KindString {
				s = a.Bytes
			}
			if match(s) {
				return true
			}
		}
		a, ok := v.SpanAttr(key)
		return ok && a.Kind == KindString && len(a.Bytes) > 0 && match(a.Bytes)
	})
	if err != nil {
		return nil, err
	}
	return stringAttribute{bit: bit, invert: c.InvertMatch}, nil
}

// Evaluate keeps the trace when some span matched (its resource or itself
// has a matching value), or with invert_match when none did; see
// numericAttribute.Evaluate for why that is contrib's invert semantics.
func (p stringAttribute) Evaluate(t *Trace) Decision {
	if (t.Matched&p.bit != 0) != p.invert {
		return keepAlways
	}
	return Decision{}
}
