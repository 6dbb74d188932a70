//go:build linux

package scaleout

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/tailsift/tailsift/internal/ring"
)

// TestSteady: three gateways and no change. Every error and slow trace
// arrives whole from one gateway, with membership from a static list and
// from DNS alike, and with the tailsift processor and receiver alike.
func TestSteady(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name           string
		dns, processor bool
	}{{"static/processor", false, true}, {"dns/receiver", true, false}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := withCluster(tc.dns)
			opts.processor = tc.processor
			c := startCluster(t, opts)
			traces := c.run(defaultWorkload(8*time.Second), nil)
			o := check(traces, c.sink.snapshot())
			t.Logf("%s: %s", c, o)
			assertTargets(t, o)
		})
	}
}

// ringChange is a scenario that changes the gateway set under load, with
// DNS membership.
type ringChange struct {
	name      string
	load      time.Duration
	processor bool // gateways run the tailsift processor, else the receiver
	// change acts on the cluster while the workload runs and returns the
	// moments the ring changed.
	change func(c *cluster, start time.Time) []time.Time
	// handedOver, when set, lists the gateways still running at the end
	// whose handover self-metrics add up to the scenario's handover.
	handedOver []string
}

var ringChanges = []ringChange{
	{
		// A 4th gateway comes up and is listed in DNS.
		name: "add", load: 10 * time.Second,
		change: func(c *cluster, start time.Time) []time.Time {
			at(start, 4*time.Second)
			c.add(addedHost)
			return []time.Time{time.Now()}
		},
		handedOver: initialHosts,
	},
	{
		// One gateway is taken out of DNS and sent SIGTERM at the same
		// moment (Kubernetes scaling a Deployment down).
		name: "remove", load: 10 * time.Second,
		change: removeOne,
	},
	{
		// The same with the tailsift processor, whose drain the otlp
		// receiver runs before it stops (the receiver's is its own).
		name: "remove/processor", load: 10 * time.Second, processor: true,
		change: removeOne,
	},
	{
		// Every gateway is replaced in Kubernetes order: the replacement
		// comes up at a new address and is listed once ready; then the old
		// one is taken out of DNS and sent SIGTERM at the same moment.
		name: "rolling", load: 16 * time.Second,
		change: func(c *cluster, start time.Time) []time.Time {
			at(start, 3*time.Second)
			var changes []time.Time
			for i, old := range initialHosts {
				c.add(replacementHosts[i])
				changes = append(changes, time.Now())
				time.Sleep(2 * dnsInterval) // the agents route to it before the next change
				changes = append(changes, time.Now())
				c.remove(old)
			}
			return changes
		},
	},
}

// removeOne takes the third gateway out of DNS and sends it SIGTERM, 4 s
// into the workload.
func removeOne(c *cluster, start time.Time) []time.Time {
	at(start, 4*time.Second)
	changed := time.Now()
	c.remove(initialHosts[2])
	return []time.Time{changed}
}

// TestRingChange runs the scenarios that change the ring: no error or slow
// trace may be lost or split, and no span duplicated. They need the
// gateways' cluster block. With TAILSIFT_SCALEOUT_PLAIN=1 they run against
// gateways without it instead, and log what those lose.
func TestRingChange(t *testing.T) {
	t.Parallel()
	plain := os.Getenv(plainEnv) == "1"
	if !clusterBlock && !plain {
		t.Skipf("the gateways have no cluster block (handover): set %s=1 to measure plain gateways", plainEnv)
	}
	for _, rc := range ringChanges {
		t.Run(rc.name, func(t *testing.T) {
			t.Parallel()
			opts := withCluster(true)
			if plain {
				opts = clusterOptions{dns: true}
			}
			opts.processor = rc.processor
			c := startCluster(t, opts)
			var changes []time.Time
			traces := c.run(defaultWorkload(rc.load), func(start time.Time) { changes = rc.change(c, start) })
			o := check(traces, c.sink.snapshot())
			t.Logf("%s, %s: %s; error/slow traces in flight at each ring change (%s): %v",
				c, rc.name, o, clock(changes), inFlightAt(traces, changes))
			if plain {
				t.Logf("plain gateways, targets not asserted; first bad traces:\n%s", examples(o))
				return
			}
			assertTargets(t, o)
			if rc.handedOver != nil {
				checkHandover(t, c, traces, rc.handedOver)
			}
		})
	}
}

// TestKill: kill -9 of one of three gateways (static membership: the agent
// marks it down and routes its traces to the next gateway). It may lose
// only traces the killed gateway held: those it owned, that had spans sent
// before the kill, and that had not all arrived at the sink by then.
func TestKill(t *testing.T) {
	t.Parallel()
	c := startCluster(t, withCluster(false))
	victim := initialHosts[1]
	var killedAt time.Time
	traces := c.run(defaultWorkload(10*time.Second), func(start time.Time) {
		at(start, 4*time.Second)
		killedAt = time.Now()
		c.kill(victim)
	})
	got := c.sink.snapshot()
	o := check(traces, got)

	r := ring.New(c.members().Static)
	held := map[*plannedTrace]bool{}
	for _, tr := range traces {
		owner := r.Members()[r.Owner(ring.Hash(tr.id))]
		first, _ := tr.window()
		if tr.sampled() && owner == c.addr(victim) && first.Before(killedAt) && !deliveredBefore(tr, got[tr.id], killedAt) {
			held[tr] = true
		}
	}
	var beyond []string
	for _, tr := range o.bad {
		if !held[tr] {
			beyond = append(beyond, tr.id.String())
		}
	}
	t.Logf("%s, kill -9 %s: %s; the killed gateway held %d error/slow traces", c, victim, o, len(held))
	require.NotEmpty(t, held, "the kill hit no trace in flight: the scenario tests nothing")
	assert.Empty(t, beyond, "error/slow traces lost or split that the killed gateway did not hold:\n%s", examples(o))
	assert.Zero(t, o.duplicates, "duplicate spans:\n%s", examples(o))
	assert.Zero(t, o.unexpected, "spans the workload never sent")
}

// TestHandoverDisabled proves that the checker sees what handover
// prevents: the rolling restart with gateways that do not hand traces over
// (the cluster block with handover off, or no cluster block when the
// binary has none) splits error and slow traces. The rolling restart, six
// ring changes, splits more of them than one change does, so that this
// holds by a wide margin.
func TestHandoverDisabled(t *testing.T) {
	t.Parallel()
	rolling := ringChanges[slices.IndexFunc(ringChanges, func(rc ringChange) bool { return rc.name == "rolling" })]
	c := startCluster(t, clusterOptions{dns: true, cluster: clusterBlock})
	var changes []time.Time
	traces := c.run(defaultWorkload(rolling.load), func(start time.Time) { changes = rolling.change(c, start) })
	o := check(traces, c.sink.snapshot())
	t.Logf("%s, rolling restart without handover: %s; error/slow traces in flight at each ring change: %v",
		c, o, inFlightAt(traces, changes))
	assert.Positive(t, o.split(), "without handover a rolling restart under load must split traces; the checker saw none")
	assert.Zero(t, o.unexpected, "spans the workload never sent")
}

// checkHandover asserts that the gateways on hosts handed traces over, and
// logs the bytes they handed over next to what the model of
// docs/scale-out.md predicts for adding one gateway to three: the fleet's
// buffered bytes S·W·b over N+1.
func checkHandover(t *testing.T, c *cluster, traces []*plannedTrace, hosts []string) {
	t.Helper()
	var bytes, handed float64
	for _, h := range hosts {
		b, err := c.metric(h, "otelcol_receiver_tailsift_cluster_bytes_handed_over")
		require.NoError(t, err)
		n, err := c.metric(h, "otelcol_receiver_tailsift_cluster_traces_handed_over")
		require.NoError(t, err)
		bytes, handed = bytes+b, handed+n
	}
	m := model(traces)
	predicted := m.spansPerSec * m.wait.Seconds() * m.bytesPerSpan / float64(len(hosts)+1)
	t.Logf("handover: %.0f traces, %.1f KB handed over; model S·W·b/(N+1) = %.0f spans/s × %.2f s × %.0f B / %d = %.1f KB",
		handed, bytes/1e3, m.spansPerSec, m.wait.Seconds(), m.bytesPerSpan, len(hosts)+1, predicted/1e3)
	assert.Positive(t, bytes, "no bytes handed over: the ring change was survived without handover, by luck")
}

// assertTargets asserts the targets of every scenario but kill -9: no
// error or slow trace lost, incomplete or kept in two parts, no span
// duplicated.
func assertTargets(t *testing.T, o *outcome) {
	t.Helper()
	assert.Zero(t, o.split(), "error/slow traces lost, incomplete or in two parts:\n%s", examples(o))
	assert.Zero(t, o.duplicates, "duplicate spans:\n%s", examples(o))
	assert.Zero(t, o.unexpected, "spans the workload never sent")
}

// clock formats moments as hh:mm:ss.mmm, as the checker's details do.
func clock(moments []time.Time) string {
	out := make([]string, 0, len(moments))
	for _, m := range moments {
		out = append(out, m.Format("15:04:05.000"))
	}
	return strings.Join(out, " ")
}

func examples(o *outcome) string { return "  " + strings.Join(o.examples, "\n  ") }

// inFlightAt counts the error and slow traces in flight at each moment.
func inFlightAt(traces []*plannedTrace, moments []time.Time) []int {
	out := make([]int, 0, len(moments))
	for _, m := range moments {
		out = append(out, inFlight(traces, m))
	}
	return out
}

// deliveredBefore reports whether every span of tr had arrived at the sink
// before t, given what arrived of it.
func deliveredBefore(tr *plannedTrace, got map[pcommon.SpanID]arrival, t time.Time) bool {
	for _, ps := range tr.spans {
		a, ok := got[ps.id]
		if !ok || !a.first.Before(t) {
			return false
		}
	}
	return true
}
