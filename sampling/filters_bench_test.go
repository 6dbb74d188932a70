package sampling

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/wire"
)

// The filter policies' micro-benchmarks: Evaluate, and the span predicate
// the buffer runs on every arriving span. Both must report 0 allocs/op.
//
//	go test -run '^$' -bench 'Filter' -count 10 ./sampling/ > new.txt && benchstat old.txt new.txt

// benchSpan is a server span as instrumentation libraries emit it: a
// resource with a handful of attributes, a dozen span attributes and a
// tracestate, scanned as the buffer scans it.
func benchSpan(b *testing.B) *SpanView {
	b.Helper()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	_ = rs.Resource().Attributes().FromRaw(map[string]any{
		"service.name": "checkout", "service.version": "1.4.2", "deployment.environment": "prod",
		"host.name": "ip-10-0-3-17", "k8s.pod.name": "checkout-7d9f8-x2x4q", "synthetic": false,
	})
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp")
	sp := ss.Spans().AppendEmpty()
	sp.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	sp.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
	sp.SetName("GET /api/v1/cart")
	sp.SetKind(ptrace.SpanKindServer)
	sp.SetFlags(1)
	sp.TraceState().FromRaw("vendor=abc123,ot=th:8;rv:0123456789abcd,tenant@vendor=acme")
	_ = sp.Attributes().FromRaw(map[string]any{
		"http.request.method": "GET", "http.route": "/api/v1/cart", "url.path": "/api/v1/cart",
		"url.scheme": "https", "server.address": "shop.example.com", "server.port": 443,
		"client.address": "203.0.113.7", "user_agent.original": "Mozilla/5.0 (X11; Linux x86_64)",
		"network.protocol.version": "1.1", "http.response.body.size": 5120,
		"http.response.status_code": 503, "app.debug": true,
	})
	var m ptrace.ProtoMarshaler
	buf, err := m.MarshalTraces(td)
	if err != nil {
		b.Fatal(err)
	}
	var batch wire.Batch
	if err := wire.Scan(buf, &batch); err != nil {
		b.Fatal(err)
	}
	s, sc := &batch.Spans[0], &batch.Scopes[batch.Spans[0].Scope]
	return &SpanView{
		Resource: sc.Resource, Scope: sc.Scope, Span: s.Raw, Name: s.Name,
		TraceState: s.TraceState, Flags: s.Flags, Status: s.Status, Root: !s.HasParent,
		Start: s.Start, End: s.End,
	}
}

type benchFilter struct {
	name string
	typ  string
	cfg  any
}

// benchFilters pairs, per type, a config the bench span matches and one it
// does not; the miss usually scans every attribute, the worst case.
var benchFilters = []struct {
	hit, miss benchFilter
}{
	{
		benchFilter{"numeric_attribute", "numeric_attribute", &NumericAttributeConfig{Key: "http.response.status_code", MinValue: 500, MaxValue: 599}},
		benchFilter{"numeric_attribute", "numeric_attribute", &NumericAttributeConfig{Key: "http.status_code", MinValue: 500, MaxValue: 599}},
	},
	{
		benchFilter{"string_attribute", "string_attribute", &StringAttributeConfig{Key: "http.route", Values: []string{"/api/v1/checkout", "/api/v1/cart"}}},
		benchFilter{"string_attribute", "string_attribute", &StringAttributeConfig{Key: "http.route", Values: []string{"/api/v1/checkout", "/health"}}},
	},
	{
		benchFilter{"string_attribute_regex", "string_attribute", &StringAttributeConfig{Key: "http.route", Values: []string{"^/health", "/v[0-9]+/cart$"}, EnabledRegexMatching: true}},
		benchFilter{"string_attribute_regex", "string_attribute", &StringAttributeConfig{Key: "http.route", Values: []string{"^/health", "/v[0-9]+/checkout$"}, EnabledRegexMatching: true}},
	},
	{
		benchFilter{"boolean_attribute", "boolean_attribute", &BooleanAttributeConfig{Key: "app.debug", Value: true}},
		benchFilter{"boolean_attribute", "boolean_attribute", &BooleanAttributeConfig{Key: "app.trace", Value: true}},
	},
	{
		benchFilter{"trace_state", "trace_state", &TraceStateConfig{Key: "tenant@vendor", Values: []string{"acme"}}},
		benchFilter{"trace_state", "trace_state", &TraceStateConfig{Key: "tenant@vendor", Values: []string{"globex"}}},
	},
	{
		benchFilter{"trace_flags", "trace_flags", &TraceFlagsConfig{}},
		benchFilter{"trace_flags", "trace_flags", &TraceFlagsConfig{}}, // the bench span is sampled: see below
	},
}

func buildFilter(b *testing.B, f benchFilter) (Policy, func(*SpanView) bool) {
	b.Helper()
	if v, ok := f.cfg.(validator); ok {
		if err := v.Validate(); err != nil {
			b.Fatal(err)
		}
	}
	var bld Builder
	p, err := registry[f.typ].create(f.cfg, &bld)
	if err != nil {
		b.Fatal(err)
	}
	var pred func(*SpanView) bool
	if len(bld.preds) == 1 {
		pred = bld.preds[0]
	}
	return p, pred
}

// BenchmarkFilterPredicate measures one filter's span predicate on one span.
func BenchmarkFilterPredicate(b *testing.B) {
	view := benchSpan(b)
	unsampled := *view
	unsampled.Flags = 0
	for _, f := range benchFilters {
		for _, c := range []struct {
			name string
			f    benchFilter
			want bool
		}{{"hit", f.hit, true}, {"miss", f.miss, false}} {
			b.Run("policy="+c.f.name+"/"+c.name, func(b *testing.B) {
				_, pred := buildFilter(b, c.f)
				v := view
				if c.f.typ == "trace_flags" && !c.want {
					v = &unsampled
				}
				if pred(v) != c.want {
					b.Fatalf("predicate = %v, want %v", !c.want, c.want)
				}
				b.SetBytes(int64(len(v.Span) + len(v.Resource)))
				b.ReportAllocs()
				for b.Loop() {
					_ = pred(v)
				}
			})
		}
	}
}

// BenchmarkFilterEvaluate measures Evaluate on traces alternately matched
// and not, for every filter type (always_sample and span_count have no
// predicate).
func BenchmarkFilterEvaluate(b *testing.B) {
	filters := []benchFilter{
		{"always_sample", "always_sample", &AlwaysSampleConfig{}},
		{"span_count", "span_count", &SpanCountConfig{MinSpans: 5, MaxSpans: 50}},
	}
	for _, f := range benchFilters {
		filters = append(filters, f.hit)
	}
	filters = append(filters,
		benchFilter{"numeric_attribute_inverted", "numeric_attribute", &NumericAttributeConfig{Key: "k", MinValue: 1, InvertMatch: true}},
	)
	for _, f := range filters {
		b.Run("policy="+f.name, func(b *testing.B) {
			p, _ := buildFilter(b, f)
			traces := [2]Trace{{SpanCount: 3, Matched: 0}, {SpanCount: 30, Matched: 1}}
			kept := 0
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if p.Evaluate(&traces[i&1]).Keep() {
					kept++
				}
				i++
			}
			b.ReportMetric(float64(kept)/float64(i), "kept-ratio")
		})
	}
}
