package tracebuf

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/sampling"
)

// delayLog records, on the buffer's fake clock, when each ERROR span is
// handed on.
type delayLog struct {
	mu  sync.Mutex
	now func() time.Time
	out map[pcommon.SpanID]time.Time
}

func (l *delayLog) emit(_ context.Context, td ptrace.Traces) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				if sp.Status().Code() == ptrace.StatusCodeError {
					l.out[sp.SpanID()] = l.now()
				}
			}
		}
	}
	return nil
}

// peakObserver tracks the peak of the buffered bytes.
type peakObserver struct {
	NopObserver
	mu         sync.Mutex
	bytes, max int64
}

func (o *peakObserver) Buffered(bytes, _ int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.bytes += bytes
	o.max = max(o.max, o.bytes)
}

// delayTraces and delaySpans shape errorExportDelays' workload: a trace
// starts every 20 ms, and its spans arrive 80 to 120 ms apart, children
// first, its root last; one child has ERROR status.
const (
	delayTraces = 200
	delaySpans  = 6
	delayStep   = 10 * time.Millisecond
)

// errorExportDelays runs the default configuration (quiet 2 s) on a fake
// clock, in steps of delayStep, and returns, sorted, each ERROR span's time
// from its arrival to its export, with keep_on_arrival as set, and the peak
// of the buffered bytes (every trace of the workload has an ERROR span, so
// keep_on_arrival frees each after its first error). Each step
// ends with Sync, which hands the output batch on: the figures leave out
// output.batch_timeout (50 ms by default), which both modes would add.
func errorExportDelays(tb testing.TB, onArrival bool) (delays []time.Duration, peak int64) {
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.Shards = 1
	cfg.Policies[0] = sampling.NewPolicyConfig("errors", "status_code",
		&sampling.StatusCodeConfig{StatusCodes: []string{"ERROR"}, KeepOnArrival: onArrival})
	out := &delayLog{out: map[pcommon.SpanID]time.Time{}}
	obs := &peakObserver{}
	b, clk := startBuffer(tb, cfg, out.emit, obs)
	out.now = clk.Now

	// Each span's arrival, in steps of delayStep.
	type arrival struct {
		at   int
		spec spanSpec
	}
	var plan []arrival
	arrived := map[pcommon.SpanID]time.Time{}
	for k := range uint64(delayTraces) {
		at := int(k) * 2
		errAt := 1 + k%(delaySpans-1) // a child, not the root
		for j := uint64(1); j <= delaySpans; j++ {
			at += 8 + int((k*7+j*13)%5) // 80 to 120 ms later
			sp := spanSpec{trace: 1 + k, span: k<<8 | j, parent: k<<8 | delaySpans, service: "svc"}
			if j == delaySpans {
				sp.parent = 0
			}
			if j == errAt {
				sp.status = ptrace.StatusCodeError
			}
			plan = append(plan, arrival{at, sp})
		}
	}
	slices.SortStableFunc(plan, func(a, b arrival) int { return a.at - b.at })
	end := plan[len(plan)-1].at + int((cfg.Completion.Quiet+time.Second)/delayStep)
	for step, next := 0, 0; step <= end; step++ {
		var specs []spanSpec
		for ; next < len(plan) && plan[next].at == step; next++ {
			sp := plan[next].spec
			specs = append(specs, sp)
			if sp.status == ptrace.StatusCodeError {
				arrived[spanID(sp.span)] = clk.Now()
			}
		}
		if len(specs) > 0 {
			require.NoError(tb, b.Ingest(ctx, encodeSpans(tb, specs...)))
		}
		require.NoError(tb, b.Sync(ctx))
		clk.Advance(delayStep)
		require.NoError(tb, b.Sync(ctx))
	}
	out.mu.Lock()
	defer out.mu.Unlock()
	require.Len(tb, out.out, len(arrived), "every ERROR span was handed on")
	delays = make([]time.Duration, 0, len(arrived))
	for id, at := range arrived {
		delays = append(delays, out.out[id].Sub(at))
	}
	slices.Sort(delays)
	obs.mu.Lock()
	defer obs.mu.Unlock()
	return delays, obs.max
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	return sorted[min(int(q*float64(len(sorted))), len(sorted)-1)]
}

// With keep_on_arrival, an ERROR span leaves as soon as it is taken in
// (within a step); without it, after its trace's root and the quiet rule
// (2 s).
func TestErrorExportDelay(t *testing.T) {
	offDelays, offPeak := errorExportDelays(t, false)
	onDelays, onPeak := errorExportDelays(t, true)
	off, on := quantile(offDelays, 0.99), quantile(onDelays, 0.99)
	t.Logf("p99 from the ERROR span's arrival to its export: %v without keep_on_arrival, %v with; peak buffered bytes %d, %d",
		off, on, offPeak, onPeak)
	assert.LessOrEqual(t, on, delayStep, "at once")
	assert.GreaterOrEqual(t, off, 2*time.Second, "after the quiet rule")
	assert.Less(t, onPeak, offPeak/4, "error traces leave the buffer")
}

// BenchmarkErrorExportDelay reports, on the fake clock, the p50 and p99
// time from an ERROR span's arrival to its export with the default
// configuration, with and without keep_on_arrival, and the peak buffered
// bytes (see errorExportDelays).
//
//	go test -run '^$' -bench ErrorExportDelay -benchtime 3x ./internal/tracebuf/
func BenchmarkErrorExportDelay(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("keep_on_arrival=%v", on), func(b *testing.B) {
			b.ReportAllocs()
			var d []time.Duration
			var peak int64
			for b.Loop() {
				d, peak = errorExportDelays(b, on)
			}
			b.ReportMetric(float64(quantile(d, 0.5))/1e6, "p50-ms")
			b.ReportMetric(float64(quantile(d, 0.99))/1e6, "p99-ms")
			b.ReportMetric(float64(peak), "peak-buffered-B")
		})
	}
}
