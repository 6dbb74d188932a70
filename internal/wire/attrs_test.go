package wire

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// AppendSpanAttrs replaces the span's attributes of the same keys: each key
// ends up once, with the new value, and the other attributes stay. (Spans
// that already had sampling.rule once got it twice.)
func TestAppendSpanAttrs(t *testing.T) {
	td := ptrace.NewTraces()
	sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID([16]byte{1})
	sp.SetSpanID([8]byte{1})
	sp.TraceState().FromRaw("ot=th:8")
	sp.Attributes().PutStr("sampling.rule", "upstream")
	sp.Attributes().PutStr("http.route", "/a")
	sp.Attributes().PutInt("SampleRate", 10)
	var m ptrace.ProtoMarshaler
	req, err := m.MarshalTraces(td)
	require.NoError(t, err)
	var b Batch
	require.NoError(t, Scan(req, &b))
	require.Len(t, b.Spans, 1)

	for _, tc := range []struct {
		name  string
		attrs []byte
		want  map[string]any
	}{
		{"both replaced", AppendIntAttr(AppendStringAttr(nil, "sampling.rule", "errors"), "SampleRate", 1),
			map[string]any{"sampling.rule": "errors", "SampleRate": int64(1), "http.route": "/a"}},
		{"one replaced", AppendStringAttr(nil, "sampling.rule", "errors"),
			map[string]any{"sampling.rule": "errors", "SampleRate": int64(10), "http.route": "/a"}},
		{"none", nil, map[string]any{"sampling.rule": "upstream", "SampleRate": int64(10), "http.route": "/a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := AppendSpanAttrs(nil, b.Spans[0].Raw, "ot=th:0", tc.attrs)
			out := AppendResourceSpans(nil, &b.Scopes[0], body, []int{len(body)})
			var u ptrace.ProtoUnmarshaler
			got, err := u.UnmarshalTraces(out)
			require.NoError(t, err)
			span := got.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
			assert.Equal(t, "ot=th:0", span.TraceState().AsRaw())
			assert.Equal(t, len(tc.want), span.Attributes().Len(), "each key once")
			assert.Equal(t, tc.want, span.Attributes().AsRaw())
		})
	}
}
