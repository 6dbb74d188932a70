package sampling_test

import (
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/ottl"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/sampling"
	"github.com/tailsift/tailsift/sampling/samplingtest"
)

type spanWithAttributes struct {
	SpanAttributes      map[string]string
	SpanEventAttributes map[string]string
}

// newTraceWithResourceAndScope is contrib's: spans with attributes, each with
// one event named "test event", under a resource and scope.
func newTraceWithResourceAndScope(resourceAttrs map[string]string, scopeName string, spans []spanWithAttributes) ptrace.Traces {
	traces := ptrace.NewTraces()
	rs := traces.ResourceSpans().AppendEmpty()
	for k, v := range resourceAttrs {
		rs.Resource().Attributes().PutStr(k, v)
	}
	ils := rs.ScopeSpans().AppendEmpty()
	if scopeName != "" {
		ils.Scope().SetName(scopeName)
	}
	for _, s := range spans {
		span := ils.Spans().AppendEmpty()
		span.SetTraceID([16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
		span.SetSpanID([8]byte{1, 2, 3, 4, 5, 6, 7, 8})
		for k, v := range s.SpanAttributes {
			span.Attributes().PutStr(k, v)
		}
		spanEvent := span.Events().AppendEmpty()
		spanEvent.SetName("test event")
		for k, v := range s.SpanEventAttributes {
			spanEvent.Attributes().PutStr(k, v)
		}
	}
	return traces
}

// Ported from contrib's ottl_test.go (TestEvaluate_OTTL and
// TestEvaluate_OTTL_PathContextNames), error_mode ignore. Where contrib's
// constructor fails, Validate fails here with the key named.
func TestOTTLCondition(t *testing.T) {
	cases := []struct {
		Desc                string
		SpanConditions      []string
		SpanEventConditions []string
		ResourceAttributes  map[string]string
		ScopeName           string
		Spans               []spanWithAttributes
		WantErr             string
		Decision            sampling.Verdict
	}{
		{
			Desc:    "OTTL conditions not set",
			Spans:   []spanWithAttributes{{SpanAttributes: map[string]string{"attr_k_1": "attr_v_1"}}},
			WantErr: "span: set span and/or spanevent conditions (expected at least one OTTL condition to filter on)",
		},
		{
			Desc:           "OTTL conditions match specific span attributes 1",
			SpanConditions: []string{`attributes["attr_k_1"] == "attr_v_1"`},
			Spans:          []spanWithAttributes{{SpanAttributes: map[string]string{"attr_k_1": "attr_v_1"}}},
			Decision:       sampling.Sampled,
		},
		{
			Desc:           "OTTL conditions match specific span attributes 2",
			SpanConditions: []string{`attributes["attr_k_1"] != "attr_v_1"`},
			Spans:          []spanWithAttributes{{SpanAttributes: map[string]string{"attr_k_1": "attr_v_1"}}},
			Decision:       sampling.NotSampled,
		},
		{
			Desc:           "OTTL conditions inverse match(!=) span attributes 2",
			SpanConditions: []string{`attributes["attr_k_1"] != "attr_v_1"`},
			Spans:          []spanWithAttributes{{SpanAttributes: map[string]string{"attr_k_1": "attr_v_2"}}},
			Decision:       sampling.Sampled,
		},
		{
			Desc:                "OTTL conditions match specific span event attributes",
			SpanEventConditions: []string{`attributes["event_attr_k_1"] == "event_attr_v_1"`},
			Spans:               []spanWithAttributes{{SpanEventAttributes: map[string]string{"event_attr_k_1": "event_attr_v_1"}}},
			Decision:            sampling.Sampled,
		},
		{
			Desc:                "OTTL conditions match specific span event name",
			SpanEventConditions: []string{`name != "incorrect event name"`},
			Spans:               []spanWithAttributes{{}},
			Decision:            sampling.Sampled,
		},
		{
			// contrib's case has no spans at all; the buffer never decides
			// an empty trace, so this one has a span that matches neither.
			Desc:                "OTTL conditions not matched",
			SpanConditions:      []string{`attributes["attr_k_1"] == "attr_v_1"`},
			SpanEventConditions: []string{`attributes["event_attr_k_1"] == "event_attr_v_1"`},
			Spans:               []spanWithAttributes{{SpanAttributes: map[string]string{"other": "x"}}},
			Decision:            sampling.NotSampled,
		},
		{
			Desc:           "OTTL conditions with span context prefix",
			SpanConditions: []string{`span.attributes["attr_k_1"] == "attr_v_1"`},
			Spans:          []spanWithAttributes{{SpanAttributes: map[string]string{"attr_k_1": "attr_v_1"}}},
			Decision:       sampling.Sampled,
		},
		{
			Desc:           "OTTL conditions inverse match with span context prefix",
			SpanConditions: []string{`span.attributes["attr_k_1"] != "attr_v_1"`},
			Spans:          []spanWithAttributes{{SpanAttributes: map[string]string{"attr_k_1": "attr_v_2"}}},
			Decision:       sampling.Sampled,
		},
		{
			Desc:                "OTTL conditions with spanevent context prefix on attributes",
			SpanEventConditions: []string{`spanevent.attributes["event_attr_k_1"] == "event_attr_v_1"`},
			Spans:               []spanWithAttributes{{SpanEventAttributes: map[string]string{"event_attr_k_1": "event_attr_v_1"}}},
			Decision:            sampling.Sampled,
		},
		{
			Desc:                "OTTL conditions with spanevent context prefix on name",
			SpanEventConditions: []string{`spanevent.name != "incorrect event name"`},
			Spans:               []spanWithAttributes{{}},
			Decision:            sampling.Sampled,
		},
		{
			Desc:           "OTTL conditions mixed prefixed and unprefixed in same span list",
			SpanConditions: []string{`attributes["attr_k_1"] == "attr_v_1"`, `span.attributes["attr_k_2"] == "attr_v_2"`},
			Spans:          []spanWithAttributes{{SpanAttributes: map[string]string{"attr_k_2": "attr_v_2"}}},
			Decision:       sampling.Sampled,
		},
		{
			Desc:           "OTTL conditions with invalid context prefix",
			SpanConditions: []string{`badcontext.attributes["x"] == "y"`},
			Spans:          []spanWithAttributes{{SpanAttributes: map[string]string{"attr_k_1": "attr_v_1"}}},
			WantErr: `span::0: unable to parse OTTL condition "span.badcontext.attributes[\"x\"] == \"y\"": segment "badcontext" from path "span.badcontext.attributes[x]" ` +
				"is not a valid path nor a valid OTTL keyword for the span context - review " +
				"https://github.com/open-telemetry/opentelemetry-collector-contrib/tree/main/pkg/ottl/contexts/ottlspan to see all valid paths",
		},
		// TestEvaluate_OTTL_PathContextNames
		{
			Desc:               "Resource attribute match using resource context prefix on span",
			SpanConditions:     []string{`resource.attributes["service.name"] == "checkout"`},
			ResourceAttributes: map[string]string{"service.name": "checkout"},
			Spans:              []spanWithAttributes{{}},
			Decision:           sampling.Sampled,
		},
		{
			Desc:                "Resource attribute match using resource context prefix on spanevent",
			SpanEventConditions: []string{`resource.attributes["service.name"] == "checkout"`},
			ResourceAttributes:  map[string]string{"service.name": "checkout"},
			Spans:               []spanWithAttributes{{}},
			Decision:            sampling.Sampled,
		},
		{
			Desc:           "Scope name match using scope context prefix on span",
			SpanConditions: []string{`scope.name == "my-scope"`},
			ScopeName:      "my-scope",
			Spans:          []spanWithAttributes{{}},
			Decision:       sampling.Sampled,
		},
		{
			Desc:           "Scope name match using instrumentation_scope context prefix on span",
			SpanConditions: []string{`instrumentation_scope.name == "my-scope"`},
			ScopeName:      "my-scope",
			Spans:          []spanWithAttributes{{}},
			Decision:       sampling.Sampled,
		},
		{
			Desc:           "IsRootSpan is available in the span context",
			SpanConditions: []string{`IsRootSpan()`},
			Spans:          []spanWithAttributes{{}},
			Decision:       sampling.Sampled,
		},
		{
			Desc:           "later span matches",
			SpanConditions: []string{`attributes["k"] == "v"`},
			Spans:          []spanWithAttributes{{}, {}, {SpanAttributes: map[string]string{"k": "v"}}},
			Decision:       sampling.Sampled,
		},
	}
	for _, c := range cases {
		t.Run(c.Desc, func(t *testing.T) {
			cfg := &sampling.OTTLConditionConfig{ErrorMode: ottl.IgnoreError, SpanConditions: c.SpanConditions, SpanEventConditions: c.SpanEventConditions}
			if c.WantErr != "" {
				require.EqualError(t, cfg.Validate(), c.WantErr)
				return
			}
			require.NoError(t, cfg.Validate())
			td := newTraceWithResourceAndScope(c.ResourceAttributes, c.ScopeName, c.Spans)
			d := evalOn(t, sampling.NewPolicyConfig("ottl", "ottl_condition", cfg), td, t0)
			assert.Equal(t, c.Decision, d.Verdict)
		})
	}
}

func TestOTTLConditionErrorMode(t *testing.T) {
	// The first condition fails to evaluate (j is not JSON), the second
	// matches. ignore and silent go on to the second; propagate stops with
	// NotSampled.
	conds := []string{`ParseJSON(attributes["j"])["a"] == 1`, `attributes["k"] == "v"`}
	td := newTraceWithResourceAndScope(nil, "", []spanWithAttributes{{SpanAttributes: map[string]string{"j": "not json", "k": "v"}}})
	for mode, want := range map[ottl.ErrorMode]sampling.Verdict{
		"":                  sampling.Sampled,
		ottl.IgnoreError:    sampling.Sampled,
		ottl.SilentError:    sampling.Sampled,
		ottl.PropagateError: sampling.NotSampled,
	} {
		t.Run(string(mode), func(t *testing.T) {
			cfg := sampling.NewPolicyConfig("ottl", "ottl_condition", &sampling.OTTLConditionConfig{ErrorMode: mode, SpanConditions: conds})
			assert.Equal(t, want, evalOn(t, cfg, td, t0).Verdict)
		})
	}
}

func TestOTTLConditionNeedsSpans(t *testing.T) {
	cfg := ottlPolicy("ottl", []string{`name == "span"`}, nil)
	p, b, err := sampling.BuildPolicy(&cfg)
	require.NoError(t, err)
	assert.True(t, b.NeedsSpans())
	e := newEngine(t, cfg)
	assert.True(t, e.NeedsSpans())

	tr := samplingtest.Summarize(t, e, traceOf(traceID(1), spanSpec{}), t0)
	require.True(t, tr.HasSpans)
	assert.Equal(t, sampling.Sampled, p.Evaluate(tr).Verdict)
	tr.HasSpans = false
	assert.Equal(t, sampling.NotSampled, p.Evaluate(tr).Verdict, "no spans: not sampled")

	// A sub-policy's need reaches the engine.
	e = newEngine(t, andPolicy("and", statusPolicy("s", "ERROR"), cfg))
	assert.True(t, e.NeedsSpans())
	e = newEngine(t, statusPolicy("s", "ERROR"))
	assert.False(t, e.NeedsSpans())
}
