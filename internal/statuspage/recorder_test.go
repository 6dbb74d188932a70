package statuspage_test

import (
	"testing"
	"time"

	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tailsift/tailsift/internal/statuspage"
	"github.com/tailsift/tailsift/internal/tracebuf"
	"github.com/tailsift/tailsift/sampling"
)

var t0 = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

// counting is the observer behind the recorder: it counts what reaches it.
type counting struct {
	tracebuf.NopObserver
	received, decided, late, kept int
	buffered                      int64
}

func (c *counting) Received(n int)                                                  { c.received += n }
func (c *counting) Decided(string, bool, int, string, time.Duration, time.Duration) { c.decided++ }
func (c *counting) Late(_ bool, n int)                                              { c.late += n }
func (c *counting) Buffered(b, _ int64)                                             { c.buffered += b }
func (c *counting) Kept(*sampling.Trace, sampling.Decision)                         { c.kept++ }

// engine is an engine of the policies errors, anomalies (adaptive), the
// extra ones and baseline (probabilistic).
func engine(t *testing.T, budget sampling.BudgetConfig, extra ...sampling.PolicyConfig) *sampling.Engine {
	t.Helper()
	cfgs := append([]sampling.PolicyConfig{
		sampling.NewPolicyConfig("errors", "status_code", &sampling.StatusCodeConfig{StatusCodes: []string{"ERROR"}}),
		sampling.NewPolicyConfig("anomalies", "adaptive", nil),
	}, append(extra,
		sampling.NewPolicyConfig("baseline", "probabilistic", &sampling.ProbabilisticConfig{SamplingPercentage: 10}))...)
	require.NoError(t, sampling.ValidatePolicies(cfgs))
	e, err := sampling.NewEngine(cfgs, sampling.WithBudget(budget))
	require.NoError(t, err)
	return e
}

// decided records one decision as a shard does: Decided at the decision,
// CountDecided at the shard's next report.
func decided(rec *statuspage.Recorder, policy string, keep bool, spans int, reason string, latency, lag time.Duration) {
	rec.Decided(policy, keep, spans, reason, latency, lag)
	rec.CountDecided(policy, keep, 1, int64(spans))
}

func kept(policy string) sampling.Decision {
	return sampling.Decision{Verdict: sampling.Sampled, Threshold: otelsampling.AlwaysSampleThreshold, Policy: policy}
}

func TestRecorderCountsAndPassesOn(t *testing.T) {
	next := &counting{}
	rec := statuspage.NewRecorder("tailsift", "processor", 1000, next)
	rec.Bind(engine(t, sampling.BudgetConfig{}))
	var g statuspage.Registry
	remove := g.Add(rec)

	rec.Received(10)
	rec.Refused(tracebuf.RefusedQueueFull, 3)
	rec.Refused(tracebuf.RefusedInvalid, 1)
	rec.Buffered(250, 2)
	decided(rec, "errors", true, 4, tracebuf.ReasonQuiet, time.Second, 0)
	decided(rec, "", false, 5, tracebuf.ReasonMaxSpans, time.Second, -1)
	decided(rec, "", false, 1, tracebuf.ReasonMemory, time.Second, -1)
	rec.Late(true, 2)
	rec.Late(false, 7)
	rec.Held(100, 1)
	rec.Rescued("errors")
	rec.ExportFailed(6)
	rec.Deduplicated(8)

	s := g.Snapshot(t0)
	require.Len(t, s.Components, 1)
	c := s.Components[0]
	assert.Equal(t, "tailsift", c.ID)
	assert.Equal(t, "processor", c.Kind)
	assert.Equal(t, statuspage.Buffer{Bytes: 250, MaxBytes: 1000, Fill: 0.25, Traces: 2, HeldBytes: 100, HeldTraces: 1}, c.Buffer)
	assert.Equal(t, statuspage.Counters{
		SpansReceived: 10, SpansRefusedQueueFull: 3, SpansRefusedInvalid: 1, TracesDecided: 3,
		SpansKept: 4, SpansDropped: 6, LateSpansKept: 2, LateSpansDropped: 7,
		EarlyDecisions: map[string]int64{"max_spans": 1, "max_trace_bytes": 0, "memory": 1, "shutdown": 0},
		ExportFailures: 6, TracesRescued: 1, SpansDeduplicated: 8,
	}, c.Counters)
	assert.Equal(t, []statuspage.Decisions{
		{Policy: "errors", Decision: "keep", Traces: 1, Spans: 4},
		{Policy: "", Decision: "drop", Traces: 2, Spans: 6},
	}, c.Decisions, "known policies in engine order first, no rate from one sample")
	assert.Nil(t, c.Budget)

	assert.Equal(t, 10, next.received, "every event reaches the self-metrics observer too")
	assert.Equal(t, 3, next.decided)
	assert.Equal(t, 9, next.late)
	assert.Equal(t, int64(250), next.buffered)

	remove()
	remove()
	assert.Empty(t, g.Snapshot(t0).Components, "a removed recorder is no longer shown")
}

func TestRecorderRates(t *testing.T) {
	rec := statuspage.NewRecorder("tailsift", "processor", 1000, nil)
	rec.Bind(engine(t, sampling.BudgetConfig{TracesPerSecond: 100, Classes: []sampling.BudgetClass{
		{Name: "important", Policies: []string{"errors", "anomalies"}},
		{Name: "rest", Policies: []string{"baseline"}},
	}}))
	var g statuspage.Registry
	g.Add(rec)
	decide := func(policy string, keep bool, n int) {
		for range n {
			decided(rec, policy, keep, 3, tracebuf.ReasonQuiet, 0, 0)
		}
	}
	decide("errors", true, 5)
	first := g.Snapshot(t0).Components[0]
	assert.Zero(t, first.RateWindowS, "one sample: no rate yet")

	decide("errors", true, 20)    // 20 traces, 60 spans in 2 s
	decide("baseline", true, 10)  // 10 traces
	decide("baseline", false, 90) // 90 traces
	decide("anomalies", true, 4)  // 4 traces
	c := g.Snapshot(t0.Add(2 * time.Second)).Components[0]
	assert.Equal(t, 2.0, c.RateWindowS)
	perSecond := map[string]float64{}
	for _, d := range c.Decisions {
		perSecond[d.Policy+"/"+d.Decision] = d.TracesPerSecond
	}
	assert.Equal(t, map[string]float64{
		"errors/keep": 10, "anomalies/keep": 2, "baseline/keep": 5, "baseline/drop": 45,
	}, perSecond)
	require.NotNil(t, c.Budget)
	assert.Equal(t, 100.0, c.Budget.Rate)
	assert.Equal(t, "traces", c.Budget.Unit)
	require.Len(t, c.Budget.Classes, 2)
	assert.Equal(t, []string{"errors", "anomalies"}, c.Budget.Classes[0].Policies)
	assert.Equal(t, 12.0, c.Budget.Classes[0].KeptPerSecond, "errors and anomalies kept per second")
	assert.Equal(t, 5.0, c.Budget.Classes[1].KeptPerSecond)

	// Much later, the rate is measured over the last rateWindow (5 s) or
	// a little more, not since the start.
	for i := range 10 {
		decide("errors", true, 10)
		g.Snapshot(t0.Add(time.Duration(3+i) * time.Second))
	}
	decide("errors", true, 10)
	c = g.Snapshot(t0.Add(13 * time.Second)).Components[0]
	assert.Equal(t, 5.0, c.RateWindowS)
	assert.Equal(t, "errors", c.Decisions[0].Policy)
	assert.Equal(t, 10.0, c.Decisions[0].TracesPerSecond, "10 a second lately")
}

func TestRecorderRecentKept(t *testing.T) {
	next := &counting{}
	rec := statuspage.NewRecorder("tailsift", "receiver", 1000, next)
	rec.Bind(engine(t, sampling.BudgetConfig{}, sampling.NewPolicyConfig("slow", "latency", &sampling.LatencyConfig{ThresholdMs: 1000})))
	var g statuspage.Registry
	g.Add(rec)

	trace := func(b byte, status uint8) *sampling.Trace {
		tr := &sampling.Trace{ID: [16]byte{b}, SpanCount: 3, StatusMask: status, Start: 1e9, End: 1e9 + 25e6, Now: t0.UnixNano()}
		return tr
	}
	rec.Kept(trace(1, sampling.StatusErrorBit), kept("errors"))
	rec.Kept(trace(2, sampling.StatusOKBit), kept("baseline"))  // neither error nor anomaly
	rec.Kept(trace(3, sampling.StatusOKBit), kept("anomalies")) // adaptive
	rec.Kept(trace(4, sampling.StatusOKBit), kept("slow"))      // latency
	assert.Equal(t, 4, next.kept, "passed on")

	recent := g.Snapshot(t0).Components[0].Recent
	require.Len(t, recent, 3)
	assert.Equal(t, statuspage.KeptTrace{
		TraceID: "04000000000000000000000000000000", Policy: "slow", Slow: true, Spans: 3,
		DurationMs: 25, Probability: 1, DecidedAt: t0, Link: "/api/v1/traces/04000000000000000000000000000000",
	}, recent[0], "newest first")
	assert.Equal(t, statuspage.KeptTrace{
		TraceID: "03000000000000000000000000000000", Policy: "anomalies", Anomaly: true, Spans: 3,
		DurationMs: 25, Probability: 1, DecidedAt: t0, Link: "/api/v1/traces/03000000000000000000000000000000",
	}, recent[1])
	assert.True(t, recent[2].Error)
	assert.Equal(t, "errors", recent[2].Policy)

	for i := range 40 {
		rec.Kept(trace(byte(10+i), sampling.StatusErrorBit), kept("errors"))
	}
	recent = g.Snapshot(t0).Components[0].Recent
	assert.Len(t, recent, 20, "bounded")
	assert.Equal(t, "31000000000000000000000000000000", recent[0].TraceID, "the 40th, 0x31, is the newest")
}
