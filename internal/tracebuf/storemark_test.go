package tracebuf

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/clock/clocktest"
	"github.com/tailsift/tailsift/internal/store"
	"github.com/tailsift/tailsift/sampling"
)

// TestRestartKeepsRV: a trace kept on a derived randomness (a salt, not's
// reflection, the union's R*) leaves with rv and th. The store recorded
// its decision with th only, so after a restart its late spans, and the
// spans of a kept trace not yet delivered that the restart sends again,
// left with th alone: a threshold applied to a randomness the spans do
// not state. They must leave as the trace's first spans did.
func TestRestartKeepsRV(t *testing.T) {
	ctx := context.Background()
	for name, policies := range rvPolicies() {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			edit := func(c *Config) {
				c.Policies = policies
				c.Completion.MaxSpans = 1 // each trace is decided at once
			}
			// The first run delivers the even traces; the next consumer
			// refuses the odd ones (permanently: not retried), whose
			// decisions are recorded without a delivery, so that the
			// restart sends them again.
			old := &spanLog{}
			var refuse atomic.Bool
			emit := func(ctx context.Context, td ptrace.Traces) error {
				if refuse.Load() {
					return consumererror.NewPermanent(errors.New("refused"))
				}
				return old.emit(ctx, td)
			}
			clk := clocktest.NewFake(time.Unix(100, 0))
			a := storeBufferWith(t, openTestStore(t, dir), emit, clk, edit)
			const n = 200
			var even, odd []spanSpec
			for k := range uint64(n) {
				if k%2 == 0 {
					even = append(even, spanSpec{trace: 100 + k, span: 1})
				} else {
					odd = append(odd, spanSpec{trace: 100 + k, span: 1})
				}
			}
			for i, specs := range [][]spanSpec{even, odd} {
				refuse.Store(i == 1)
				require.NoError(t, a.Ingest(ctx, encodeSpans(t, specs...)))
				require.NoError(t, a.Sync(ctx))
				clk.Advance(time.Second) // the output batch
				require.NoError(t, a.Sync(ctx))
			}
			require.NoError(t, a.StoreSync(ctx))
			image := crashCopy(t, dir)
			// What the odd traces' spans would have left with: their
			// decision is the same as for the even ones, by policy.
			probe := &spanLog{}
			p, clkP := startBuffer(t, func() Config { c := testBufferConfig(); edit(&c); return c }(), probe.emit, nil)
			require.NoError(t, p.Ingest(ctx, encodeSpans(t, odd...)))
			require.NoError(t, p.Sync(ctx))
			clkP.Advance(time.Second)
			require.NoError(t, p.Sync(ctx))
			first, _ := firstMarks(t, old.snapshot())
			undelivered, _ := firstMarks(t, probe.snapshot())
			require.Greater(t, len(first), n/20, "the policies keep some even traces")
			require.Greater(t, len(undelivered), n/20, "the policies keep some odd traces")
			for id, ts := range undelivered {
				first[id] = ts
			}
			for id, ts := range first {
				require.Contains(t, ts, "rv:", "trace %x kept on a derived randomness", id)
			}

			got := &spanLog{}
			clk2 := clocktest.NewFake(time.Unix(200, 0))
			b := storeBufferWith(t, openTestStore(t, image), got.emit, clk2, func(c *Config) {
				edit(c)
				c.Completion.MaxSpans = 100
			})
			replayed, err := b.Replay(ctx)
			require.NoError(t, err)
			require.Equal(t, len(undelivered), replayed, "the kept traces not delivered are sent again")
			var late []spanSpec
			for id := range first {
				late = append(late, spanSpec{trace: idNumber(id), span: 2, parent: 1, tracestate: "vendor=x"})
			}
			require.NoError(t, b.Ingest(ctx, encodeSpans(t, late...)))
			require.NoError(t, b.Sync(ctx))
			clk2.Advance(time.Minute)
			require.NoError(t, b.Sync(ctx))

			wrong, example, seen := 0, "", 0
			for _, sp := range got.snapshot() {
				want := first[sp.trace]
				if sp.span != spanID(1) {
					want += ",vendor=x"
				}
				seen++
				if sp.tracestate != want {
					if wrong == 0 {
						example = fmt.Sprintf("trace %x span %s: %q, want %q", sp.trace, sp.span, sp.tracestate, want)
					}
					wrong++
				}
			}
			require.Equal(t, len(first)+len(undelivered), seen, "every late span and every replayed span leaves")
			assert.Zero(t, wrong, "spans after the restart marked unlike their trace's first spans, of %d; first: %s", seen, example)
		})
	}
}

// idNumber is the number tid made id from.
func idNumber(id [16]byte) uint64 {
	var n uint64
	for _, b := range id[8:] {
		n = n<<8 | uint64(b)
	}
	return n
}

// TestStoredDecisionRestoresMark: the store's record of a kept decision
// gives back the mark its spans were sent with: th, th and rv, or a
// supplement (a rescued trace another gateway handed over is recorded as
// a keep by a late span, whatever decided it here).
func TestStoredDecisionRestoresMark(t *testing.T) {
	th, err := otelsampling.ProbabilityToThreshold(0.25)
	require.NoError(t, err)
	rnd, err := otelsampling.UnsignedToRandomness(0xabcdef)
	require.NoError(t, err)
	kept := sampling.Decision{Verdict: sampling.Sampled, Threshold: th, Policy: "p"}
	for name, mark := range map[string]keptMark{
		"th":      newKeptMark(th, otelsampling.Randomness{}, false),
		"th, rv":  newKeptMark(th, rnd, true),
		"rescued": supplementMark(th, sampling.SupplementRescue),
		"retro":   supplementMark(th, sampling.SupplementRetro),
	} {
		t.Run(name, func(t *testing.T) {
			d := storedDecision(kept, mark.withRule(3), ReasonHandover)
			assert.Equal(t, mark, restoredMark(d))
			assert.Equal(t, mark.marker().Mark([]byte("vendor=x")), restoredMark(d).marker().Mark([]byte("vendor=x")))
		})
	}
	dropped := storedDecision(sampling.Decision{Policy: "p"}, keptMark{}, ReasonQuiet)
	assert.Equal(t, store.Decision{Policy: "p", Reason: ReasonQuiet}, dropped)
}
