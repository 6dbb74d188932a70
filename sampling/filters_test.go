package sampling_test

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/sampling"
	"github.com/tailsift/tailsift/sampling/samplingtest"
)

// The tables below are contrib v0.161.0's internal/sampling/<policy>_test.go,
// case by case: same names, same traces, same verdicts. Each trace goes
// through samplingtest.Summarize and an engine holding the one policy, so the
// span predicates run as the buffer runs them.

// Verdicts of contrib's tables: a one-policy engine keeps the trace exactly
// when the policy answers Sampled.
const (
	wantSampled    = true
	wantNotSampled = false
)

var contribTraceID = pcommon.TraceID([16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})

func numericPolicy(name, key string, minValue, maxValue int64, invert bool) sampling.PolicyConfig {
	return sampling.NewPolicyConfig(name, "numeric_attribute", &sampling.NumericAttributeConfig{
		Key: key, MinValue: minValue, MaxValue: maxValue, InvertMatch: invert,
	})
}

func stringPolicy(name, key string, values []string, regex bool, invert bool) sampling.PolicyConfig {
	return sampling.NewPolicyConfig(name, "string_attribute", &sampling.StringAttributeConfig{
		Key: key, Values: values, EnabledRegexMatching: regex, InvertMatch: invert,
	})
}

func boolPolicy(name, key string, value, invert bool) sampling.PolicyConfig {
	return sampling.NewPolicyConfig(name, "boolean_attribute", &sampling.BooleanAttributeConfig{
		Key: key, Value: value, InvertMatch: invert,
	})
}

func traceStatePolicy(name, key string, values ...string) sampling.PolicyConfig {
	return sampling.NewPolicyConfig(name, "trace_state", &sampling.TraceStateConfig{Key: key, Values: values})
}

func spanCountPolicy(name string, minSpans, maxSpans int64) sampling.PolicyConfig {
	return sampling.NewPolicyConfig(name, "span_count", &sampling.SpanCountConfig{MinSpans: minSpans, MaxSpans: maxSpans})
}

// decide runs td through an engine holding only cfg, as the buffer would.
func decideOne(t testing.TB, cfg sampling.PolicyConfig, td ptrace.Traces) sampling.Decision {
	t.Helper()
	e := newEngine(t, cfg)
	return e.Decide(samplingtest.Summarize(t, e, td, 0))
}

// decideUnvalidated is decide for a config Validate refuses but contrib
// accepts: the constructor must still give contrib's verdict.
func decideUnvalidated(t testing.TB, cfg sampling.PolicyConfig, td ptrace.Traces) sampling.Decision {
	t.Helper()
	e, err := sampling.NewEngine([]sampling.PolicyConfig{cfg})
	require.NoError(t, err)
	return e.Decide(samplingtest.Summarize(t, e, td, 0))
}

// assertVerdict checks a one-policy engine's decision against contrib's.
func assertVerdict(t testing.TB, want bool, d sampling.Decision) {
	t.Helper()
	if want {
		assert.True(t, d.Keep(), "want sampled")
		assert.Equal(t, sampling.Sampled, d.Verdict)
		assert.Equal(t, otelsampling.AlwaysSampleThreshold, d.Threshold)
		assert.NotEmpty(t, d.Policy)
		return
	}
	assert.False(t, d.Keep(), "want not sampled")
	assert.Equal(t, sampling.NotSampled, d.Verdict)
	assert.Empty(t, d.Policy)
}

// newContribSpan appends contrib's one-span trace layout and returns the span.
func newContribSpan(nodeAttrs map[string]any) (ptrace.Traces, ptrace.Span) {
	traces := ptrace.NewTraces()
	rs := traces.ResourceSpans().AppendEmpty()
	_ = rs.Resource().Attributes().FromRaw(nodeAttrs)
	span := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	span.SetTraceID(contribTraceID)
	span.SetSpanID([8]byte{1, 2, 3, 4, 5, 6, 7, 8})
	return traces, span
}

func newTraceIntAttrs(nodeAttrs map[string]any, spanAttrKey string, spanAttrValue int64) ptrace.Traces {
	td, span := newContribSpan(nodeAttrs)
	span.Attributes().PutInt(spanAttrKey, spanAttrValue)
	return td
}

func newTraceStringAttrs(nodeAttrs map[string]any, spanAttrKey, spanAttrValue string) ptrace.Traces {
	td, span := newContribSpan(nodeAttrs)
	span.Attributes().PutStr(spanAttrKey, spanAttrValue)
	return td
}

func newTraceBoolAttrs(nodeAttrs map[string]any, spanAttrKey string, spanAttrValue bool) ptrace.Traces {
	td, span := newContribSpan(nodeAttrs)
	span.Attributes().PutBool(spanAttrKey, spanAttrValue)
	return td
}

func newTraceState(traceState string) ptrace.Traces {
	td, span := newContribSpan(nil)
	span.TraceState().FromRaw(traceState)
	return td
}

func newTraceFlags(sampledFlag bool) ptrace.Traces {
	td, span := newContribSpan(nil)
	if sampledFlag {
		span.SetFlags(1) // trace.FlagsSampled
	}
	return td
}

// newTraceWithMultipleSpans is contrib's: one resource per batch.
func newTraceWithMultipleSpans(numberSpans []int32) ptrace.Traces {
	traces := ptrace.NewTraces()
	for _, n := range numberSpans {
		ils := traces.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
		for range n {
			span := ils.Spans().AppendEmpty()
			span.SetTraceID(contribTraceID)
			span.SetSpanID([8]byte{1, 2, 3, 4, 5, 6, 7, 8})
		}
	}
	return traces
}

func TestAlwaysSample(t *testing.T) {
	// contrib: TestEvaluate_AlwaysSample.
	cfg := sampling.NewPolicyConfig("p", "always_sample", nil)
	assertVerdict(t, wantSampled, decideOne(t, cfg, newTraceStringAttrs(nil, "example", "value")))
	// And with its (empty) settings block given explicitly.
	cfg = sampling.NewPolicyConfig("p", "always_sample", &sampling.AlwaysSampleConfig{})
	assertVerdict(t, wantSampled, decideOne(t, cfg, newTraceFlags(false)))
}

func TestNumericAttribute(t *testing.T) {
	empty := map[string]any{}
	tests := []struct {
		desc   string
		td     ptrace.Traces
		want   bool // invert_match false
		invert bool // invert_match true
	}{
		// contrib: TestNumericTagFilter and TestNumericTagFilterInverted,
		// which share their traces (but for the last case's span value,
		// MaxInt32 vs MaxInt32+1 on a non-matching key: same verdicts).
		{"nonmatching span attribute", newTraceIntAttrs(empty, "non_matching", math.MinInt32), wantNotSampled, wantSampled},
		{"span attribute at the lower limit", newTraceIntAttrs(empty, "example", math.MinInt32), wantSampled, wantNotSampled},
		{"resource attribute at the lower limit", newTraceIntAttrs(map[string]any{"example": math.MinInt32}, "non_matching", math.MinInt32), wantSampled, wantNotSampled},
		{"span attribute at the upper limit", newTraceIntAttrs(empty, "example", math.MaxInt32), wantSampled, wantNotSampled},
		{"resource attribute at the upper limit", newTraceIntAttrs(map[string]any{"example": math.MaxInt32}, "non_matching", math.MaxInt), wantSampled, wantNotSampled},
		{"span attribute below min limit", newTraceIntAttrs(empty, "example", math.MinInt32-1), wantNotSampled, wantSampled},
		{"resource attribute below min limit", newTraceIntAttrs(map[string]any{"example": math.MinInt32 - 1}, "non_matching", math.MinInt32), wantNotSampled, wantSampled},
		{"span attribute above max limit", newTraceIntAttrs(empty, "example", math.MaxInt32+1), wantNotSampled, wantSampled},
		{"resource attribute above max limit", newTraceIntAttrs(map[string]any{"example": math.MaxInt32 + 1}, "non_matching", math.MaxInt32+1), wantNotSampled, wantSampled},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			assertVerdict(t, tt.want, decideOne(t, numericPolicy("p", "example", math.MinInt32, math.MaxInt32, false), tt.td))
		})
		t.Run("inverted/"+tt.desc, func(t *testing.T) {
			assertVerdict(t, tt.invert, decideOne(t, numericPolicy("p", "example", math.MinInt32, math.MaxInt32, true), tt.td))
		})
	}
}

func TestNumericAttributeOptionalBounds(t *testing.T) {
	// contrib: TestNumericTagFilterOptionalBounds, where a nil bound is a
	// 0 in the config (getSharedPolicyEvaluator), and processor_test's
	// TestNumericAttributeCases, which goes through that mapping.
	tests := []struct {
		name               string
		minValue, maxValue int64
		value              int64
		invert             bool
		want               bool
	}{
		{"only min set - value above min", 100, 0, 200, false, wantSampled},
		{"only min set - value below min", 100, 0, 50, false, wantNotSampled},
		{"only max set - value below max", 0, 100, 50, false, wantSampled},
		{"only max set - value above max", 0, 100, 200, false, wantNotSampled},
		{"both set - value in range", 100, 200, 150, false, wantSampled},
		{"both set - value out of range", 100, 200, 50, false, wantNotSampled},
		{"inverted match - only min set - value above min", 100, 0, 200, true, wantNotSampled},
		{"inverted match - only max set - value below max", 0, 100, 50, true, wantNotSampled},
		// TestNumericAttributeCases.
		{"Only min_value set (positive)", 400, 0, 500, false, wantSampled},
		{"Only min_value set (negative value)", -100, 0, 50, false, wantSampled},
		{"Only max_value set (positive)", 0, 1000, 500, false, wantSampled},
		{"Both min and max set", 100, 200, 150, false, wantSampled},
		{"Value below min_value", 400, 0, 300, false, wantNotSampled},
		{"Value above max_value", 0, 100, 200, false, wantNotSampled},
		// 0 is "unset", not a bound: [-100, 0] is [-100, MaxInt64].
		{"max_value 0 is no upper bound", -100, 0, 1 << 62, false, wantSampled},
		{"min_value 0 is no lower bound", 0, 10, math.MinInt64, false, wantSampled},
		{"max_value 0 is no upper bound, inverted", -100, 0, 1 << 62, true, wantNotSampled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			td := newTraceIntAttrs(map[string]any{}, "example", tt.value)
			assertVerdict(t, tt.want, decideOne(t, numericPolicy("p", "example", tt.minValue, tt.maxValue, tt.invert), td))
		})
	}
}

func TestNumericAttributeNilBounds(t *testing.T) {
	// contrib: TestNumericTagFilterNilBounds. contrib returns a nil
	// evaluator without both bounds; tailsift refuses the config.
	p := numericPolicy("p", "example", 0, 0, false)
	require.EqualError(t, p.Validate(), "numeric_attribute: min_value: set min_value or max_value (0 means unset)")
	for _, c := range []sampling.PolicyConfig{
		numericPolicy("p", "example", 100, 0, false),
		numericPolicy("p", "example", 0, 200, false),
		numericPolicy("p", "example", 100, 200, false),
	} {
		require.NoError(t, c.Validate())
	}
}

func TestNumericAttributeNonInteger(t *testing.T) {
	// contrib reads a present attribute with pdata's Value.Int(), which is
	// 0 for any other type: the value counts as 0.
	tests := []struct {
		name       string
		attr       any
		lo, hi     int64
		want, wInv bool
	}{
		{"string in a range holding 0", "abc", -10, 10, wantSampled, wantNotSampled},
		{"string in a range without 0", "500", 400, 600, wantNotSampled, wantSampled},
		{"double in a range holding 0", 500.0, -10, 10, wantSampled, wantNotSampled},
		{"double in a range without 0", 500.0, 400, 600, wantNotSampled, wantSampled},
		{"bool in a range holding 0", true, -1, 1, wantSampled, wantNotSampled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			td, span := newContribSpan(nil)
			require.NoError(t, span.Attributes().FromRaw(map[string]any{"example": tt.attr}))
			assertVerdict(t, tt.want, decideOne(t, numericPolicy("p", "example", tt.lo, tt.hi, false), td))
			assertVerdict(t, tt.wInv, decideOne(t, numericPolicy("p", "example", tt.lo, tt.hi, true), td))
			// On the resource too.
			td, _ = newContribSpan(map[string]any{"example": tt.attr})
			assertVerdict(t, tt.want, decideOne(t, numericPolicy("p", "example", tt.lo, tt.hi, false), td))
		})
	}
}

func TestStringAttribute(t *testing.T) {
	// contrib: TestStringTagFilter. Its CacheMaxSize is irrelevant here
	// (accepted, ignored); cases with it unset are kept as they are.
	type cfg struct {
		key    string
		values []string
		regex  bool
		invert bool
	}
	tests := []struct {
		desc string
		td   ptrace.Traces
		cfg  cfg
		want bool
	}{
		{"nonmatching node attribute key", newTraceStringAttrs(map[string]any{"non_matching": "value"}, "", ""), cfg{"example", []string{"value"}, false, false}, wantNotSampled},
		{"nonmatching node attribute value", newTraceStringAttrs(map[string]any{"example": "non_matching"}, "", ""), cfg{"example", []string{"value"}, false, false}, wantNotSampled},
		{"matching node attribute", newTraceStringAttrs(map[string]any{"example": "value"}, "", ""), cfg{"example", []string{"value"}, false, false}, wantSampled},
		{"nonmatching span attribute key", newTraceStringAttrs(nil, "nonmatching", "value"), cfg{"example", []string{"value"}, false, false}, wantNotSampled},
		{"nonmatching span attribute value", newTraceStringAttrs(nil, "example", "nonmatching"), cfg{"example", []string{"value"}, false, false}, wantNotSampled},
		{"matching span attribute", newTraceStringAttrs(nil, "example", "value"), cfg{"example", []string{"value"}, false, false}, wantSampled},
		{"matching span attribute with regex", newTraceStringAttrs(nil, "example", "grpc.health.v1.HealthCheck"), cfg{"example", []string{"v[0-9]+.HealthCheck$"}, true, false}, wantSampled},
		{"nonmatching span attribute with regex", newTraceStringAttrs(nil, "example", "grpc.health.v1.HealthCheck"), cfg{"example", []string{"v[a-z]+.HealthCheck$"}, true, false}, wantNotSampled},
		{"matching span attribute with regex without CacheSize provided in config", newTraceStringAttrs(nil, "example", "grpc.health.v1.HealthCheck"), cfg{"example", []string{"v[0-9]+.HealthCheck$"}, true, false}, wantSampled},
		{"matching plain text node attribute in regex", newTraceStringAttrs(map[string]any{"example": "value"}, "", ""), cfg{"example", []string{"value"}, true, false}, wantSampled},
		{"nonmatching span attribute on empty filter list", newTraceStringAttrs(nil, "example", "grpc.health.v1.HealthCheck"), cfg{"example", []string{}, true, false}, wantNotSampled},
		{"invert nonmatching node attribute key", newTraceStringAttrs(map[string]any{"non_matching": "value"}, "", ""), cfg{"example", []string{"value"}, false, true}, wantSampled},
		{"invert nonmatching node attribute value", newTraceStringAttrs(map[string]any{"example": "non_matching"}, "", ""), cfg{"example", []string{"value"}, false, true}, wantSampled},
		{"invert nonmatching node attribute list", newTraceStringAttrs(map[string]any{"example": "non_matching"}, "", ""), cfg{"example", []string{"first_value", "value", "last_value"}, false, true}, wantSampled},
		{"invert matching node attribute", newTraceStringAttrs(map[string]any{"example": "value"}, "", ""), cfg{"example", []string{"value"}, false, true}, wantNotSampled},
		{"invert matching node attribute list", newTraceStringAttrs(map[string]any{"example": "value"}, "", ""), cfg{"example", []string{"first_value", "value", "last_value"}, false, true}, wantNotSampled},
		{"invert nonmatching span attribute key", newTraceStringAttrs(nil, "nonmatching", "value"), cfg{"example", []string{"value"}, false, true}, wantSampled},
		{"invert nonmatching span attribute value", newTraceStringAttrs(nil, "example", "nonmatching"), cfg{"example", []string{"value"}, false, true}, wantSampled},
		{"invert nonmatching span attribute list", newTraceStringAttrs(nil, "example", "nonmatching"), cfg{"example", []string{"first_value", "value", "last_value"}, false, true}, wantSampled},
		{"invert matching span attribute", newTraceStringAttrs(nil, "example", "value"), cfg{"example", []string{"value"}, false, true}, wantNotSampled},
		{"invert matching span attribute list", newTraceStringAttrs(nil, "example", "value"), cfg{"example", []string{"first_value", "value", "last_value"}, false, true}, wantNotSampled},
		{"invert matching span attribute with regex", newTraceStringAttrs(nil, "example", "grpc.health.v1.HealthCheck"), cfg{"example", []string{"v[0-9]+.HealthCheck$"}, true, true}, wantNotSampled},
		{"invert matching span attribute with regex list", newTraceStringAttrs(nil, "example", "grpc.health.v1.HealthCheck"), cfg{"example", []string{"^http", "v[0-9]+.HealthCheck$", "metrics$"}, true, true}, wantNotSampled},
		{"invert nonmatching span attribute with regex", newTraceStringAttrs(nil, "example", "grpc.health.v1.HealthCheck"), cfg{"example", []string{"v[a-z]+.HealthCheck$"}, true, true}, wantSampled},
		{"invert nonmatching span attribute with regex list", newTraceStringAttrs(nil, "example", "grpc.health.v1.HealthCheck"), cfg{"example", []string{"^http", "v[a-z]+.HealthCheck$", "metrics$"}, true, true}, wantSampled},
		{"invert matching plain text node attribute in regex", newTraceStringAttrs(map[string]any{"example": "value"}, "", ""), cfg{"example", []string{"value"}, true, true}, wantNotSampled},
		{"invert matching plain text node attribute in regex list", newTraceStringAttrs(map[string]any{"example": "value"}, "", ""), cfg{"example", []string{"first_value", "value", "last_value"}, true, true}, wantNotSampled},
		{"invert nonmatching span attribute on empty filter list", newTraceStringAttrs(nil, "example", "grpc.health.v1.HealthCheck"), cfg{"example", []string{}, true, true}, wantSampled},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			p := stringPolicy("p", tt.cfg.key, tt.cfg.values, tt.cfg.regex, tt.cfg.invert)
			if len(tt.cfg.values) == 0 {
				// Refused by Validate, which contrib lacks; the
				// constructor still answers as contrib.
				require.EqualError(t, p.Validate(), "string_attribute: values: must not be empty")
				assertVerdict(t, tt.want, decideUnvalidated(t, p, tt.td))
				return
			}
			assertVerdict(t, tt.want, decideOne(t, p, tt.td))
		})
	}
}

func TestStringAttributeInvalidRegex(t *testing.T) {
	// contrib: TestStringTagFilter_InvalidRegex.
	t.Run("error when regex is enabled", func(t *testing.T) {
		p := stringPolicy("p", "key", []string{"*invalid-regex"}, true, false)
		require.EqualError(t, p.Validate(), "string_attribute: values::0: invalid regex `*invalid-regex`: error parsing regexp: missing argument to repetition operator: `*`")
		_, err := sampling.NewEngine([]sampling.PolicyConfig{p})
		require.EqualError(t, err, "policies::0 (p): invalid regex `*invalid-regex`: error parsing regexp: missing argument to repetition operator: `*`")
	})
	t.Run("succeeds when regex is disabled", func(t *testing.T) {
		p := stringPolicy("p", "key", []string{"*invalid-regex"}, false, false)
		require.NoError(t, p.Validate())
		assertVerdict(t, wantSampled, decideOne(t, p, newTraceStringAttrs(nil, "key", "*invalid-regex")))
	})
}

func TestStringAttributeValueTypes(t *testing.T) {
	// contrib compares pdata's Value.Str(), "" for a non-string value. On
	// a resource it matches that "" too; on a span it skips an empty Str().
	anything := []string{"^$"}
	tests := []struct {
		name     string
		resource map[string]any
		span     map[string]any
		values   []string
		regex    bool
		want     bool
	}{
		{"resource int against a regex matching empty", map[string]any{"example": 5}, nil, anything, true, wantSampled},
		{"resource empty string against a regex matching empty", map[string]any{"example": ""}, nil, anything, true, wantSampled},
		{"span int against a regex matching empty", nil, map[string]any{"example": 5}, anything, true, wantNotSampled},
		{"span empty string against a regex matching empty", nil, map[string]any{"example": ""}, anything, true, wantNotSampled},
		{"absent attribute against a regex matching empty", nil, map[string]any{"other": "x"}, anything, true, wantNotSampled},
		{"span bytes are not a string", nil, map[string]any{"example": []byte("value")}, []string{"value"}, false, wantNotSampled},
		{"resource int is not its decimal string", map[string]any{"example": 5}, nil, []string{"5"}, false, wantNotSampled},
		{"regex is unanchored", nil, map[string]any{"example": "xxvaluexx"}, []string{"value"}, true, wantSampled},
		{"exact match is whole", nil, map[string]any{"example": "xxvaluexx"}, []string{"value"}, false, wantNotSampled},
		{"exact match is case sensitive", nil, map[string]any{"example": "Value"}, []string{"value"}, false, wantNotSampled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			td, span := newContribSpan(tt.resource)
			require.NoError(t, span.Attributes().FromRaw(tt.span))
			assertVerdict(t, tt.want, decideOne(t, stringPolicy("p", "example", tt.values, tt.regex, false), td))
			assertVerdict(t, !tt.want, decideOne(t, stringPolicy("p", "example", tt.values, tt.regex, true), td))
		})
	}
}

func TestBooleanAttribute(t *testing.T) {
	// contrib: TestBooleanTagFilter and TestBooleanTagFilterInverted.
	empty := map[string]any{}
	tests := []struct {
		desc   string
		td     ptrace.Traces
		want   bool
		invert bool
	}{
		{"non-matching span attribute", newTraceBoolAttrs(empty, "non_matching", true), wantNotSampled, wantSampled},
		{"span attribute with unwanted boolean value", newTraceBoolAttrs(empty, "example", false), wantNotSampled, wantSampled},
		{"span attribute with wanted boolean value", newTraceBoolAttrs(empty, "example", true), wantSampled, wantNotSampled},
		// Beyond contrib's tables: resources, and non-boolean values,
		// which pdata's Value.Bool() reads as false.
		{"resource attribute with wanted boolean value", newTraceBoolAttrs(map[string]any{"example": true}, "other", false), wantSampled, wantNotSampled},
		{"resource attribute with unwanted boolean value", newTraceBoolAttrs(map[string]any{"example": false}, "other", true), wantNotSampled, wantSampled},
		{"string attribute \"true\" is not true", newTraceStringAttrs(nil, "example", "true"), wantNotSampled, wantSampled},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			assertVerdict(t, tt.want, decideOne(t, boolPolicy("p", "example", true, false), tt.td))
		})
		t.Run("inverted/"+tt.desc, func(t *testing.T) {
			assertVerdict(t, tt.invert, decideOne(t, boolPolicy("p", "example", true, true), tt.td))
		})
	}
	t.Run("value false matches a non-boolean attribute", func(t *testing.T) {
		td := newTraceStringAttrs(nil, "example", "yes")
		assertVerdict(t, wantSampled, decideOne(t, boolPolicy("p", "example", false, false), td))
		assertVerdict(t, wantNotSampled, decideOne(t, boolPolicy("p", "example", false, true), td))
	})
}

func TestTraceState(t *testing.T) {
	// contrib: TestTraceStateFilter.
	tests := []struct {
		desc   string
		ts     string
		key    string
		values []string
		want   bool
	}{
		{"nonmatching trace_state key", "non_matching=value", "example", []string{"value"}, wantNotSampled},
		{"nonmatching trace_state value", "example=non_matching", "example", []string{"value"}, wantNotSampled},
		{"matching trace_state", "example=value", "example", []string{"value"}, wantSampled},
		{"nonmatching trace_state on empty filter list", "example=value", "example", []string{}, wantNotSampled},
		{"nonmatching trace_state on multiple key-values", "example=non_matching,non_matching=value", "example", []string{"value"}, wantNotSampled},
		{"matching trace_state on multiple key-values", "example=value,non_matching=value", "example", []string{"value"}, wantSampled},
		{"nonmatching trace_state on multiple filter list", "example=non_matching", "example", []string{"value1", "value2"}, wantNotSampled},
		{"matching trace_state on multiple filter list", "example=value1", "example", []string{"value1", "value2"}, wantSampled},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			p := traceStatePolicy("p", tt.key, tt.values...)
			if len(tt.values) == 0 {
				require.EqualError(t, p.Validate(), "trace_state: values: must not be empty")
				assertVerdict(t, tt.want, decideUnvalidated(t, p, newTraceState(tt.ts)))
				return
			}
			assertVerdict(t, tt.want, decideOne(t, p, newTraceState(tt.ts)))
		})
	}
}

func TestTraceFlags(t *testing.T) {
	// contrib: TestTraceFlags.
	tests := []struct {
		desc string
		td   ptrace.Traces
		want bool
	}{
		{"sampled trace_flags", newTraceFlags(true), wantSampled},
		{"non-sampled trace_flags", newTraceFlags(false), wantNotSampled},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			assertVerdict(t, tt.want, decideOne(t, sampling.NewPolicyConfig("p", "trace_flags", nil), tt.td))
		})
	}
	t.Run("only the low bit counts", func(t *testing.T) {
		td, span := newContribSpan(nil)
		span.SetFlags(0x300) // W3C random flag and the OTLP has-is-remote bits
		assertVerdict(t, wantNotSampled, decideOne(t, sampling.NewPolicyConfig("p", "trace_flags", nil), td))
		span.SetFlags(0x301)
		assertVerdict(t, wantSampled, decideOne(t, sampling.NewPolicyConfig("p", "trace_flags", nil), td))
	})
	t.Run("any span", func(t *testing.T) {
		td := newTraceWithMultipleSpans([]int32{2, 3})
		td.ResourceSpans().At(1).ScopeSpans().At(0).Spans().At(2).SetFlags(1)
		assertVerdict(t, wantSampled, decideOne(t, sampling.NewPolicyConfig("p", "trace_flags", &sampling.TraceFlagsConfig{}), td))
	})
}

func TestSpanCount(t *testing.T) {
	// contrib: TestEvaluate_OnlyMinSpans, TestEvaluate_OnlyMaxSpans and
	// TestEvaluate_RangeOfSpans.
	type tcase struct {
		desc  string
		spans []int32
		want  bool
	}
	tables := []struct {
		name     string
		min, max int64
		cases    []tcase
	}{
		{"OnlyMinSpans", 3, 0, []tcase{
			{"Spans less than the minSpans, in one single batch", []int32{1}, wantNotSampled},
			{"Same number of spans as the minSpans, in one single batch", []int32{3}, wantSampled},
			{"Spans greater than the minSpans, in one single batch", []int32{4}, wantSampled},
			{"Spans less than the minSpans, across multiple batches", []int32{1, 1}, wantNotSampled},
			{"Same number of spans as the minSpans, across multiple batches", []int32{1, 2, 1}, wantSampled},
			{"Spans greater than the minSpans, across multiple batches", []int32{1, 2, 3}, wantSampled},
		}},
		{"OnlyMaxSpans", 0, 20, []tcase{
			{"Spans greater than the maxSpans, in one single batch", []int32{21}, wantNotSampled},
			{"Same number of spans as the maxSpans, in one single batch", []int32{20}, wantSampled},
			{"Spans less than the maxSpans, in one single batch", []int32{19}, wantSampled},
			{"Spans gather than the maxSpans, across multiple batches", []int32{1, 2, 3, 4, 5, 6}, wantNotSampled},
			{"Same number of spans as the maxSpans, across multiple batches", []int32{1, 2, 3, 4, 5, 5}, wantSampled},
			{"Spans less than the maxSpans, across multiple batches", []int32{1, 2, 3, 4, 5}, wantSampled},
		}},
		{"RangeOfSpans", 3, 20, []tcase{
			{"Spans less than the minSpans, in one single batch", []int32{1}, wantNotSampled},
			{"Spans greater than the maxSpans, in one single batch", []int32{21}, wantNotSampled},
			{"Spans range of minSpan and maxSpans, in one single batch", []int32{4}, wantSampled},
			{"Spans less than the minSpans, across multiple batches", []int32{1, 1}, wantNotSampled},
			{"Spans greater than the maxSpans, across multiple batches", []int32{1, 2, 3, 4, 5, 6}, wantNotSampled},
			{"Spans range of minSpan and maxSpans, across multiple batches", []int32{1, 2, 1}, wantSampled},
			{"Same number of spans as the minSpans, in one single batch", []int32{3}, wantSampled},
			{"Same number of spans as the maxSpans, in one single batch", []int32{20}, wantSampled},
			{"Same number of spans as the minSpans, across multiple batches", []int32{1, 2}, wantSampled},
			{"Same number of spans as the maxSpans, across multiple batches", []int32{1, 2, 3, 4, 5, 5}, wantSampled},
		}},
	}
	for _, tb := range tables {
		for _, c := range tb.cases {
			t.Run(tb.name+"/"+c.desc, func(t *testing.T) {
				assertVerdict(t, c.want, decideOne(t, spanCountPolicy("p", tb.min, tb.max), newTraceWithMultipleSpans(c.spans)))
			})
		}
	}
	t.Run("min 0 max 0 keeps every trace, as contrib", func(t *testing.T) {
		p := spanCountPolicy("p", 0, 0)
		require.EqualError(t, p.Validate(), "span_count: min_spans: set min_spans or max_spans")
		assertVerdict(t, wantSampled, decideUnvalidated(t, p, newTraceWithMultipleSpans([]int32{1})))
	})
}

// TestInvertIsNotAVeto pins contrib v0.161.0's invert semantics inside the
// engine: an invert_match filter answers plain Sampled or NotSampled, not
// the deprecated InvertSampled/InvertNotSampled, so a matched inverted
// filter does not veto another policy's Sampled, and an unmatched one is a
// Sampled that another policy's NotSampled does not cancel.
func TestInvertIsNotAVeto(t *testing.T) {
	healthy := newTraceStringAttrs(nil, "http.route", "/health")
	other := newTraceStringAttrs(nil, "http.route", "/cart")
	notHealth := stringPolicy("not-health", "http.route", []string{"/health"}, false, true)
	always := sampling.NewPolicyConfig("always", "always_sample", nil)
	never := spanCountPolicy("big", 100, 0)

	e := newEngine(t, notHealth, always)
	d := e.Decide(samplingtest.Summarize(t, e, healthy, 0))
	assert.True(t, d.Keep(), "an old-style InvertNotSampled would have dropped it")
	assert.Equal(t, "always", d.Policy)

	e = newEngine(t, never, notHealth)
	d = e.Decide(samplingtest.Summarize(t, e, other, 0))
	assert.True(t, d.Keep(), "an old-style InvertSampled would have lost to NotSampled")
	assert.Equal(t, "not-health", d.Policy)
	d = e.Decide(samplingtest.Summarize(t, e, healthy, 0))
	assert.False(t, d.Keep())
}

func TestSpanPredicateLimit(t *testing.T) {
	// 64 span-matching policies fit; the 64th uses bit 63.
	var cfgs []sampling.PolicyConfig
	for i := range sampling.MaxSpanPredicates - 1 {
		switch i % 4 {
		case 0:
			cfgs = append(cfgs, stringPolicy(fmt.Sprintf("p%d", i), fmt.Sprintf("k%d", i), []string{"v"}, false, false))
		case 1:
			cfgs = append(cfgs, numericPolicy(fmt.Sprintf("p%d", i), fmt.Sprintf("k%d", i), 1, 2, false))
		case 2:
			cfgs = append(cfgs, boolPolicy(fmt.Sprintf("p%d", i), fmt.Sprintf("k%d", i), true, false))
		case 3:
			cfgs = append(cfgs, traceStatePolicy(fmt.Sprintf("p%d", i), fmt.Sprintf("k%d", i), "v"))
		}
	}
	cfgs = append(cfgs, stringPolicy("last", "last", []string{"yes"}, false, false))
	e := newEngine(t, cfgs...)
	sum := samplingtest.Summarize(t, e, newTraceStringAttrs(nil, "last", "yes"), 0)
	assert.Equal(t, uint64(1)<<63, sum.Matched)
	assert.Equal(t, "last", e.Decide(sum).Policy)

	// One more fails at construction, naming the policy.
	for _, extra := range []sampling.PolicyConfig{
		sampling.NewPolicyConfig("one-too-many", "trace_flags", nil),
		numericPolicy("one-too-many", "x", 1, 0, false),
		stringPolicy("one-too-many", "x", []string{"v"}, true, false),
		boolPolicy("one-too-many", "x", true, true),
		traceStatePolicy("one-too-many", "x", "v"),
	} {
		all := append(append([]sampling.PolicyConfig{}, cfgs...), extra)
		require.NoError(t, extra.Validate())
		_, err := sampling.NewEngine(all)
		require.EqualError(t, err, "policies::64 (one-too-many): too many span-matching policies (at most 64)", extra.Type)
	}
	// Policies without a predicate do not count.
	all := append(append([]sampling.PolicyConfig{}, cfgs...),
		sampling.NewPolicyConfig("always", "always_sample", nil), spanCountPolicy("count", 1, 0))
	_, err := sampling.NewEngine(all)
	require.NoError(t, err)
}

func TestFilterPredicatesDoNotAllocate(t *testing.T) {
	td, span := newContribSpan(map[string]any{"service.name": "cart", "example": "nope"})
	require.NoError(t, span.Attributes().FromRaw(map[string]any{
		"str": "grpc.health.v1.HealthCheck", "num": 503, "flag": true, "other": "x",
	}))
	span.TraceState().FromRaw("a=1,example=value,b=2")
	span.SetFlags(1)
	policies := []sampling.PolicyConfig{
		numericPolicy("num", "num", 500, 599, false),
		stringPolicy("str", "str", []string{"a", "b", "grpc.health.v1.HealthCheck"}, false, false),
		stringPolicy("re", "str", []string{"^http", "v[0-9]+.HealthCheck$"}, true, true),
		boolPolicy("flag", "flag", true, false),
		traceStatePolicy("ts", "example", "value"),
		sampling.NewPolicyConfig("flags", "trace_flags", nil),
		spanCountPolicy("count", 1, 10),
		sampling.NewPolicyConfig("always", "always_sample", nil),
	}
	want := uint64(0b111111)
	if raceEnabled {
		// regexp pools its matchers, and -race drops pooled items at random.
		policies = slices.Delete(policies, 2, 3)
		want = 0b11111
	}
	e := newEngine(t, policies...)
	v := viewOf(t, td)
	var sum sampling.Trace
	allocs := testing.AllocsPerRun(200, func() {
		sum.Matched = 0
		e.ObserveSpan(&sum, v)
	})
	assert.Zero(t, allocs)
	assert.Equal(t, want, sum.Matched, "every predicate matched")
	sum.SpanCount = 1
	assert.Zero(t, testing.AllocsPerRun(200, func() { _ = e.Decide(&sum) }))
}

func TestFilterPredicatesConcurrent(t *testing.T) {
	// Predicates run on several shards at once: -race checks them.
	e := newEngine(t,
		stringPolicy("re", "str", []string{"v[0-9]+.HealthCheck$"}, true, false),
		stringPolicy("exact", "str", []string{"x"}, false, false),
		traceStatePolicy("ts", "example", "value"),
	)
	td, span := newContribSpan(nil)
	span.Attributes().PutStr("str", "grpc.health.v1.HealthCheck")
	span.TraceState().FromRaw("example=value")
	v := viewOf(t, td)
	done := make(chan uint64)
	for range 4 {
		go func() {
			var sum sampling.Trace
			for range 500 {
				sum.Matched = 0
				e.ObserveSpan(&sum, v)
			}
			done <- sum.Matched
		}()
	}
	for range 4 {
		assert.Equal(t, uint64(0b101), <-done)
	}
}

func TestTraceStateLongMember(t *testing.T) {
	// A 256-character value is a valid member; contrib cannot match it
	// ("key=value" over 256 characters) and tailsift refuses the config.
	long := strings.Repeat("v", 256)
	p := traceStatePolicy("p", "k", long)
	require.EqualError(t, p.Validate(), "trace_state: values::0: key=value must be at most 256 characters")
	assertVerdict(t, wantNotSampled, decideUnvalidated(t, p, newTraceState("k="+long)))
	ok := strings.Repeat("v", 254) // len("k")+254 = 255 < 256
	assertVerdict(t, wantSampled, decideOne(t, traceStatePolicy("p", "k", ok), newTraceState("k="+ok)))
}
