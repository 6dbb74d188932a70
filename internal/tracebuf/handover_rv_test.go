package tracebuf

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/cluster"
	"github.com/tailsift/tailsift/sampling"
)

// rvPolicies are policy sets that keep traces on a randomness other than
// the trace ID's, so that their spans carry an explicit rv
// (docs/policies/counts.md): a salt, the reflected randomness of not, and
// the union's derived randomness R*.
func rvPolicies() map[string][]sampling.PolicyConfig {
	p := func(pct float64, salt string) sampling.PolicyConfig {
		return sampling.NewPolicyConfig("p", "probabilistic", &sampling.ProbabilisticConfig{SamplingPercentage: pct, HashSalt: salt})
	}
	not := sampling.NewPolicyConfig("not", "not", &sampling.NotConfig{SubPolicy: p(50, "")})
	return map[string][]sampling.PolicyConfig{
		"salted":  {p(50, "s")},
		"not":     {not},
		"derived": {p(30, ""), not},
	}
}

// firstMarks returns the tracestate each trace's first span (span 1) left
// with, and the spans after it.
func firstMarks(t *testing.T, spans []outSpan) (first map[[16]byte]string, late []outSpan) {
	t.Helper()
	first = map[[16]byte]string{}
	for _, sp := range spans {
		if sp.span == spanID(1) {
			first[sp.trace] = sp.tracestate
			continue
		}
		late = append(late, sp)
	}
	return first, late
}

// handOverWire hands decisions d as the cluster sends them: encoded in a
// control, decoded by the new owner.
func handOverWire(t *testing.T, d cluster.Decisions) cluster.Decisions {
	t.Helper()
	c, _, ok, err := cluster.SplitControl(cluster.AppendControl(nil, &cluster.Control{Forwarded: true, Decisions: d}))
	require.NoError(t, err)
	require.True(t, ok)
	return c.Decisions
}

// TestHandedOverDecisionKeepsRV: a trace kept on a derived randomness
// leaves with rv and th. Its decision handed over to a new owner (a ring
// change, a shutdown) carried th only, so the late spans there left with
// th alone: a threshold applied to a randomness the span does not state
// (its adjusted count was wrong). The same holds for a rescued trace,
// whose spans carry the rescue supplement instead of th, and whose late
// spans at the new owner carried th. Both the late spans that follow the
// decision and those that reached the new owner before it
// (keepHandedOver) must leave as the trace's first spans did.
func TestHandedOverDecisionKeepsRV(t *testing.T) {
	ctx := context.Background()
	for name, policies := range rvPolicies() {
		t.Run(name, func(t *testing.T) {
			cfg := testBufferConfig() // max_spans 1: each trace is decided at once
			cfg.Policies = policies
			old := &spanLog{}
			a, clkA := startBuffer(t, cfg, old.emit, nil)
			const n = 200
			var specs []spanSpec
			for k := range uint64(n) {
				specs = append(specs, spanSpec{trace: 100 + k, span: 1})
			}
			require.NoError(t, a.Ingest(ctx, encodeSpans(t, specs...)))
			require.NoError(t, a.Sync(ctx))
			clkA.Advance(cfg.Output.BatchTimeout)
			require.NoError(t, a.Sync(ctx))
			first, _ := firstMarks(t, old.snapshot())
			require.Greater(t, len(first), n/10, "the policies keep some traces")
			for id, ts := range first {
				require.Contains(t, ts, "rv:", "trace %x kept on a derived randomness", id)
			}

			var d cluster.Decisions
			for sh := range a.Shards() {
				part, err := a.ForeignDecisions(ctx, sh, func(uint64) bool { return false })
				require.NoError(t, err)
				d.Kept = append(d.Kept, part.Kept...)
			}
			require.Len(t, d.Kept, len(first))
			checkNewOwner(t, cfg, handOverWire(t, d), first)
		})
	}
	t.Run("rescued", func(t *testing.T) {
		cfg := testBufferConfig() // errors only
		cfg.Completion.MaxSpans = 100
		cfg.Rescue = RescueConfig{Window: time.Minute, MaxBytes: 1 << 20}
		old := &spanLog{}
		a, clkA := startBuffer(t, cfg, old.emit, nil)
		require.NoError(t, a.Ingest(ctx, encodeSpans(t, spanSpec{trace: 7, span: 1, start: 10, end: 20})))
		require.NoError(t, a.Sync(ctx))
		clkA.Advance(cfg.Completion.MaxWait) // dropped, held
		require.NoError(t, a.Sync(ctx))
		// A late ERROR span rescues it: the trace leaves as a supplement.
		require.NoError(t, a.Ingest(ctx, encodeSpans(t, spanSpec{trace: 7, span: 3, parent: 1, status: ptrace.StatusCodeError, start: 12, end: 18})))
		require.NoError(t, a.Sync(ctx))
		clkA.Advance(cfg.Output.BatchTimeout)
		require.NoError(t, a.Sync(ctx))
		first, _ := firstMarks(t, old.snapshot())
		require.Equal(t, map[[16]byte]string{tid(7): "tailsift=rescue"}, first)
		d, err := a.ForeignDecisions(ctx, 0, func(uint64) bool { return false })
		require.NoError(t, err)
		require.Len(t, d.Kept, 1)
		checkNewOwner(t, cfg, handOverWire(t, d), first)
	})
}

// checkNewOwner takes decisions d in at a new owner whose policies keep
// nothing by themselves (an errors policy, and OK spans): half of the
// kept traces' late spans arrive before the decisions, half after, and
// each must leave marked as the trace's first span was (first), with its
// own tracestate's other entries.
func checkNewOwner(t *testing.T, cfg Config, d cluster.Decisions, first map[[16]byte]string) {
	t.Helper()
	ctx := context.Background()
	cfg.Completion.MaxSpans = 100 // a late span before its decision waits
	cfg.Policies = testBufferConfig().Policies
	cfg.Rescue = RescueConfig{}
	got := &spanLog{}
	b, clk := startBuffer(t, cfg, got.emit, nil)
	var before, after []spanSpec
	i := 0
	for _, k := range d.Kept {
		n := idNumber(k.ID)
		require.Equal(t, tid(n), k.ID, "a test trace")
		sp := spanSpec{trace: n, span: 2, parent: 1, tracestate: "vendor=x"}
		if i%2 == 0 {
			before = append(before, sp)
		} else {
			after = append(after, sp)
		}
		i++
	}
	if len(before) > 0 {
		require.NoError(t, b.Ingest(ctx, encodeSpans(t, before...)))
		require.NoError(t, b.Sync(ctx))
	}
	require.NoError(t, b.IngestDecisions(ctx, &d))
	if len(after) > 0 {
		require.NoError(t, b.Ingest(ctx, encodeSpans(t, after...)))
		require.NoError(t, b.Sync(ctx))
	}
	clk.Advance(time.Minute)
	require.NoError(t, b.Sync(ctx))
	_, late := firstMarks(t, got.snapshot())
	require.Len(t, late, len(d.Kept), "every late span of a kept trace leaves")
	wrong, example := 0, ""
	for _, sp := range late {
		if want := first[sp.trace] + ",vendor=x"; sp.tracestate != want {
			if wrong == 0 {
				example = fmt.Sprintf("trace %x: %q, want %q", sp.trace, sp.tracestate, want)
			}
			wrong++
		}
	}
	assert.Zero(t, wrong, "late spans at the new owner marked unlike their trace's first spans, of %d; first: %s", len(late), example)
}
