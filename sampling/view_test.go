package sampling_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/wire"
	"github.com/tailsift/tailsift/sampling"
	"github.com/tailsift/tailsift/sampling/samplingtest"
)

// viewOf scans td and returns the view of its first span.
func viewOf(t testing.TB, td ptrace.Traces) *sampling.SpanView {
	t.Helper()
	var m ptrace.ProtoMarshaler
	buf, err := m.MarshalTraces(td)
	require.NoError(t, err)
	var b wire.Batch
	require.NoError(t, wire.Scan(buf, &b))
	v := samplingtest.View(&b.Spans[0], &b.Scopes[b.Spans[0].Scope])
	return &v
}

func oneSpan(service, name string, attrs map[string]any) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	if service != "" {
		rs.Resource().Attributes().PutStr("service.name", service)
	}
	rs.Resource().Attributes().PutInt("host.cpus", 8)
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().Attributes().PutBool("scope.flag", true)
	sp := ss.Spans().AppendEmpty()
	sp.SetTraceID(pcommon.TraceID{1})
	sp.SetSpanID(pcommon.SpanID{1})
	sp.SetName(name)
	sp.SetKind(ptrace.SpanKindServer)
	_ = sp.Attributes().FromRaw(attrs)
	return td
}

func TestSpanViewAttributes(t *testing.T) {
	v := viewOf(t, oneSpan("cart", "GET /cart", map[string]any{
		"http.route": "/cart", "http.status_code": 503, "ratio": 0.25, "ok": false,
		"list": []any{"a", 1}, "map": map[string]any{"k": "v"},
	}))
	tests := []struct {
		name string
		get  func() (sampling.Value, bool)
		want sampling.Value
		ok   bool
	}{
		{"string span attr", func() (sampling.Value, bool) { return v.SpanAttr("http.route") }, sampling.Value{Kind: sampling.KindString, Bytes: []byte("/cart")}, true},
		{"int span attr", func() (sampling.Value, bool) { return v.SpanAttr("http.status_code") }, sampling.Value{Kind: sampling.KindInt, Int: 503}, true},
		{"double span attr", func() (sampling.Value, bool) { return v.SpanAttr("ratio") }, sampling.Value{Kind: sampling.KindDouble, Double: 0.25}, true},
		{"false bool span attr", func() (sampling.Value, bool) { return v.SpanAttr("ok") }, sampling.Value{Kind: sampling.KindBool}, true},
		{"absent span attr", func() (sampling.Value, bool) { return v.SpanAttr("nope") }, sampling.Value{}, false},
		{"resource attr", func() (sampling.Value, bool) { return v.ResourceAttr("service.name") }, sampling.Value{Kind: sampling.KindString, Bytes: []byte("cart")}, true},
		{"resource int attr", func() (sampling.Value, bool) { return v.ResourceAttr("host.cpus") }, sampling.Value{Kind: sampling.KindInt, Int: 8}, true},
		{"scope attr", func() (sampling.Value, bool) { return v.ScopeAttr("scope.flag") }, sampling.Value{Kind: sampling.KindBool, Bool: true}, true},
		{"span attr is not a resource attr", func() (sampling.Value, bool) { return v.ResourceAttr("http.route") }, sampling.Value{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.get()
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.want, got)
		})
	}
	list, ok := v.SpanAttr("list")
	require.True(t, ok)
	assert.Equal(t, sampling.KindArray, list.Kind)
	assert.NotEmpty(t, list.Bytes)
	m, ok := v.SpanAttr("map")
	require.True(t, ok)
	assert.Equal(t, sampling.KindMap, m.Kind)

	allocs := testing.AllocsPerRun(100, func() { _, _ = v.SpanAttr("map") })
	assert.Zero(t, allocs)
}

func TestKeyFields(t *testing.T) {
	h, err := sampling.DefaultKeyFields.Hasher()
	require.NoError(t, err)
	a := h(viewOf(t, oneSpan("cart", "GET /cart", nil)))
	assert.Equal(t, a, h(viewOf(t, oneSpan("cart", "GET /cart", map[string]any{"x": 1}))), "other attributes do not change the key")
	assert.NotEqual(t, a, h(viewOf(t, oneSpan("cart", "GET /carts", nil))))
	assert.NotEqual(t, a, h(viewOf(t, oneSpan("carts", "GET /cart", nil))))
	// Values are length-prefixed: moving a byte between fields changes the key.
	assert.NotEqual(t, h(viewOf(t, oneSpan("ab", "c", nil))), h(viewOf(t, oneSpan("a", "bc", nil))))
	assert.NotEqual(t, a, h(viewOf(t, oneSpan("", "GET /cart", nil))), "an absent service is its own key")

	byRoute, err := sampling.KeyFields{"resource.service.name", "http.route", "kind", "status"}.Hasher()
	require.NoError(t, err)
	r1 := byRoute(viewOf(t, oneSpan("cart", "a", map[string]any{"http.route": "/x"})))
	assert.Equal(t, r1, byRoute(viewOf(t, oneSpan("cart", "b", map[string]any{"http.route": "/x"}))))
	assert.NotEqual(t, r1, byRoute(viewOf(t, oneSpan("cart", "a", map[string]any{"http.route": 7}))), "types are part of the key")

	v := viewOf(t, oneSpan("cart", "GET /cart", map[string]any{"http.route": "/x"}))
	assert.Zero(t, testing.AllocsPerRun(100, func() { _ = byRoute(v) }))

	for _, bad := range []struct {
		fields sampling.KeyFields
		err    string
	}{
		{nil, "must list at least one field"},
		{sampling.KeyFields{"name", ""}, "1: empty field"},
		{sampling.KeyFields{"resource."}, `0: "resource." names no attribute`},
		{sampling.KeyFields{"span."}, `0: "span." names no attribute`},
	} {
		assert.EqualError(t, bad.fields.Validate(), bad.err)
	}
}
