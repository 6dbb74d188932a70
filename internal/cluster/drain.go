package cluster

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"
)

// A gateway's drain: out of its own ring, it forwards what it receives and
// hands its buffer over, every drainSweep, until cluster::drain has passed.
// DrainAll drains every node of the process.

// BeginDrain takes this gateway out of its own ring: from now on it owns no
// trace, and forwards what it receives to the remaining members. It returns
// when the drain began (the first call's time).
func (n *Node) BeginDrain() time.Time {
	n.setMu.Lock()
	defer n.setMu.Unlock()
	if !n.draining.Load() {
		n.draining.Store(true)
		n.drainAt = n.clock.Now()
		n.applyLocked()
		n.logger.Info("Draining: forwarding every trace to the other members", zap.Duration("drain", n.cfg.Drain))
	}
	return n.drainAt
}

// drainSweep is how often a draining gateway hands over what reached its
// buffer since its last handover: requests that were being taken in when
// the drain began, relayed spans, traces given back by a failed send.
const drainSweep = 500 * time.Millisecond

// Drain begins the drain and waits until cluster::drain has passed since it
// began, or until ctx ends. With handover on, it hands the whole buffer
// and its decisions over at once, and then every drainSweep what arrived
// since: the traces the gateway no longer owns must not go quiet here and
// be decided on the part it holds while their later spans go to the new
// owner.
func (n *Node) Drain(ctx context.Context) {
	end := n.BeginDrain().Add(n.cfg.Drain)
	for {
		if n.cfg.Handover.Enabled {
			n.HandOver(ctx)
		}
		left := end.Sub(n.clock.Now())
		if left <= 0 || ctx.Err() != nil {
			return
		}
		t := n.clock.NewTimer(min(left, drainSweep))
		select {
		case <-ctx.Done():
		case <-t.C():
		}
		t.Stop()
	}
}

// DrainPeriod is cluster::drain.
func (n *Node) DrainPeriod() time.Duration { return n.cfg.Drain }

// registry holds the started nodes, for DrainAll.
var registry = struct {
	sync.Mutex
	nodes map[*Node]struct{}
}{nodes: map[*Node]struct{}{}}

func register(n *Node) {
	registry.Lock()
	registry.nodes[n] = struct{}{}
	registry.Unlock()
}

func unregister(n *Node) {
	registry.Lock()
	delete(registry.nodes, n)
	registry.Unlock()
}

// DrainAll drains every started node of the process and waits for the
// longest drain, or until ctx ends. The otlp guard receiver calls it first
// in its Shutdown: the collector shuts receivers down before processors,
// so a tailsift processor with a cluster block would otherwise stop
// receiving before its drain began.
func DrainAll(ctx context.Context) {
	registry.Lock()
	nodes := make([]*Node, 0, len(registry.nodes))
	for n := range registry.nodes {
		nodes = append(nodes, n)
	}
	registry.Unlock()
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(func() { n.Drain(ctx) })
	}
	wg.Wait()
}
