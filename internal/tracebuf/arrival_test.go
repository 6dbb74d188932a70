package tracebuf

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/sampling"
)

// arrivalPolicies are an errors rule with keep_on_arrival as set and a drop
// rule for the service "noisy".
func arrivalPolicies(onArrival bool) []sampling.PolicyConfig {
	return []sampling.PolicyConfig{
		sampling.NewPolicyConfig("noisy", "drop", &sampling.DropConfig{SubPolicies: []sampling.PolicyConfig{
			sampling.NewPolicyConfig("svc", "string_attribute", &sampling.StringAttributeConfig{Key: "service.name", Values: []string{"noisy"}}),
		}}),
		sampling.NewPolicyConfig("errors", "status_code", &sampling.StatusCodeConfig{StatusCodes: []string{"ERROR"}, KeepOnArrival: onArrival}),
	}
}

// With status_code's keep_on_arrival, a trace is decided the moment its
// first ERROR span arrives: the spans buffered so far leave at once with
// the rule's threshold, the later ones follow as late spans of a kept trace
// with the same threshold, and the trace is decided once. The policies
// still run (a drop rule still vetoes). Without it the trace waits for
// its root and the quiet rule.
func TestKeepOnArrival(t *testing.T) {
	for _, tc := range []struct {
		name        string
		onArrival   bool
		service     string
		wantFirst   int // spans out after the error span, before quiet
		wantLate    int // spans out after the rest, before quiet
		wantAll     int // spans out in the end
		decisions   []string
		decided     int // spans in the decision
		lateKept    int
		lateDropped int
	}{
		{"on: kept at arrival", true, "svc", 2, 4, 4, []string{ReasonArrival + "/keep"}, 2, 2, 0},
		{"on: a drop rule still vetoes", true, "noisy", 0, 0, 0, []string{ReasonArrival + "/drop"}, 2, 0, 2},
		{"off: kept when quiet", false, "svc", 0, 0, 4, []string{ReasonQuiet + "/keep"}, 4, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			cfg := testBufferConfig()
			cfg.Completion.MaxSpans = 100
			cfg.Policies = arrivalPolicies(tc.onArrival)
			out := &spanLog{}
			obs := &arrivalObserver{}
			b, clk := startBuffer(t, cfg, out.emit, obs)
			step := func(specs ...spanSpec) int {
				require.NoError(t, b.Ingest(ctx, encodeSpans(t, specs...)))
				require.NoError(t, b.Sync(ctx))
				clk.Advance(cfg.Output.BatchTimeout)
				require.NoError(t, b.Sync(ctx))
				return len(out.snapshot())
			}
			s := tc.service
			assert.Zero(t, step(spanSpec{trace: 1, span: 2, parent: 1, service: s}))
			assert.Equal(t, tc.wantFirst, step(spanSpec{trace: 1, span: 3, parent: 1, service: s, status: ptrace.StatusCodeError}))
			if tc.onArrival {
				assert.Zero(t, obs.traces(), "the trace left the buffer")
			}
			assert.Equal(t, tc.wantLate, step(spanSpec{trace: 1, span: 4, parent: 1, service: s}, spanSpec{trace: 1, span: 1, service: s}))
			clk.Advance(cfg.Completion.Quiet)
			require.NoError(t, b.Sync(ctx))
			clk.Advance(cfg.Output.BatchTimeout)
			require.NoError(t, b.Sync(ctx))
			spans := out.snapshot()
			assert.Len(t, spans, tc.wantAll)
			for _, sp := range spans {
				assert.Equal(t, "ot=th:0", sp.tracestate, "span %x", sp.span)
			}
			obs.mu.Lock()
			defer obs.mu.Unlock()
			assert.Equal(t, tc.decisions, obs.decisions)
			assert.Equal(t, tc.decided, obs.decided)
			assert.Equal(t, tc.lateKept, obs.lateKept)
			assert.Equal(t, tc.lateDropped, obs.lateDropped)
		})
	}
}

// arrivalObserver is a decisionLog that also counts decided spans, late
// kept spans and buffered traces.
type arrivalObserver struct {
	decisionLog
	decided  int
	lateKept int
	buffered int64
}

func (o *arrivalObserver) Decided(policy string, keep bool, spans int, reason string, latency, lag time.Duration) {
	o.decisionLog.Decided(policy, keep, spans, reason, latency, lag)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.decided += spans
}

func (o *arrivalObserver) Late(kept bool, spans int) {
	o.decisionLog.Late(kept, spans)
	o.mu.Lock()
	defer o.mu.Unlock()
	if kept {
		o.lateKept += spans
	}
}

func (o *arrivalObserver) Buffered(_, traces int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buffered += traces
}

func (o *arrivalObserver) traces() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buffered
}
