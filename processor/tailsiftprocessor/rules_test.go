package tailsiftprocessor

import (
	"testing"
	"time"

	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.yaml.in/yaml/v3"
)

// rulesConfig loads a rule-mode block as the collector would, over the
// default config (whose default policies the rules replace).
func rulesConfig(t *testing.T, block string) *Config {
	t.Helper()
	var raw map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(block), &raw))
	cfg := createDefaultConfig().(*Config)
	require.NoError(t, confmap.NewFromStringMap(raw).Unmarshal(cfg))
	require.NoError(t, confmap.Validate(cfg))
	cfg.Shards = 2
	return cfg
}

// TestRulesMode: through the processor, the first matching rule decides
// and names the kept trace (sampling.rule on every span, late spans
// included); a trace no rule matches is dropped; late spans follow their
// trace's decision, with its threshold.
func TestRulesMode(t *testing.T) {
	cfg := rulesConfig(t, `
output: {annotate_spans: true}
rules:
  - name: errors
    conditions: ['span.status.code == STATUS_CODE_ERROR']
    sampler: {type: always_sample}
  - name: gold
    conditions: ['span.attributes["tier"] == "gold"', 'resource.attributes["service.name"] == "backend"']
    sampler: {type: probabilistic, probabilistic: {sampling_percentage: 50}}
`)
	h := newHarness(t, cfg, nil)
	half, err := otelsampling.ProbabilityToThreshold(0.5)
	require.NoError(t, err)

	// Gold traces (tier on a backend span: span numbers 1, 3 are
	// backend's) the 50 % sampler keeps and drops.
	var goldKept, goldDropped uint64
	for n := uint64(100); goldKept == 0 || goldDropped == 0; n++ {
		if half.ShouldSample(otelsampling.TraceIDToRandomness(traceID(n))) {
			goldKept = n
		} else {
			goldDropped = n
		}
	}
	gold := map[string]any{"tier": "gold"}
	const plain = 7
	h.send(errorTrace(1)...)
	h.send(spanSpec{Trace: goldKept, Span: 1, Attrs: gold}, spanSpec{Trace: goldDropped, Span: 1, Attrs: gold})
	h.send(spanSpec{Trace: plain, Span: 1})
	h.advance(2 * time.Second)

	rule := func(sp ptrace.Span) string {
		v, ok := sp.Attributes().Get("sampling.rule")
		require.True(t, ok, "sampling.rule on every kept span")
		return v.Str()
	}
	require.Len(t, h.spansOf(1), 3)
	for _, sp := range h.spansOf(1) {
		assert.Equal(t, "errors", rule(sp))
	}
	require.Len(t, h.spansOf(goldKept), 1)
	assert.Equal(t, "gold", rule(h.spansOf(goldKept)[1]))
	assert.Equal(t, "ot=th:"+half.TValue(), h.spansOf(goldKept)[1].TraceState().AsRaw())
	assert.Empty(t, h.spansOf(goldDropped), "the gold rule's sampler dropped it")
	assert.Empty(t, h.spansOf(plain), "no rule matches: dropped")

	// Late spans, an error among them, follow the decisions.
	h.send(spanSpec{Trace: goldKept, Span: 2, Parent: 1},
		spanSpec{Trace: goldDropped, Span: 2, Parent: 1},
		spanSpec{Trace: plain, Span: 2, Parent: 1, Status: ptrace.StatusCodeError})
	h.advance(0)
	late := h.spansOf(goldKept)
	require.Len(t, late, 2)
	assert.Equal(t, "gold", rule(late[2]))
	assert.Equal(t, "ot=th:"+half.TValue(), late[2].TraceState().AsRaw(), "a late span carries its trace's threshold")
	assert.Empty(t, h.spansOf(goldDropped))
	assert.Empty(t, h.spansOf(plain), "a late error does not undo a decision (rescue is off)")
}

// TestRulesModeBudget: a budget's classes name rules in rule mode.
func TestRulesModeBudget(t *testing.T) {
	cfg := rulesConfig(t, `
rules:
  - name: errors
    conditions: ['span.status.code == STATUS_CODE_ERROR']
    sampler: {type: always_sample}
  - name: rest
    sampler: {type: probabilistic, probabilistic: {sampling_percentage: 10}}
budget:
  traces_per_second: 100
  classes:
    - {name: errors, policies: [errors], never_drop: true}
    - {name: rest, policies: [rest]}
`)
	h := newHarness(t, cfg, nil)
	var names []string
	for _, p := range h.p.buf.Engine().Policies() {
		names = append(names, p.Name)
	}
	assert.Equal(t, []string{"errors", "rest"}, names, "rules replace the default policies")
	assert.Len(t, h.p.buf.Engine().ClassProbabilities(nil), 2)
	h.send(errorTrace(1)...)
	h.advance(2 * time.Second)
	assert.Len(t, h.spansOf(1), 3)
}
