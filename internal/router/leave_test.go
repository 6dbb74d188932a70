package router

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tailsift/tailsift/internal/ring"
	"github.com/tailsift/tailsift/internal/router/routertest"
)

// overloaded is a gateway's answer when its buffer is full or it shuts
// down (tailsiftreceiver's retryable): UNAVAILABLE with a RetryInfo.
func overloaded(t *testing.T, delay time.Duration) error {
	t.Helper()
	st, err := status.New(codes.Unavailable, "shutting down").
		WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(delay)})
	require.NoError(t, err)
	return st.Err()
}

// ownedBy routes batches until n spans of traces owned by owner (on the
// ring of addrs) were routed, and returns every span routed.
func ownedBy(t *testing.T, r *Router, addrs []string, owner string, n int) (sent map[[8]byte]string, owned int) {
	t.Helper()
	rg := ring.New(addrs)
	var w routertest.Workload
	sent = map[[8]byte]string{}
	for owned < n {
		td := w.Batch(4, 3)
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					if rg.Members()[rg.Owner(ring.Hash(sp.TraceID()))] == owner {
						owned++
					}
				}
			}
		}
		for id, svc := range routertest.ServiceOf(td) {
			sent[id] = svc
		}
		require.NoError(t, r.Route(t.Context(), encodeTraces(t, td)))
	}
	return sent, owned
}

// TestLeavingMemberRetriesFailOver: a gateway that shuts down answers
// UNAVAILABLE with a RetryInfo (an overloaded gateway's answer), and its
// address then leaves DNS. The sends it refused wait in exporterhelper's
// retry back-off; when the member leaves the set, its queue's shutdown
// stops the retries, and what they held must go to the members left, not
// be dropped.
func TestLeavingMemberRetriesFailOver(t *testing.T) {
	gw, addrs := routertest.StartGateways(t, "127.0.0.121", "127.0.0.122")
	leaving := addrs[0]
	refusals := make([]error, 50)
	for i := range refusals {
		refusals[i] = overloaded(t, time.Second)
	}
	gw.Refuse(leaving, refusals...)
	r := newRouter(t, addrs)

	sent, owned := ownedBy(t, r, addrs, leaving, 30)
	// The leaving member refused its sends: they wait for a retry.
	require.Eventually(t, func() bool { return gw.Calls(leaving) >= 1 }, 10*time.Second, 5*time.Millisecond)

	r.SetMembers(addrs[1:])
	r.retiring.Wait()
	require.Eventually(t, func() bool { return gw.Count() >= len(sent) }, 10*time.Second, 5*time.Millisecond,
		"%d of %d spans delivered (%d owned by the member that left)", gw.Count(), len(sent), owned)
	for _, rs := range gw.Snapshot() {
		assert.Equal(t, addrs[1], rs[0].Gateway)
	}
}

// TestShutdownFailsOverToMembersUp: the agent shuts down while one gateway
// refuses (UNAVAILABLE with a RetryInfo) and the other is up. Within the
// shutdown deadline, what the refusing gateway holds goes to the one that
// is up rather than being dropped: in its retry back-off, and in its batch
// that leaves at shutdown.
func TestShutdownFailsOverToMembersUp(t *testing.T) {
	for _, tc := range []struct {
		name string
		wait bool // for the refusing member's first send before Shutdown
		kill bool // the gateway is killed instead, just before Shutdown
	}{
		{name: "in retry back-off", wait: true},
		{name: "sent at shutdown", wait: false},
		{name: "killed before shutdown", kill: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gw, addrs := routertest.StartGateways(t, "127.0.0.123", "127.0.0.124")
			refusing := addrs[0]
			refusals := make([]error, 50)
			for i := range refusals {
				refusals[i] = overloaded(t, time.Second)
			}
			if !tc.kill {
				gw.Refuse(refusing, refusals...)
			}
			r := newRouterWith(t, addrs, batching(time.Hour, 1<<20))

			sent, owned := ownedBy(t, r, addrs, refusing, 30)
			if tc.wait {
				r.flushDue(t.Context(), r.state.Load(), time.Now(), 0)
				require.Eventually(t, func() bool { return gw.Calls(refusing) >= 1 }, 10*time.Second, 5*time.Millisecond)
			}
			if tc.kill {
				gw.Stop(refusing)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			_ = r.Shutdown(ctx)
			assert.Len(t, gw.Snapshot(), len(sent), "spans delivered at shutdown (%d owned by the refusing member)", owned)
			for _, rs := range gw.Snapshot() {
				assert.Equal(t, addrs[1], rs[0].Gateway)
			}
		})
	}
}

// TestDeadMemberNotUpAtClose: a member that answers nothing is marked
// down and probed; it leaves the set, or the router shuts down, while a
// probe waits in its Export. Closing the connection ends that Export with
// CANCELED, which is no answer of the member: it must not be marked up
// again ("Member up again", members_up +1) as it is closed.
func TestDeadMemberNotUpAtClose(t *testing.T) {
	for _, leave := range []bool{true, false} {
		name := "router shuts down"
		if leave {
			name = "leaves the set"
		}
		t.Run(name, func(t *testing.T) {
			_, addrs := routertest.StartGateways(t, "127.0.0.125")
			hung, dead := routertest.StartHung(t, "127.0.0.126")
			obs := new(counts)
			r := newRouterObserved(t, []string{addrs[0], dead}, obs, func(s *Settings) {
				hungSettings(s)
				s.Failover.ProbeInterval = 500 * time.Millisecond
			})
			ownedBy(t, r, []string{addrs[0], dead}, dead, 10)
			require.Eventually(t, func() bool { return memberDown(r, dead) }, 10*time.Second, 5*time.Millisecond)
			calls := hung.Calls()
			// The first probe, after one probe interval, is an Export the
			// member leaves unanswered for another.
			require.Eventually(t, func() bool { return hung.Calls() > calls }, 10*time.Second, time.Millisecond)
			ups := obs.ups.Load()
			if leave {
				r.SetMembers(addrs[:1])
				r.retiring.Wait()
			} else {
				require.NoError(t, r.Shutdown(t.Context()))
			}
			assert.Equal(t, ups, obs.ups.Load(), "members marked up as the dead one was closed")
		})
	}
}

// TestMarkDownAfterClose: a send that found its member refusing checks
// that the member is not stopped, then marks it down; its close may come
// in between (a member leaving the set past its drain deadline, or the
// router's Shutdown past its own, closes the connection while sends end).
// close counted the member out of members_up already: marking it down then
// must not count it out again, nor start a probe.
func TestMarkDownAfterClose(t *testing.T) {
	_, addrs := routertest.StartGateways(t, "127.0.0.127")
	obs := new(counts)
	r := newRouterObserved(t, addrs, obs, func(*Settings) {})
	m := r.state.Load().members[0]
	require.Equal(t, int64(1), obs.up.Load())
	require.NoError(t, m.shutdown(t.Context()))
	require.Equal(t, int64(0), obs.up.Load())
	m.markDown(status.Error(codes.Unavailable, "connection refused"))
	assert.Equal(t, int64(0), obs.up.Load(), "members_up after a closed member was marked down")
}

// TestShutdownDeadlineCoversMembersThatLeft: a member that answers nothing
// leaves the set, and the router shuts down while it drains. Shutdown
// waits for that drain too; it must end by Shutdown's deadline, not by the
// drain's own (the send timeout plus a probe interval).
func TestShutdownDeadlineCoversMembersThatLeft(t *testing.T) {
	_, addrs := routertest.StartGateways(t, "127.0.0.128")
	hung, dead := routertest.StartHung(t, "127.0.0.129")
	members := []string{addrs[0], dead}
	r := newRouterWith(t, members, func(s *Settings) {
		s.Timeout.Timeout = 3 * time.Second
		s.Failover.Timeouts = 0 // never marked down: its sends wait their time-out
	})
	ownedBy(t, r, members, dead, 10)
	require.Eventually(t, func() bool { return hung.Calls() >= 1 }, 10*time.Second, time.Millisecond)
	r.SetMembers(addrs[:1])

	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_ = r.Shutdown(ctx)
	took := time.Since(start)
	assert.Less(t, took, time.Second, "Shutdown with a 200 ms deadline took %v", took)
}

// TestRetryingForgetsWhatTheRetrySenderGaveUp: the requests a member left
// to exporterhelper's retries are remembered until sent again; one not sent
// again within retry_on_failure::max_elapsed_time was given up by the retry
// sender, and is forgotten rather than kept for good.
func TestRetryingForgetsWhatTheRetrySenderGaveUp(t *testing.T) {
	const maxElapsed = time.Minute
	var r retrying
	sent, givenUp, late := new(request), new(request), new(request)
	r.add(sent, 1, maxElapsed)
	r.add(givenUp, 2, maxElapsed)
	r.forget(sent) // sent again
	r.add(late, int64(2*time.Minute), maxElapsed)
	assert.Equal(t, []*request{late}, r.take())
	assert.Empty(t, r.take(), "take forgets")
}

// TestShutdownWaitsForAMemberUp: every gateway is down when the agent shuts
// down, and one comes back before Shutdown's deadline. Without Fallback a
// request whose members are all down waits for its member's retries and is
// dropped at the deadline (Settings.Fallback); the queues' retries stop at
// shutdown, so what they held must wait for a member up until the deadline
// rather than be dropped at once.
func TestShutdownWaitsForAMemberUp(t *testing.T) {
	gw, addrs := routertest.StartGateways(t, "127.0.0.130", "127.0.0.131")
	r := newRouter(t, addrs)
	for _, a := range addrs {
		gw.Stop(a)
	}
	sent, _ := ownedBy(t, r, addrs, addrs[0], 20)
	require.Eventually(t, func() bool { return memberDown(r, addrs[0]) && memberDown(r, addrs[1]) }, 10*time.Second, time.Millisecond)

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = r.Shutdown(ctx)
	}()
	time.Sleep(200 * time.Millisecond) // the gateway comes back while the agent shuts down
	gw.Start(addrs[1])
	<-done
	assert.Len(t, gw.Snapshot(), len(sent), "spans delivered once a gateway came back within the shutdown deadline")
}
