package wire

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/protobuf/encoding/protowire"
)

// pdataAccepts reports whether pdata decodes buf, the way the exporter side
// (ProtoUnmarshaler) and the otlp receiver (ExportRequest) do.
func pdataAccepts(buf []byte) (bool, error) {
	_, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(buf)
	if err != nil {
		return false, err
	}
	if err := ptraceotlp.NewExportRequest().UnmarshalProto(buf); err != nil {
		return false, err
	}
	return true, nil
}

// zeroValue is a valid field of the given wire type with an empty or zero
// value: empty messages and IDs decode, and so do zero scalars.
func zeroValue(num protowire.Number, typ protowire.Type) []byte {
	switch typ {
	case protowire.VarintType:
		return varintField(num, 0)
	case protowire.Fixed64Type:
		return fixed64Field(num, 0)
	case protowire.Fixed32Type:
		return fixed32Field(num, 0)
	}
	return lenField(num, nil)
}

// TestScanRefusesWrongWireTypes puts each field pdata knows, in each
// message of a traces request, with each wrong wire type: pdata refuses it
// at export, so Scan must refuse it at intake. With its own wire type and a
// zero value, both accept it.
func TestScanRefusesWrongWireTypes(t *testing.T) {
	const (
		vi  = protowire.VarintType
		f64 = protowire.Fixed64Type
		by  = protowire.BytesType
		f32 = protowire.Fixed32Type
	)
	ids := cat(lenField(1, tidb(1)), lenField(2, sidb(1)))
	span := func(b []byte) []byte { return inSpan(ids, b) }
	attr := func(b []byte) []byte { return span(lenField(9, b)) }
	anyValue := func(b []byte) []byte { return attr(cat(lenField(1, []byte("k")), lenField(2, b))) }
	resource := func(b []byte) []byte { return inResource(lenField(1, b), lenField(2, lenField(2, ids))) }
	scope := func(b []byte) []byte { return inResource(lenField(2, cat(lenField(1, b), lenField(2, ids)))) }
	messages := []struct {
		name   string
		wrap   func([]byte) []byte
		fields map[protowire.Number]protowire.Type
	}{
		{"request", func(b []byte) []byte { return b }, map[protowire.Number]protowire.Type{1: by}},
		{"resource_spans", func(b []byte) []byte { return inResource(b) }, map[protowire.Number]protowire.Type{1: by, 2: by, 3: by, 1000: by}},
		{"scope_spans", func(b []byte) []byte { return inScope(b) }, map[protowire.Number]protowire.Type{1: by, 2: by, 3: by}},
		{"span", span, map[protowire.Number]protowire.Type{
			1: by, 2: by, 3: by, 4: by, 5: by, 6: vi, 7: f64, 8: f64, 9: by, 10: vi,
			11: by, 12: vi, 13: by, 14: vi, 15: by, 16: f32,
		}},
		{"status", func(b []byte) []byte { return span(lenField(15, b)) }, map[protowire.Number]protowire.Type{2: by, 3: vi}},
		{"event", func(b []byte) []byte { return span(lenField(11, b)) }, map[protowire.Number]protowire.Type{1: f64, 2: by, 3: by, 4: vi}},
		{"link", func(b []byte) []byte { return span(lenField(13, b)) }, map[protowire.Number]protowire.Type{1: by, 2: by, 3: by, 4: by, 5: vi, 6: f32}},
		{"resource", resource, map[protowire.Number]protowire.Type{1: by, 2: vi, 3: by}},
		{"entity_ref", func(b []byte) []byte { return resource(lenField(3, b)) }, map[protowire.Number]protowire.Type{1: by, 2: by, 3: by, 4: by}},
		{"scope", scope, map[protowire.Number]protowire.Type{1: by, 2: by, 3: by, 4: vi}},
		{"span attribute", attr, map[protowire.Number]protowire.Type{1: by, 2: by, 3: vi}},
		{"resource attribute", func(b []byte) []byte { return resource(lenField(1, b)) }, map[protowire.Number]protowire.Type{1: by, 2: by, 3: vi}},
		{"scope attribute", func(b []byte) []byte { return scope(lenField(3, b)) }, map[protowire.Number]protowire.Type{1: by, 2: by, 3: vi}},
		{"event attribute", func(b []byte) []byte { return span(lenField(11, lenField(3, b))) }, map[protowire.Number]protowire.Type{1: by, 2: by, 3: vi}},
		{"link attribute", func(b []byte) []byte { return span(lenField(13, lenField(4, b))) }, map[protowire.Number]protowire.Type{1: by, 2: by, 3: vi}},
		{"any_value", anyValue, map[protowire.Number]protowire.Type{1: by, 2: vi, 3: vi, 4: f64, 5: by, 6: by, 7: by, 8: vi}},
		{"array_value", func(b []byte) []byte { return anyValue(lenField(5, b)) }, map[protowire.Number]protowire.Type{1: by}},
		{"kvlist_value", func(b []byte) []byte { return anyValue(lenField(6, b)) }, map[protowire.Number]protowire.Type{1: by}},
		{"nested any_value", func(b []byte) []byte { return anyValue(lenField(5, lenField(1, b))) }, map[protowire.Number]protowire.Type{3: vi, 5: by}},
		{"nested key_value", func(b []byte) []byte { return anyValue(lenField(6, lenField(1, b))) }, map[protowire.Number]protowire.Type{2: by, 3: vi}},
	}
	for _, m := range messages {
		for num, want := range m.fields {
			ok := m.wrap(zeroValue(num, want))
			t.Run(fmt.Sprintf("%s field %d as %d", m.name, num, want), func(t *testing.T) {
				accepted, err := pdataAccepts(ok)
				require.True(t, accepted, "pdata refuses the right wire type: %v", err)
				var b Batch
				require.NoError(t, Scan(ok, &b))
			})
			for _, typ := range []protowire.Type{vi, f64, by, f32} {
				if typ == want {
					continue
				}
				bad := m.wrap(zeroValue(num, typ))
				t.Run(fmt.Sprintf("%s field %d as %d", m.name, num, typ), func(t *testing.T) {
					accepted, _ := pdataAccepts(bad)
					require.False(t, accepted, "pdata accepts the wrong wire type")
					var b Batch
					err := Scan(bad, &b)
					require.ErrorIs(t, err, ErrMalformed)
					assert.Contains(t, err.Error(), "at byte ")
				})
			}
		}
	}
}

// TestScanRefusesWhatPdataRefuses covers the other faults pdata finds in
// the parts Scan used to skip.
func TestScanRefusesWhatPdataRefuses(t *testing.T) {
	ids := cat(lenField(1, tidb(1)), lenField(2, sidb(1)))
	kv := func(value []byte) []byte { return cat(lenField(1, []byte("k")), lenField(2, value)) }
	tests := []struct {
		name string
		buf  []byte
	}{
		{name: "link trace_id of 15 bytes", buf: inSpan(ids, lenField(13, lenField(1, tidb(1)[:15])))},
		{name: "link span_id of 9 bytes", buf: inSpan(ids, lenField(13, lenField(2, make([]byte, 9))))},
		{name: "attribute length past end", buf: inSpan(ids, lenField(9, withLen(1, 9, nil)))},
		{name: "any_value length past end", buf: inSpan(ids, lenField(9, withLen(2, 9, []byte("k"))))},
		{name: "truncated double", buf: inSpan(ids, lenField(9, kv(append(tagB(4, protowire.Fixed64Type), 1, 2))))},
		{name: "bad tag in kvlist", buf: inSpan(ids, lenField(9, kv(lenField(6, []byte{0x80}))))},
		{name: "group in attribute", buf: inSpan(ids, lenField(9, nestedGroups(7, 1)))},
		{name: "bad tag in event", buf: inSpan(ids, lenField(11, []byte{0xff}))},
		{name: "resource attribute truncated", buf: inResource(lenField(1, lenField(1, withLen(2, 3, nil))))},
		{name: "entity_ref truncated", buf: inResource(lenField(1, lenField(3, []byte{0x0a})))},
		{name: "scope name past end", buf: inScope(lenField(1, withLen(1, 5, nil)))},
		{name: "bad span in ignored instrumentation_library_spans", buf: inResource(lenField(2, nil), lenField(1000, lenField(2, varintField(6, 0)[:1])))},
		{name: "resource in a scope without spans", buf: inResource(lenField(1, varintField(1, 1)))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			accepted, _ := pdataAccepts(tt.buf)
			require.False(t, accepted, "pdata accepts the input")
			var b Batch
			require.ErrorIs(t, Scan(tt.buf, &b), ErrMalformed)
		})
	}
}

// TestScanDeprecatedScopeSpans: pdata reads instrumentation_library_spans
// (field 1000) when scope_spans is absent, so Scan reads its spans then, and
// only then.
func TestScanDeprecatedScopeSpans(t *testing.T) {
	ids := func(n byte) []byte { return cat(lenField(1, tidb(n)), lenField(2, sidb(n))) }
	lib := lenField(1000, cat(lenField(1, lenField(1, []byte("lib"))), lenField(2, ids(1)), lenField(2, ids(2))))
	for name, tt := range map[string]struct {
		buf  []byte
		want []byte // span IDs' first bytes
	}{
		"only deprecated":       {buf: inResource(lib), want: []byte{1, 2}},
		"scope_spans after":     {buf: inResource(lib, lenField(2, lenField(2, ids(3)))), want: []byte{3}},
		"scope_spans before":    {buf: inResource(lenField(2, lenField(2, ids(3))), lib), want: []byte{3}},
		"empty scope_spans too": {buf: inResource(lib, lenField(2, nil))},
	} {
		t.Run(name, func(t *testing.T) {
			req := ptraceotlp.NewExportRequest()
			require.NoError(t, req.UnmarshalProto(tt.buf))
			var b Batch
			require.NoError(t, Scan(tt.buf, &b))
			require.Len(t, b.Spans, req.Traces().SpanCount())
			var got []byte
			for _, s := range b.Spans {
				got = append(got, s.SpanID[0])
			}
			require.Equal(t, tt.want, got)
			if len(got) > 0 && got[0] == 1 { // read from instrumentation_library_spans
				require.Equal(t, lenField(1, []byte("lib")), b.Scopes[b.Spans[0].Scope].Scope)
			}
		})
	}
}

// deepAnyValue returns an encoded AnyValue whose deepest path holds levels
// AnyValues, alternating kvlist_value and array_value around a string. It
// writes from the end backwards, so that its cost is linear in levels.
func deepAnyValue(levels int) []byte {
	out := make([]byte, 16*levels+8)
	end := len(out)
	start := end - 3
	copy(out[start:], []byte{0x0a, 0x01, 'x'}) // string_value "x"
	wrap := func(num protowire.Number) {
		var h [16]byte
		tag := protowire.AppendVarint(protowire.AppendTag(h[:0], num, protowire.BytesType), uint64(end-start))
		start -= len(tag)
		copy(out[start:], tag)
	}
	for i := 1; i < levels; i++ {
		if i%2 == 0 {
			wrap(1) // ArrayValue.values
			wrap(5) // AnyValue.array_value
		} else {
			wrap(2) // KeyValue.value
			wrap(1) // KeyValueList.values
			wrap(6) // AnyValue.kvlist_value
		}
	}
	return out[start:]
}

func attrWith(value []byte) []byte {
	ids := cat(lenField(1, tidb(1)), lenField(2, sidb(1)))
	return inSpan(ids, lenField(9, cat(lenField(1, []byte("deep")), lenField(2, value))))
}

func TestScanRefusesDeepAnyValue(t *testing.T) {
	// The request that overflowed pdata's stack: 2 MB or more of nesting.
	deep := deepAnyValue(300_000)
	require.Greater(t, len(deep), 2<<20)
	for name, buf := range map[string][]byte{
		"span attribute":     attrWith(deep),
		"resource attribute": inResource(lenField(1, lenField(1, lenField(2, deep)))),
		"event attribute":    inSpan(lenField(11, lenField(3, lenField(2, deep)))),
	} {
		t.Run(name, func(t *testing.T) {
			var b Batch
			err := Scan(buf, &b)
			require.ErrorIs(t, err, ErrMalformed)
			require.ErrorIs(t, err, ErrTooDeep)
		})
	}
	require.ErrorIs(t, CheckAnyValue(deep, 0), ErrTooDeep)
}

func TestAnyValueDepthBound(t *testing.T) {
	atMax := deepAnyValue(MaxAnyValueDepth)
	var b Batch
	require.NoError(t, Scan(attrWith(atMax), &b))
	accepted, err := pdataAccepts(attrWith(atMax))
	require.True(t, accepted, "%v", err)
	require.NoError(t, CheckAnyValue(atMax, 0))

	over := deepAnyValue(MaxAnyValueDepth + 1)
	b.Reset()
	require.ErrorIs(t, Scan(attrWith(over), &b), ErrTooDeep)
	require.ErrorIs(t, CheckAnyValue(over, 0), ErrTooDeep)

	// depth counts the AnyValues that enclose the one checked.
	require.NoError(t, CheckAnyValue(deepAnyValue(1), MaxAnyValueDepth-1))
	require.ErrorIs(t, CheckAnyValue(deepAnyValue(1), MaxAnyValueDepth), ErrTooDeep)
	require.ErrorIs(t, CheckAnyValue(deepAnyValue(3), MaxAnyValueDepth-2), ErrTooDeep)

	// A kvlist whose key-value has no value field: pdata gives the key an
	// empty value one level deeper than the kvlist.
	keyOnly := lenField(6, lenField(1, lenField(1, []byte("k"))))
	require.NoError(t, CheckAnyValue(keyOnly, MaxAnyValueDepth-2))
	require.ErrorIs(t, CheckAnyValue(keyOnly, MaxAnyValueDepth-1), ErrTooDeep)
	for depth, want := range map[int]error{MaxAnyValueDepth - 2: nil, MaxAnyValueDepth - 1: ErrTooDeep} {
		v := keyOnly
		for range depth { // AnyValue{array_value{values: [v]}}
			v = lenField(5, lenField(1, v))
		}
		b.Reset()
		err := Scan(attrWith(v), &b)
		if want == nil {
			require.NoError(t, err, "the key's empty value at level %d", depth+2)
		} else {
			require.ErrorIs(t, err, want, "the key's empty value at level %d", depth+2)
		}
	}
}

// repeated returns a request whose ResourceSpans repeats its resource n
// times and whose ScopeSpans repeats its scope n times, each occurrence a
// small non-empty message (dropped_attributes_count 1), then holds one span.
func repeated(n int) []byte {
	res := bytes.Repeat(lenField(1, varintField(2, 1)), n)
	scope := bytes.Repeat(lenField(1, varintField(4, 1)), n)
	ss := cat(scope, lenField(2, cat(lenField(1, tidb(1)), lenField(2, sidb(1)))))
	return inResource(res, lenField(2, ss))
}

func TestScanRepeatedResourceAndScope(t *testing.T) {
	const n = 1 << 20 // 8 MiB of repeats, 4 MiB each
	buf := repeated(n)
	var b Batch
	require.NoError(t, Scan(buf, &b))
	require.Len(t, b.Spans, 1)
	sc := b.Scopes[0]
	require.Equal(t, bytes.Repeat(varintField(2, 1), n), sc.Resource)
	require.Equal(t, bytes.Repeat(varintField(4, 1), n), sc.Scope)

	td := unmarshal(t, groupByScope(&b, func(int) string { return "" }))
	rs := td.ResourceSpans().At(0)
	require.Equal(t, uint32(1), rs.Resource().DroppedAttributesCount())
	require.Equal(t, uint32(1), rs.ScopeSpans().At(0).Scope().DroppedAttributesCount())
}

// TestScanRepeatedMergeAllocatesOnce fails on a merge that re-copies the
// growing result at every repeat (one allocation per repeat, quadratic
// bytes): merging copies each byte once, into one allocation per message.
func TestScanRepeatedMergeAllocatesOnce(t *testing.T) {
	buf := repeated(20_000)
	var b Batch
	require.NoError(t, Scan(buf, &b)) // grow the batch
	allocs := testing.AllocsPerRun(3, func() {
		b.Reset()
		if err := Scan(buf, &b); err != nil {
			t.Fatal(err)
		}
	})
	require.LessOrEqual(t, allocs, 2.0, "one merge per resource and per scope")
}
