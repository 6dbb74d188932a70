// Package otlpguardtest builds OTLP protobuf requests for tests of the depth
// guard: AnyValues nested to a chosen depth, wrapped in a traces, metrics,
// logs or profiles export request at every place the schema allows one.
package otlpguardtest // import "github.com/tailsift/tailsift/internal/otlpguard/otlpguardtest"

import "google.golang.org/protobuf/encoding/protowire"

// NestedAnyValue returns the encoding of an AnyValue nested depth levels
// deep, counting the returned AnyValue itself as level 1 (depth 0 gives an
// empty byte slice, which is an empty AnyValue as a message body). Levels
// alternate between kvlist_value (through a KeyValue) and array_value, as
// in "kvlist inside array inside kvlist...". The encoding is built in one
// pass from the outside in, so a depth of a million costs linear time.
func NestedAnyValue(depth int) []byte {
	if depth <= 0 {
		return nil
	}
	// sizes[i] is the size of the AnyValue body at level i (level depth-1 is
	// the innermost, an empty AnyValue with an int value set).
	sizes := make([]int, depth)
	inner := leafSize()
	sizes[depth-1] = inner
	for i := depth - 2; i >= 0; i-- {
		sizes[i] = wrapSize(i, sizes[i+1])
	}
	b := make([]byte, 0, sizes[0])
	for i := 0; i < depth-1; i++ {
		b = appendWrapHeader(b, i, sizes[i+1])
	}
	return appendLeaf(b)
}

// leafSize is the size of the innermost AnyValue: int_value = 1.
func leafSize() int { return len(appendLeaf(nil)) }

func appendLeaf(b []byte) []byte {
	b = protowire.AppendTag(b, 3, protowire.VarintType)
	return protowire.AppendVarint(b, 1)
}

// wrapSize is the size of the AnyValue at level i that holds an AnyValue
// body of size child.
func wrapSize(i, child int) int {
	if i%2 == 0 { // kvlist_value{values: [KeyValue{key: "k", value: child}]}
		kv := 1 + 1 + 1 /* key "k" */ + 1 + protowire.SizeVarint(uint64(child)) + child
		list := 1 + protowire.SizeVarint(uint64(kv)) + kv
		return 1 + protowire.SizeVarint(uint64(list)) + list
	}
	// array_value{values: [child]}
	arr := 1 + protowire.SizeVarint(uint64(child)) + child
	return 1 + protowire.SizeVarint(uint64(arr)) + arr
}

// appendWrapHeader appends the bytes of the AnyValue at level i up to where
// its child AnyValue body starts.
func appendWrapHeader(b []byte, i, child int) []byte {
	if i%2 == 0 {
		kv := 1 + 1 + 1 + 1 + protowire.SizeVarint(uint64(child)) + child
		list := 1 + protowire.SizeVarint(uint64(kv)) + kv
		b = protowire.AppendTag(b, 6, protowire.BytesType) // AnyValue.kvlist_value
		b = protowire.AppendVarint(b, uint64(list))
		b = protowire.AppendTag(b, 1, protowire.BytesType) // KeyValueList.values
		b = protowire.AppendVarint(b, uint64(kv))
		b = protowire.AppendTag(b, 1, protowire.BytesType) // KeyValue.key
		b = protowire.AppendString(b, "k")
		b = protowire.AppendTag(b, 2, protowire.BytesType) // KeyValue.value
		return protowire.AppendVarint(b, uint64(child))
	}
	arr := 1 + protowire.SizeVarint(uint64(child)) + child
	b = protowire.AppendTag(b, 5, protowire.BytesType) // AnyValue.array_value
	b = protowire.AppendVarint(b, uint64(arr))
	b = protowire.AppendTag(b, 1, protowire.BytesType) // ArrayValue.values
	return protowire.AppendVarint(b, uint64(child))
}

// Path is a chain of (field number) length-delimited message fields from an
// export request down to a KeyValue or AnyValue that holds the nested value.
type Path struct {
	Name string
	// Fields lead from the request to the message holding the value; the
	// last one is the field of the value itself.
	Fields []protowire.Number
	// KeyValue is true when the last field is a KeyValue (attributes), whose
	// field 2 then holds the AnyValue; false when it is an AnyValue (a log
	// body, a dictionary's KeyValueAndUnit is a KeyValue here too).
	KeyValue bool
	// Fill, when set, holds fields to put next to the value in the message
	// of Fields[i] (for example a span's IDs, so that the span is valid).
	Fill map[int][]byte
}

// Request wraps anyValue (an AnyValue body) at path p into an export request.
func Request(p Path, anyValue []byte) []byte {
	body := anyValue
	if p.KeyValue {
		var kv []byte
		kv = protowire.AppendTag(kv, 1, protowire.BytesType)
		kv = protowire.AppendString(kv, "attr")
		kv = protowire.AppendTag(kv, 2, protowire.BytesType)
		kv = protowire.AppendBytes(kv, body)
		body = kv
	}
	for i := len(p.Fields) - 1; i >= 0; i-- {
		if fill := p.Fill[i]; fill != nil {
			body = append(append([]byte(nil), fill...), body...)
		}
		var m []byte
		m = protowire.AppendTag(m, p.Fields[i], protowire.BytesType)
		m = protowire.AppendBytes(m, body)
		body = m
	}
	return body
}

// Field numbers from opentelemetry-proto, by message.
const (
	reqResource   = 1 // Export*ServiceRequest.resource_*
	resResource   = 1 // Resource*.resource
	resScope      = 2 // Resource*.scope_*
	resDeprecated = 1000
	scopeScope    = 1 // Scope*.scope
	scopeItems    = 2 // Scope*.spans / log_records / metrics
	attrs         = 1 // Resource.attributes
	scopeAttrs    = 3 // InstrumentationScope.attributes
)

// TracesPaths are the places an AnyValue appears in a traces request.
var TracesPaths = []Path{
	{"resource", []protowire.Number{reqResource, resResource, attrs}, true, nil},
	{"scope", []protowire.Number{reqResource, resScope, scopeScope, scopeAttrs}, true, nil},
	{"span", []protowire.Number{reqResource, resScope, scopeItems, 9}, true, map[int][]byte{2: validSpan()}},
	{"span_event", []protowire.Number{reqResource, resScope, scopeItems, 11, 3}, true, nil},
	{"span_link", []protowire.Number{reqResource, resScope, scopeItems, 13, 4}, true, nil},
	{"deprecated_scope_span", []protowire.Number{reqResource, resDeprecated, scopeItems, 9}, true, nil},
}

// LogsPaths are the places an AnyValue appears in a logs request.
var LogsPaths = []Path{
	{"resource", []protowire.Number{reqResource, resResource, attrs}, true, nil},
	{"scope", []protowire.Number{reqResource, resScope, scopeScope, scopeAttrs}, true, nil},
	{"body", []protowire.Number{reqResource, resScope, scopeItems, 5}, false, nil},
	{"attributes", []protowire.Number{reqResource, resScope, scopeItems, 6}, true, nil},
	{"deprecated_scope_body", []protowire.Number{reqResource, resDeprecated, scopeItems, 5}, false, nil},
}

// MetricsPaths are the places an AnyValue appears in a metrics request.
var MetricsPaths = []Path{
	{"resource", []protowire.Number{reqResource, resResource, attrs}, true, nil},
	{"scope", []protowire.Number{reqResource, resScope, scopeScope, scopeAttrs}, true, nil},
	{"metadata", []protowire.Number{reqResource, resScope, scopeItems, 12}, true, nil},
	{"gauge", []protowire.Number{reqResource, resScope, scopeItems, 5, 1, 7}, true, nil},
	{"gauge_exemplar", []protowire.Number{reqResource, resScope, scopeItems, 5, 1, 5, 7}, true, nil},
	{"sum", []protowire.Number{reqResource, resScope, scopeItems, 7, 1, 7}, true, nil},
	{"histogram", []protowire.Number{reqResource, resScope, scopeItems, 9, 1, 9}, true, nil},
	{"histogram_exemplar", []protowire.Number{reqResource, resScope, scopeItems, 9, 1, 8, 7}, true, nil},
	{"exponential_histogram", []protowire.Number{reqResource, resScope, scopeItems, 10, 1, 1}, true, nil},
	{"exponential_histogram_exemplar", []protowire.Number{reqResource, resScope, scopeItems, 10, 1, 11, 7}, true, nil},
	{"summary", []protowire.Number{reqResource, resScope, scopeItems, 11, 1, 7}, true, nil},
	{"deprecated_scope_metadata", []protowire.Number{reqResource, resDeprecated, scopeItems, 12}, true, nil},
}

// ProfilesPaths are the places an AnyValue appears in a profiles request.
var ProfilesPaths = []Path{
	{"resource", []protowire.Number{reqResource, resResource, attrs}, true, nil},
	{"scope", []protowire.Number{reqResource, resScope, scopeScope, scopeAttrs}, true, nil},
	{"dictionary_attribute", []protowire.Number{2, 6}, true, nil},
}

// validSpan holds the fields that make a span acceptable to a collector's
// pipeline: non-zero trace and span IDs, a name and start and end times.
func validSpan() []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.BytesType) // trace_id
	b = protowire.AppendBytes(b, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	b = protowire.AppendTag(b, 2, protowire.BytesType) // span_id
	b = protowire.AppendBytes(b, []byte{1, 2, 3, 4, 5, 6, 7, 8})
	b = protowire.AppendTag(b, 5, protowire.BytesType) // name
	b = protowire.AppendString(b, "deep")
	b = protowire.AppendTag(b, 7, protowire.Fixed64Type) // start_time_unix_nano
	b = protowire.AppendFixed64(b, 1_700_000_000_000_000_000)
	b = protowire.AppendTag(b, 8, protowire.Fixed64Type) // end_time_unix_nano
	return protowire.AppendFixed64(b, 1_700_000_001_000_000_000)
}
