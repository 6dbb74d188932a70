package router

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tailsift/tailsift/internal/router/routertest"
)

// TestShutdownDeadlineWithHungChain: members in a row that accept the
// connection and never answer (three), one killed, one up; the queues
// hold spans for each when the router shuts down with a 400 ms deadline,
// the send timeout at its default (5 s). The failovers from queue to
// direct sends (reroute: a round per member found down) and the
// sendClosing of a part no member took at once must all keep Shutdown's
// deadline. (Without a deadline it took 10 s, two send timeouts before
// the hung members were marked down, and the member up got all 800 spans.)
func TestShutdownDeadlineWithHungChain(t *testing.T) {
	gws, up := routertest.StartGateways(t, "127.0.0.81", "127.0.0.82")
	gws.Stop(up[1]) // killed
	members := []string{up[0], up[1]}
	for _, host := range []string{"127.0.0.83", "127.0.0.84", "127.0.0.85"} {
		_, addr := routertest.StartHung(t, host)
		members = append(members, addr)
	}
	r := newRouter(t, members)
	var w routertest.Workload
	for range 40 {
		require.NoError(t, r.Route(context.Background(), encodeTraces(t, w.Batch(10, 2))))
	}
	const deadline = 400 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- r.Shutdown(ctx) }()
	select {
	case err := <-done:
		took := time.Since(start)
		t.Logf("Shutdown took %v with a %v deadline (%v); the member up got %d spans", took, deadline, err, gws.Count())
		assert.Less(t, took, deadline+time.Second, "Shutdown keeps its deadline")
	case <-time.After(30 * time.Second):
		t.Fatalf("Shutdown did not return in 30 s with a %v deadline", deadline)
	}
}
