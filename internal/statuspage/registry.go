package statuspage

import (
	"slices"
	"sync"
	"time"
)

// Registry holds what the status page shows: the recorders of the running
// trace buffers and the cluster views. Components add themselves in Start
// and remove themselves in Shutdown.
type Registry struct {
	mu        sync.Mutex
	recorders []*Recorder
	clusters  []ClusterSource
}

// Default is the registry of the collector process, which the tailsift
// extension serves: the components of a pipeline cannot reach the
// extension's instance from their factory, so they meet here.
var Default = new(Registry)

// Add shows r on the page until the returned function is called.
func (g *Registry) Add(r *Recorder) (remove func()) {
	g.mu.Lock()
	g.recorders = append(g.recorders, r)
	g.mu.Unlock()
	return sync.OnceFunc(func() {
		g.mu.Lock()
		g.recorders = slices.DeleteFunc(g.recorders, func(x *Recorder) bool { return x == r })
		g.mu.Unlock()
	})
}

// AddCluster shows c's cluster view on the page until the returned
// function is called.
func (g *Registry) AddCluster(c ClusterSource) (remove func()) {
	g.mu.Lock()
	g.clusters = append(g.clusters, c)
	g.mu.Unlock()
	return sync.OnceFunc(func() {
		g.mu.Lock()
		g.clusters = slices.DeleteFunc(g.clusters, func(x ClusterSource) bool { return x == c })
		g.mu.Unlock()
	})
}

// Snapshot returns the state of everything registered at now, which also
// paces the per-second rates.
func (g *Registry) Snapshot(now time.Time) Snapshot {
	g.mu.Lock()
	recs := slices.Clone(g.recorders)
	clusters := slices.Clone(g.clusters)
	g.mu.Unlock()
	s := Snapshot{Time: now.UTC(), RefreshMs: refresh.Milliseconds(), Components: []Component{}, Clusters: []ClusterStatus{}}
	for _, r := range recs {
		s.Components = append(s.Components, r.snapshot(now))
	}
	for _, c := range clusters {
		s.Clusters = append(s.Clusters, c.ClusterStatus())
	}
	return s
}

// ClusterSource is a component that knows a gateway cluster: the tailsift
// exporter routing to the gateways, or a gateway's cluster block.
type ClusterSource interface {
	ClusterStatus() ClusterStatus
}

// ClusterStatus is a cluster as one component sees it.
type ClusterStatus struct {
	Component string `json:"component"`
	// Role is "exporter" for a component routing spans to the members, or
	// "gateway" for a member of the cluster.
	Role    string          `json:"role"`
	Members []ClusterMember `json:"members"`
	// Rerouted counts spans sent to another member because their owner was
	// down.
	Rerouted int64 `json:"rerouted"`
	// Handovers counts traces handed over between members, by direction
	// ("sent", "received"); absent where the component does not hand over.
	Handovers map[string]int64 `json:"handovers,omitempty"`
}

// ClusterMember is one member.
type ClusterMember struct {
	Address string `json:"address"`
	Up      bool   `json:"up"`
	Self    bool   `json:"self,omitempty"`
	// Spans counts the spans this component sent to the member.
	Spans int64 `json:"spans"`
}
