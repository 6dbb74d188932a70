package sampling

import (
	"bytes"
	"errors"
	"fmt"
)

// TraceStateConfig keeps traces with a span whose W3C tracestate holds the
// list member Key=V for one of Values, as contrib's trace_state policy does.
type TraceStateConfig struct {
	// Key is the tracestate list-member key, e.g. "vendor" or "tenant@vendor".
	Key string `mapstructure:"key"`
	// Values are the accepted values of that member.
	Values []string `mapstructure:"values"`
}

// Validate implements the config validator. It refuses what can never match:
// a key or value the W3C syntax forbids, and, as contrib silently drops them,
// values for which "key=value" is longer than 256 characters.
func (c *TraceStateConfig) Validate() error {
	if c.Key == "" {
		return errors.New("key: must not be empty")
	}
	if !validTraceStateKey([]byte(c.Key)) {
		return fmt.Errorf("key: %q is not a valid tracestate key", c.Key)
	}
	if len(c.Values) == 0 {
		return errors.New("values: must not be empty")
	}
	for i, v := range c.Values {
		switch {
		case v == "":
			return fmt.Errorf("values::%d: must not be empty", i)
		case !validTraceStateValue([]byte(v)):
			return fmt.Errorf("values::%d: %q is not a valid tracestate value", i, v)
		case len(c.Key)+len(v) >= 256:
			return fmt.Errorf("values::%d: key=value must be at most 256 characters", i)
		}
	}
	return nil
}

type traceStateFilter struct{ bit uint64 }

func newTraceState(settings any, b *builder) (evaluator, error) {
	c := settings.(*TraceStateConfig)
	set := make(map[string]struct{}, len(c.Values))
	for _, v := range c.Values {
		// contrib's filter: a key-value pair cannot exceed 256 characters.
		if v != "" && len(c.Key)+len(v) < 256 {
			set[v] = struct{}{}
		}
	}
	key := c.Key
	bit, err := b.MatchSpans(func(v *SpanView) bool {
		val, ok := traceStateGet(v.TraceState, key)
		if !ok {
			return false
		}
		_, ok = set[string(val)]
		return ok
	})
	if err != nil {
		return nil, err
	}
	return traceStateFilter{bit: bit}, nil
}

// Evaluate keeps the trace when any span's tracestate matched.
func (p traceStateFilter) Evaluate(t *Trace) Decision {
	if t.Matched&p.bit != 0 {
		return keepAlways
	}
	return Decision{}
}

// maxTraceStateMembers is the W3C limit on tracestate list members.
const maxTraceStateMembers = 32

// traceStateGet returns the value of key in the W3C tracestate ts. It follows
// go.opentelemetry.io/otel/trace's ParseTraceState, which contrib uses, rule
// for rule: empty list members are skipped; a member is key=value with
// leading spaces and tabs trimmed from the key and trailing ones from the
// value; a tracestate with an invalid member, a duplicate key or more than 32
// members is invalid as a whole, and then no key is found. It allocates
// nothing.
func traceStateGet(ts []byte, key string) (val []byte, found bool) {
	var keys [maxTraceStateMembers][]byte
	n := 0
	for len(ts) > 0 {
		var m []byte
		if i := bytes.IndexByte(ts, ','); i >= 0 {
			m, ts = ts[:i], ts[i+1:]
		} else {
			m, ts = ts, nil
		}
		if len(m) == 0 {
			continue
		}
		eq := bytes.IndexByte(m, '=')
		if eq < 0 {
			return nil, false
		}
		k := bytes.TrimLeft(m[:eq], " \t")
		v := bytes.TrimRight(m[eq+1:], " \t")
		if !validTraceStateKey(k) || !validTraceStateValue(v) {
			return nil, false
		}
		for _, seen := range keys[:n] {
			if bytes.Equal(seen, k) {
				return nil, false
			}
		}
		if n == maxTraceStateMembers {
			return nil, false
		}
		keys[n] = k
		n++
		if string(k) == key {
			val, found = v, true
		}
	}
	return val, found
}

// validTraceStateKey reports whether k is a W3C tracestate key, as otel's
// checkKey decides: "system" (a lowercase letter then at most 255 of
// [a-z0-9_*/-]), or "tenant@system" with a tenant of a lowercase letter or
// digit then at most 240 of those, and a system of at most 14.
func validTraceStateKey(k []byte) bool {
	at := bytes.IndexByte(k, '@')
	if at < 0 {
		return tsKeyPart(k, 255)
	}
	tenant, system := k[:at], k[at+1:]
	return len(tenant) > 0 && (tsLower(tenant[0]) || tsDigit(tenant[0])) &&
		len(tenant)-1 <= 240 && tsKeyRest(tenant[1:]) && tsKeyPart(system, 13)
}

func tsKeyPart(k []byte, n int) bool {
	return len(k) > 0 && tsLower(k[0]) && len(k)-1 <= n && tsKeyRest(k[1:])
}

func tsKeyRest(k []byte) bool {
	for _, c := range k {
		if !tsLower(c) && !tsDigit(c) && c != '_' && c != '-' && c != '*' && c != '/' {
			return false
		}
	}
	return true
}

func tsLower(c byte) bool { return c >= 'a' && c <= 'z' }
func tsDigit(c byte) bool { return c >= '0' && c <= '9' }

// validTraceStateValue reports whether v is a W3C tracestate value: 1 to 256
// printable ASCII characters other than ',' and '=', the last not a space.
func validTraceStateValue(v []byte) bool {
	n := len(v)
	if n == 0 || n > 256 {
		return false
	}
	for _, c := range v[:n-1] {
		if c < 0x20 || c > 0x7e || c == ',' || c == '=' {
			return false
		}
	}
	c := v[n-1]
	return c > 0x20 && c <= 0x7e && c != ',' && c != '='
}
