package tailsiftexporter

import (
	"sync"
	"sync/atomic"

	"github.com/tailsift/tailsift/internal/router"
	"github.com/tailsift/tailsift/internal/statuspage"
)

// clusterView shows the gateways this exporter routes to on the status
// page: each member's state and the spans handed to it, counted in
// Routed alongside the spans_routed self-metric.
type clusterView struct {
	id       string
	router   *router.Router
	spans    sync.Map // member address → *atomic.Int64
	rerouted atomic.Int64
}

var _ statuspage.ClusterSource = (*clusterView)(nil)

func (v *clusterView) routed(member string, spans, rerouted int) {
	n, ok := v.spans.Load(member)
	if !ok {
		n, _ = v.spans.LoadOrStore(member, new(atomic.Int64))
	}
	n.(*atomic.Int64).Add(int64(spans))
	v.rerouted.Add(int64(rerouted))
}

// ClusterStatus implements statuspage.ClusterSource.
func (v *clusterView) ClusterStatus() statuspage.ClusterStatus {
	s := statuspage.ClusterStatus{Component: v.id, Role: "exporter", Rerouted: v.rerouted.Load()}
	for _, m := range v.router.MemberStates(nil) {
		cm := statuspage.ClusterMember{Address: m.Addr, Up: !m.Down}
		if n, ok := v.spans.Load(m.Addr); ok {
			cm.Spans = n.(*atomic.Int64).Load()
		}
		s.Members = append(s.Members, cm)
	}
	return s
}
