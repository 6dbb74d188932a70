package sampling

import (
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// SpanView is what the buffer shows the engine of each arriving span, as
// encoded OTLP. Byte slices alias the request and are valid only during the
// call they are passed to.
type SpanView struct {
	// Resource is the encoded Resource message, nil when absent.
	Resource []byte
	// Scope is the encoded InstrumentationScope message, nil when absent.
	Scope []byte
	// Span is the encoded Span message.
	Span []byte
	// Name is the span's name.
	Name []byte
	// TraceState is the span's raw W3C tracestate, nil when absent.
	TraceState []byte
	// Flags is the span's flags field.
	Flags uint32
	// Status is the span's status code (0 unset, 1 ok, 2 error).
	Status uint8
	// Root is true for a span without a parent.
	Root bool
	// Start and End are the span's timestamps, Unix nanoseconds.
	Start, End uint64
}

// Field numbers of the attribute lists.
const (
	resourceAttrsField protowire.Number = 1 // Resource.attributes
	scopeAttrsField    protowire.Number = 3 // InstrumentationScope.attributes
	spanAttrsField     protowire.Number = 9 // Span.attributes
)

// SpanAttr finds the span attribute key.
func (v *SpanView) SpanAttr(key string) (Value, bool) {
	return findAttr(v.Span, spanAttrsField, key)
}

// ResourceAttr finds the resource attribute key.
func (v *SpanView) ResourceAttr(key string) (Value, bool) {
	return findAttr(v.Resource, resourceAttrsField, key)
}

// ValueKind is the type of an attribute value.
type ValueKind uint8

// Kinds of AnyValue, as OTLP numbers its oneof fields.
const (
	KindEmpty  ValueKind = 0
	KindString ValueKind = 1
	KindBool   ValueKind = 2
	KindInt    ValueKind = 3
	KindDouble ValueKind = 4
	KindArray  ValueKind = 5
	KindMap    ValueKind = 6
	KindBytes  ValueKind = 7
)

// Value is a decoded AnyValue. For KindString and KindBytes, Bytes holds the
// value; for KindArray and KindMap, the encoded ArrayValue or KeyValueList.
// Bytes aliases the scanned message.
type Value struct {
	Kind   ValueKind
	Bytes  []byte
	Int    int64
	Double float64
	Bool   bool
}

// FindAttr returns the value of the first attribute named key in the
// repeated KeyValue field of msg, as pdata's Map.Get does when a key repeats.
// Malformed bytes read as absent. It allocates nothing.
func findAttr(msg []byte, field protowire.Number, key string) (Value, bool) {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return Value{}, false
		}
		msg = msg[n:]
		if num != field || typ != protowire.BytesType {
			m := protowire.ConsumeFieldValue(num, typ, msg)
			if m < 0 {
				return Value{}, false
			}
			msg = msg[m:]
			continue
		}
		kv, m := protowire.ConsumeBytes(msg)
		if m < 0 {
			return Value{}, false
		}
		msg = msg[m:]
		if k, v, ok := parseKeyValue(kv); ok && string(k) == key {
			return parseAnyValue(v), true
		}
	}
	return Value{}, false
}

// parseKeyValue splits a KeyValue message into its key and encoded value.
func parseKeyValue(kv []byte) (key, value []byte, ok bool) {
	for len(kv) > 0 {
		num, typ, n := protowire.ConsumeTag(kv)
		if n < 0 {
			return nil, nil, false
		}
		kv = kv[n:]
		if (num == 1 || num == 2) && typ == protowire.BytesType {
			b, m := protowire.ConsumeBytes(kv)
			if m < 0 {
				return nil, nil, false
			}
			if num == 1 {
				key = b
			} else {
				value = b // a repeated message field merges; the last set oneof wins below
			}
			kv = kv[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, kv)
		if m < 0 {
			return nil, nil, false
		}
		kv = kv[m:]
	}
	return key, value, true
}

// parseAnyValue decodes an AnyValue message; the last oneof field set wins.
func parseAnyValue(b []byte) Value {
	var v Value
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return Value{}
		}
		b = b[n:]
		switch {
		case (num == 1 || num == 5 || num == 6 || num == 7) && typ == protowire.BytesType:
			s, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return Value{}
			}
			v = Value{Kind: ValueKind(num), Bytes: s}
			b = b[m:]
		case (num == 2 || num == 3) && typ == protowire.VarintType:
			x, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return Value{}
			}
			if num == 2 {
				v = Value{Kind: KindBool, Bool: x != 0}
			} else {
				v = Value{Kind: KindInt, Int: int64(x)}
			}
			b = b[m:]
		case num == 4 && typ == protowire.Fixed64Type:
			x, m := protowire.ConsumeFixed64(b)
			if m < 0 {
				return Value{}
			}
			v = Value{Kind: KindDouble, Double: math.Float64frombits(x)}
			b = b[m:]
		default:
			m := protowire.ConsumeFieldValue(num, typ, b)
			if m < 0 {
				return Value{}
			}
			b = b[m:]
		}
	}
	return v
}

// findVarint returns the last value of varint field num in msg.
func findVarint(msg []byte, num protowire.Number) (uint64, bool) {
	var out uint64
	found := false
	for len(msg) > 0 {
		n, typ, l := protowire.ConsumeTag(msg)
		if l < 0 {
			return 0, false
		}
		msg = msg[l:]
		if n == num && typ == protowire.VarintType {
			v, m := protowire.ConsumeVarint(msg)
			if m < 0 {
				return 0, false
			}
			out, found = v, true
			msg = msg[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(n, typ, msg)
		if m < 0 {
			return 0, false
		}
		msg = msg[m:]
	}
	return out, found
}
