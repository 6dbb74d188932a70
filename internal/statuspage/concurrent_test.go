package statuspage_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tailsift/tailsift/internal/statuspage"
	"github.com/tailsift/tailsift/internal/tracebuf"
	"github.com/tailsift/tailsift/sampling"
)

// Shards record on one recorder from their own goroutines, each policy's
// first decision racing the others to create its counters: every event is
// counted exactly once.
func TestRecorderConcurrentTotals(t *testing.T) {
	rec := statuspage.NewRecorder("tailsift", "processor", 1000, nil)
	rec.Bind(engine(t, sampling.BudgetConfig{}))
	var g statuspage.Registry
	defer g.Add(rec)()

	policies := []string{"errors", "anomalies", "baseline", "", "p4", "p5"}
	reasons := []string{tracebuf.ReasonQuiet, tracebuf.ReasonMemory, tracebuf.ReasonMaxSpans, tracebuf.ReasonShutdown}
	const workers, per = 8, 3000
	var wg sync.WaitGroup
	var snapshots atomic.Int64
	stop := make(chan struct{})
	go func() { // snapshots taken meanwhile read the counters as they grow
		for {
			select {
			case <-stop:
				return
			default:
				g.Snapshot(t0)
				snapshots.Add(1)
			}
		}
	}()
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				p := policies[(w+i)%len(policies)]
				decided(rec, p, i%2 == 0, 3, reasons[i%len(reasons)], time.Millisecond, -1)
				rec.Received(2)
				rec.Late(i%3 == 0, 1)
			}
		})
	}
	wg.Wait()
	close(stop)

	c := g.Snapshot(t0).Components[0]
	const n = workers * per
	assert.Equal(t, int64(n), c.Counters.TracesDecided)
	assert.Equal(t, int64(3*n/2), c.Counters.SpansKept)
	assert.Equal(t, int64(3*n/2), c.Counters.SpansDropped)
	assert.Equal(t, int64(2*n), c.Counters.SpansReceived)
	assert.Equal(t, int64(n/3), c.Counters.LateSpansKept)
	assert.Equal(t, int64(n-n/3), c.Counters.LateSpansDropped)
	assert.Equal(t, map[string]int64{"max_spans": n / 4, "max_trace_bytes": 0, "memory": n / 4, "shutdown": n / 4}, c.Counters.EarlyDecisions)
	require.Len(t, c.Decisions, 2*len(policies))
	var traces, spans int64
	for _, d := range c.Decisions {
		assert.Equal(t, int64(n/len(c.Decisions)), d.Traces, "%s %s", d.Policy, d.Decision)
		traces += d.Traces
		spans += d.Spans
	}
	assert.Equal(t, int64(n), traces)
	assert.Equal(t, int64(3*n), spans)
}

// BenchmarkRecorderDecided records decisions of 6 policies from parallel
// goroutines, as the shards do on their cores: Decided at each decision,
// and the counts by policy every 64 decisions (a shard reports once per
// work cycle, which holds tens of decisions at 20 000 spans/s). Compare
// builds with
//
//	go test -run '^$' -bench RecorderDecided -count 10 -cpu 1,2 ./internal/statuspage | benchstat
func BenchmarkRecorderDecided(b *testing.B) {
	rec := statuspage.NewRecorder("tailsift", "processor", 1000, nil)
	policies := []string{"errors", "anomalies", "baseline", "p3", "p4", "p5"}
	var id atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		i := int(id.Add(1)) * 7
		var traces [12]int64 // by policy and outcome since the last report
		for pb.Next() {
			p, keep := i%len(policies), i%4 == 0
			rec.Decided(policies[p], keep, 5, tracebuf.ReasonQuiet, time.Millisecond, 0)
			k := 2 * p
			if keep {
				k++
			}
			traces[k]++
			if i++; i%64 == 0 {
				for k, n := range traces {
					if n > 0 {
						rec.CountDecided(policies[k/2], k%2 == 1, n, 5*n)
						traces[k] = 0
					}
				}
			}
		}
	})
}
