package tailsiftreceiver

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// TestRulesMode: the receiver (the fast path) takes the same rules block as
// the processor: the first matching rule decides and names the kept trace;
// a trace no rule matches is dropped, and so are its late spans.
func TestRulesMode(t *testing.T) {
	cfg := testConfig()
	require.NoError(t, confmap.NewFromStringMap(map[string]any{
		"rules": []any{
			map[string]any{
				"name": "errors", "conditions": []any{"span.status.code == STATUS_CODE_ERROR"},
				"sampler": map[string]any{"type": "always_sample"},
			},
			map[string]any{
				"name": "frontend-gold", "match": "same_span",
				"conditions": []any{`resource.attributes["service.name"] == "frontend"`, `span.attributes["tier"] == "gold"`},
				"sampler":    map[string]any{"type": "always_sample"},
			},
		},
		"output": map[string]any{"annotate_roots": true},
	}).Unmarshal(cfg))
	cfg.Policies = nil // testConfig's own policies; rules and policies exclude each other
	require.NoError(t, confmap.Validate(cfg))
	g := newRig(t, cfg, nil)
	defer g.close()

	gold := map[string]any{"tier": "gold"}
	// Span 2 is frontend's (tracebuftest.Batch: even span numbers), span 1 backend's.
	g.sendGRPC(batch(errorTrace(1)...))
	g.sendGRPC(batch(spanSpec{Trace: 2, Span: 1}, spanSpec{Trace: 2, Span: 2, Parent: 1, Attrs: gold}))
	g.sendGRPC(batch(spanSpec{Trace: 3, Span: 1, Attrs: gold}, spanSpec{Trace: 3, Span: 2, Parent: 1})) // gold on backend only
	g.advance(2 * time.Second)

	root := func(n uint64) string {
		t.Helper()
		sp, ok := g.spansOf(n)[1]
		require.True(t, ok, "trace %d kept", n)
		v, ok := sp.Attributes().Get("sampling.rule")
		require.True(t, ok)
		return v.Str()
	}
	assert.Equal(t, "errors", root(1))
	assert.Equal(t, "frontend-gold", root(2))
	assert.Empty(t, g.spansOf(3), "same_span: no one span is frontend's and gold")

	g.sendGRPC(batch(spanSpec{Trace: 2, Span: 4, Parent: 1}, spanSpec{Trace: 3, Span: 4, Parent: 1, Status: ptrace.StatusCodeError}))
	g.advance(0)
	assert.Len(t, g.spansOf(2), 3, "a late span follows its kept trace")
	assert.Empty(t, g.spansOf(3), "and a dropped trace's late spans are dropped")
}
