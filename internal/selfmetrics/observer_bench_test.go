package selfmetrics

import (
	"fmt"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/tailsift/tailsift/internal/tracebuf"
)

// BenchmarkDecisionsPerCycle is a shard's self-metrics for its decisions on
// a real OTel SDK meter: every decision's Decided (latency and lag
// histograms), and the traces_decided and spans_decided counts handed on
// once per work cycle of perCycle decisions (tracebuf.DecisionCounter).
// perCycle=1 makes the calls a decision cost before the counts were summed
// per cycle (two counter Adds each); an SDK-shaped shard decides about 40
// traces per wake-up at 20 000 spans/s. ns/op is per decision:
//
//	go test -run '^$' -bench DecisionsPerCycle -count 10 ./internal/selfmetrics/ | tee x.txt; benchstat -col /per x.txt
func BenchmarkDecisionsPerCycle(b *testing.B) {
	for _, per := range []int{1, 40} {
		b.Run(fmt.Sprintf("per=%d", per), func(b *testing.B) {
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			b.Cleanup(func() { _ = mp.Shutdown(b.Context()) })
			o := NewObserver(instrumentsOn(b, mp.Meter("bench")))
			c := o.(tracebuf.DecisionCounter)
			policies := []string{"errors", "slow", "baseline", ""}
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				p := policies[n%len(policies)]
				o.Decided(p, p != "", 16, tracebuf.ReasonQuiet, 3*time.Second, 20*time.Millisecond)
				switch n++; {
				case per == 1: // as before: this decision's policy only
					c.CountDecided(p, p != "", 1, 16)
				case n%per == 0: // a cycle's sums: one call per policy seen
					for _, p := range policies {
						c.CountDecided(p, p != "", int64(per/len(policies)), int64(16*per/len(policies)))
					}
				}
			}
		})
	}
}
