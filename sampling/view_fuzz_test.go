package sampling_test

import (
	"bytes"
	"math"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/wire"
	"github.com/tailsift/tailsift/sampling"
	"github.com/tailsift/tailsift/sampling/samplingtest"
)

// FuzzSpanViewAgreesWithPdata checks that the policies read the attributes
// pdata reads (what the backend will show): for every request the scanner
// accepts, each attribute of each span, its resource and its scope, looked
// up by key through the span's view, has the kind and value of pdata's
// Map.Get for that key (the first of a repeated key), and a key pdata does
// not have reads as absent. A policy that misread an attribute could drop
// an error trace the backend would show as one.
func FuzzSpanViewAgreesWithPdata(f *testing.F) {
	for _, td := range viewSeeds() {
		buf, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(buf)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var b wire.Batch
		if wire.Scan(data, &b) != nil {
			return
		}
		td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(data)
		if err != nil {
			t.Fatalf("Scan accepts what pdata refuses: %v", err)
		}
		i := 0
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					if i >= len(b.Spans) {
						t.Fatalf("pdata has more spans than Scan's %d", len(b.Spans))
					}
					v := samplingtest.View(&b.Spans[i], &b.Scopes[b.Spans[i].Scope])
					agree(t, "span", sp.Attributes(), v.SpanAttr)
					agree(t, "resource", rs.Resource().Attributes(), v.ResourceAttr)
					agree(t, "scope", ss.Scope().Attributes(), v.ScopeAttr)
					agreeSpan(t, sp, &v)
					i++
				}
			}
		}
		if i != len(b.Spans) {
			t.Fatalf("Scan has %d spans, pdata %d", len(b.Spans), i)
		}
	})
}

// agreeSpan checks the span's fields the policies and the summary read
// besides its attributes: the status code the status_code policy keeps an
// error trace on, the times the latency policy reads, the name, the root
// flag, flags and tracestate.
func agreeSpan(t *testing.T, sp ptrace.Span, v *sampling.SpanView) {
	t.Helper()
	status := uint8(0) // codes outside the enum are no ERROR to pdata's reader either
	if c := sp.Status().Code(); c >= 0 && c <= ptrace.StatusCodeError {
		status = uint8(c)
	}
	if v.Status != status {
		t.Fatalf("span status: pdata %v (%d), the view %d", sp.Status().Code(), int32(sp.Status().Code()), v.Status)
	}
	if string(v.Name) != sp.Name() {
		t.Fatalf("span name: pdata %q, the view %q", sp.Name(), v.Name)
	}
	if v.Start != uint64(sp.StartTimestamp()) || v.End != uint64(sp.EndTimestamp()) {
		t.Fatalf("span times: pdata %d..%d, the view %d..%d", sp.StartTimestamp(), sp.EndTimestamp(), v.Start, v.End)
	}
	if v.Root != sp.ParentSpanID().IsEmpty() {
		t.Fatalf("span root: pdata parent %v, the view root %v", sp.ParentSpanID(), v.Root)
	}
	if v.Flags != sp.Flags() {
		t.Fatalf("span flags: pdata %#x, the view %#x", sp.Flags(), v.Flags)
	}
	if string(v.TraceState) != sp.TraceState().AsRaw() {
		t.Fatalf("span tracestate: pdata %q, the view %q", sp.TraceState().AsRaw(), v.TraceState)
	}
}

// agree checks every key of m, and one m lacks, through get.
func agree(t *testing.T, where string, m pcommon.Map, get func(string) (sampling.Value, bool)) {
	t.Helper()
	for k := range m.All() {
		want, _ := m.Get(k) // the first of a repeated key, as the view reads
		got, ok := get(k)
		if !ok {
			t.Fatalf("%s attribute %q: pdata has %s %q, the view has none", where, k, want.Type(), want.AsString())
		}
		if !sameValue(want, got) {
			t.Fatalf("%s attribute %q: pdata has %s %q, the view kind %d %+v", where, k, want.Type(), want.AsString(), got.Kind, got)
		}
	}
	absent := "\x00absent"
	if _, ok := m.Get(absent); !ok {
		if got, ok := get(absent); ok {
			t.Fatalf("%s attribute %q: absent in pdata, the view has %+v", where, absent, got)
		}
	}
}

func sameValue(want pcommon.Value, got sampling.Value) bool {
	switch want.Type() {
	case pcommon.ValueTypeEmpty:
		return got.Kind == sampling.KindEmpty
	case pcommon.ValueTypeStr:
		return got.Kind == sampling.KindString && string(got.Bytes) == want.Str()
	case pcommon.ValueTypeBool:
		return got.Kind == sampling.KindBool && got.Bool == want.Bool()
	case pcommon.ValueTypeInt:
		return got.Kind == sampling.KindInt && got.Int == want.Int()
	case pcommon.ValueTypeDouble:
		return got.Kind == sampling.KindDouble && math.Float64bits(got.Double) == math.Float64bits(want.Double())
	case pcommon.ValueTypeBytes:
		return got.Kind == sampling.KindBytes && bytes.Equal(got.Bytes, want.Bytes().AsRaw())
	case pcommon.ValueTypeSlice:
		return got.Kind == sampling.KindArray
	case pcommon.ValueTypeMap:
		return got.Kind == sampling.KindMap
	}
	return false
}

// viewSeeds are traces whose spans, resources and scopes carry attributes
// of every kind, an empty value included. (pdata cannot build a repeated
// key; the fuzzer makes them from these.)
func viewSeeds() []ptrace.Traces {
	one := oneSpan("cart", "GET /cart", map[string]any{
		"http.route": "/cart", "http.status_code": 503, "ratio": 0.25, "ok": false,
		"list": []any{"a", 1}, "map": map[string]any{"k": "v"}, "raw": []byte{0, 1, 2},
	})
	one.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().PutEmpty("empty")

	two := ptrace.NewTraces()
	for r := range 2 {
		rs := two.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", []string{"a", "b"}[r])
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("lib")
		ss.Scope().Attributes().PutDouble("scope.ratio", math.Inf(1))
		for s := range 2 {
			sp := ss.Spans().AppendEmpty()
			sp.SetTraceID(pcommon.TraceID{byte(r + 1)})
			sp.SetSpanID(pcommon.SpanID{byte(s + 1)})
			sp.SetName("op")
			sp.Attributes().PutInt("n", int64(-s))
			sp.Status().SetCode(ptrace.StatusCodeError)
		}
	}
	return []ptrace.Traces{one, two}
}
