package e2e

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// relaunch starts the collector again on c's config and addresses, after
// c has exited.
func (c *collector) relaunch(t testing.TB) *collector {
	t.Helper()
	n := &collector{
		grpcAddr: c.grpcAddr, httpAddr: c.httpAddr, healthAddr: c.healthAddr,
		output: &syncBuffer{}, exited: make(chan struct{}),
	}
	require.NoError(t, n.launch(t, c.path+".restart.yaml", "", c.config))
	return n
}

// atLeastOnce checks that every span of tt arrived, once or more. It returns
// "" when so, a description of what is missing otherwise, and how many
// spans arrived more than once.
func (s *sink) atLeastOnce(tt *testTrace) (problem string, dups int) {
	got := s.trace(tt.pid())
	var missing []string
	for _, st := range tt.spans {
		id := pcommon.SpanID(st.SpanContext.SpanID())
		rs, ok := got[id]
		if !ok {
			missing = append(missing, id.String())
			continue
		}
		dups += rs.count - 1
	}
	if len(missing) == 0 {
		return "", dups
	}
	return fmt.Sprintf("%s trace %s (%d spans, %d arrived): missing %s",
		tt.class, tt.pid(), len(tt.spans), len(got), strings.Join(missing, ", ")), dups
}

// TestKillRestartLosesNoErrorOrSlowTrace streams traces through a collector
// with the tailsift store, kills it with SIGKILL in the middle, restarts it
// on the same directory while the load goes on, and checks that every error
// and slow trace whose requests were all accepted arrives complete: at least
// once (the delivery guarantee of the store), duplicates counted.
func TestKillRestartLosesNoErrorOrSlowTrace(t *testing.T) {
	t.Parallel()
	const (
		workers   = 3
		groupSize = 4
		// SIGKILL once this many error traces were accepted whole, and stop
		// once as many more were accepted after the restart.
		acceptedBeforeKill = 40
	)
	snk := newSink(t)
	cfg := fastConfig(snk.addr)
	cfg.Quiet = time.Second // traces are still buffered when the kill comes
	cfg.StoreDir = t.TempDir()
	col := startCollector(t, cfg)
	exp := newExporter(t, overGRPC, col)
	base := newRand(t)
	ctx := ctxFor(t, 2*time.Minute)

	var (
		stats        sendStats
		mu           sync.Mutex
		sent         []*testTrace
		acceptedErrs atomic.Int64
		stop         = make(chan struct{})
		done         sync.WaitGroup
		cutoff       = time.Now().Add(60 * time.Second)
	)
	for w := range workers {
		rng := rand.New(rand.NewPCG(base.Uint64(), uint64(w)))
		done.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if time.Now().After(cutoff) {
					return
				}
				group := make([]*testTrace, groupSize)
				for i := range group {
					c := classFast
					switch rng.IntN(4) {
					case 0:
						c = classError
					case 1:
						c = classSlow
					}
					group[i] = newTrace(rng, c, time.Now())
				}
				failed := false
				for _, req := range interleave(group) {
					err := exp.ExportSpans(ctx, req.spans)
					stats.record(req, err)
					failed = failed || err != nil
				}
				for _, tt := range group {
					if tt.class == classError && stats.accepted(tt) {
						acceptedErrs.Add(1)
					}
				}
				mu.Lock()
				sent = append(sent, group...)
				mu.Unlock()
				if failed {
					time.Sleep(20 * time.Millisecond) // the collector is down
				}
			}
		})
	}
	stopSenders := sync.OnceFunc(func() {
		close(stop)
		done.Wait()
	})
	t.Cleanup(stopSenders)

	require.Eventually(t, func() bool { return acceptedErrs.Load() >= acceptedBeforeKill },
		30*time.Second, 5*time.Millisecond, "error traces were not accepted")
	require.NoError(t, col.cmd.Process.Kill())
	<-col.exited
	killedAt := time.Now()
	atKill := acceptedErrs.Load()

	col = col.relaunch(t)
	t.Logf("restarted %s after SIGKILL", time.Since(killedAt).Round(time.Millisecond))
	require.Eventually(t, func() bool { return acceptedErrs.Load() >= atKill+acceptedBeforeKill },
		30*time.Second, 5*time.Millisecond, "error traces were not accepted after the restart")
	stopSenders()
	snk.waitSettled(t, time.Now().Add(cfg.MaxWait), 2*time.Second, 60*time.Second)

	mu.Lock()
	defer mu.Unlock()
	var want []*testTrace
	for _, tt := range sent {
		if tt.class != classFast && stats.accepted(tt) {
			want = append(want, tt)
		}
	}
	var problems []string
	dups := 0
	for _, tt := range want {
		p, d := snk.atLeastOnce(tt)
		dups += d
		if p != "" {
			problems = append(problems, p)
		}
	}
	t.Logf("%d export requests (%d failed); %d error and slow traces accepted whole; %d spans arrived twice or more",
		stats.requests, stats.failed, len(want), dups)
	require.Positive(t, stats.failed, "no request failed: the kill did not happen under load")
	if len(problems) > 0 {
		t.Errorf("%d of %d error and slow traces did not arrive complete:\n  %s",
			len(problems), len(want), strings.Join(problems[:min(len(problems), 10)], "\n  "))
	}
	assert.Contains(t, col.output.String(), "Took in the spans the store held from the last run",
		"the restarted collector resumed nothing")
}
