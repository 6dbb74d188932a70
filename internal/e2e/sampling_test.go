package e2e

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// newRand returns a generator seeded from the clock, logging the seed so a
// failing run can be replayed.
func newRand(t testing.TB) *rand.Rand {
	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", seed)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// TestSampling sends a mix of error, slow and fast traces, each spread over
// several interleaved export requests, and checks what the collector keeps:
// every error and slow trace complete, the configured fraction of fast
// traces, and the OpenTelemetry threshold on every kept span.
func TestSampling(t *testing.T) {
	t.Parallel()
	const (
		nFast, nError, nSlow = 2000, 60, 60
		groupSize, workers   = 16, 4
	)
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			t.Parallel()
			rng := newRand(t)
			snk := newSink(t)
			cfg := fastConfig(snk.addr)
			col := startCollector(t, cfg)
			exp := newExporter(t, tr, col)

			tts := newTraces(rng, map[traceClass]int{classFast: nFast, classError: nError, classSlow: nSlow})
			start := time.Now()
			stats := sendAll(ctxFor(t, 2*time.Minute), exp, tts, groupSize, workers)
			lastSend := time.Now()
			t.Logf("sent %d traces in %d requests in %s", len(tts), stats.requests, lastSend.Sub(start).Round(time.Millisecond))
			require.Zero(t, stats.failed, "export requests failed; first error: %v", stats.firstErr)

			errorsAndSlow := append(byClass(tts, classError), byClass(tts, classSlow)...)
			if !snk.awaitComplete(errorsAndSlow, 20*time.Second) {
				t.Logf("error and slow traces still incomplete 20s after sending")
			}
			// Every trace is decided at the latest max_wait after its first
			// span; then nothing more should come.
			snk.waitSettled(t, lastSend.Add(cfg.MaxWait+time.Second), time.Second, 30*time.Second)
			t.Logf("sink settled %s after the last request", time.Since(lastSend).Round(time.Millisecond))

			t.Run("error_and_slow_traces_complete", func(t *testing.T) {
				snk.assertComplete(t, byClass(tts, classError))
				snk.assertComplete(t, byClass(tts, classSlow))
			})

			t.Run("fast_kept_fraction", func(t *testing.T) {
				fast := byClass(tts, classFast)
				var kept []*testTrace
				for _, tt := range fast {
					if snk.trace(tt.pid()) != nil {
						kept = append(kept, tt)
					}
				}
				p := cfg.BaselinePct / 100
				n := float64(len(fast))
				mean, sigma := n*p, math.Sqrt(n*p*(1-p))
				t.Logf("kept %d of %d fast traces; expected %.0f ± %.1f (4σ)", len(kept), len(fast), mean, 4*sigma)
				assert.InDelta(t, mean, float64(len(kept)), 4*sigma,
					"kept fast traces outside 4σ of the binomial expectation for %g%%", cfg.BaselinePct)
				snk.assertComplete(t, kept)
			})

			t.Run("tracestate_thresholds", func(t *testing.T) {
				baseline, err := otelsampling.ProbabilityToThreshold(cfg.BaselinePct / 100)
				require.NoError(t, err)
				wantTValue := map[traceClass]string{
					classError: otelsampling.AlwaysSampleThreshold.TValue(), // "0"
					classSlow:  otelsampling.AlwaysSampleThreshold.TValue(),
					classFast:  baseline.TValue(), // "e666666666666" for 10 %
				}
				var bad []string
				checked := 0
				for _, tt := range tts {
					for spanID, rs := range snk.trace(tt.pid()) {
						checked++
						if p := thresholdProblem(rs.traceState, wantTValue[tt.class]); p != "" && len(bad) < 10 {
							bad = append(bad, tt.class.String()+" span "+spanID.String()+": "+p)
						}
					}
				}
				require.NotZero(t, checked, "no span arrived to check")
				assert.Empty(t, bad, "spans with a wrong or missing ot=th tracestate")
			})

			t.Run("threshold_consistent_with_trace_randomness", func(t *testing.T) {
				// A kept span saying th:T promises that its trace's randomness
				// (the trace ID's low 56 bits here: no rv is set) is at least T.
				baseline, err := otelsampling.ProbabilityToThreshold(cfg.BaselinePct / 100)
				require.NoError(t, err)
				var inconsistent []string
				keptButBelow, droppedButAbove := 0, 0
				for _, tt := range byClass(tts, classFast) {
					wouldKeep := baseline.ShouldSample(otelsampling.TraceIDToRandomness(tt.pid()))
					kept := snk.trace(tt.pid()) != nil
					switch {
					case kept && !wouldKeep:
						keptButBelow++
						if len(inconsistent) < 10 {
							inconsistent = append(inconsistent, tt.pid().String())
						}
					case !kept && wouldKeep:
						droppedButAbove++
					}
				}
				t.Logf("fast traces kept with randomness below the threshold: %d; dropped with randomness above it: %d",
					keptButBelow, droppedButAbove)
				assert.Empty(t, inconsistent, "fast traces kept with th:%s although their randomness is below it", baseline.TValue())
			})

			t.Run("no_foreign_spans", func(t *testing.T) {
				sent := make(map[pcommon.TraceID]bool, len(tts))
				for _, tt := range tts {
					sent[tt.pid()] = true
				}
				var foreign []string
				for _, id := range snk.traceIDs() {
					if !sent[id] {
						foreign = append(foreign, id.String())
					}
				}
				assert.Empty(t, foreign, "traces arrived at the sink that were never sent")
			})
		})
	}
}

// thresholdProblem returns "" if traceState carries an OpenTelemetry
// threshold equal to want, and what is wrong otherwise.
func thresholdProblem(traceState, want string) string {
	if !strings.Contains(traceState, "ot=") || !strings.Contains(traceState, "th:") {
		return "no ot=th: in tracestate " + `"` + traceState + `"`
	}
	w3c, err := otelsampling.NewW3CTraceState(traceState)
	if err != nil {
		return "unparsable tracestate " + `"` + traceState + `": ` + err.Error()
	}
	if got := w3c.OTelValue().TValue(); got != want {
		return "th:" + got + ", want th:" + want + ` (tracestate "` + traceState + `")`
	}
	return ""
}

// assertThreshold fails the test unless every span that arrived for tts
// carries th:want in its tracestate.
func (s *sink) assertThreshold(t testing.TB, tts []*testTrace, want string) {
	t.Helper()
	var bad []string
	for _, tt := range tts {
		for spanID, rs := range s.trace(tt.pid()) {
			if p := thresholdProblem(rs.traceState, want); p != "" {
				bad = append(bad, spanID.String()+": "+p)
			}
		}
	}
	assert.Empty(t, bad, "spans with a wrong or missing ot=th tracestate")
}
