package selfmetrics

import (
	"context"

	"go.opentelemetry.io/otel/metric"

	"github.com/tailsift/tailsift/internal/cluster"
	"github.com/tailsift/tailsift/internal/tracebuf"
)

// ClusterInstruments are a component's generated instruments for its
// cluster block; see the processor's metadata.yaml for their meaning.
type ClusterInstruments struct {
	SpansForwarded      metric.Int64Counter
	TracesHandedOver    metric.Int64Counter
	BytesHandedOver     metric.Int64Counter
	DecisionsHandedOver metric.Int64Counter
	DecidedLocally      metric.Int64Counter
	Members             metric.Int64UpDownCounter
}

// NewNode returns the cluster node of a component's buffer when cfg has a
// cluster block, nil otherwise. The node's events are recorded with in (set's
// Observer is replaced).
func NewNode(cfg tracebuf.Config, buf *tracebuf.Buffer, set cluster.Settings, in ClusterInstruments) *cluster.Node {
	c := cfg.Cluster.Get()
	if !cfg.Cluster.HasValue() || c == nil {
		return nil
	}
	set.Observer = NewClusterObserver(in)
	set.Budget = buf.Engine()
	// The counters start at 0, so that their series exist (and rate()
	// works) before the first forward or handover.
	ctx := context.Background()
	for _, ctr := range []metric.Int64Counter{in.SpansForwarded, in.TracesHandedOver, in.BytesHandedOver, in.DecisionsHandedOver, in.DecidedLocally} {
		ctr.Add(ctx, 0)
	}
	return cluster.NewNode(*c, buf, set)
}

// NewClusterObserver returns a cluster.Observer recording into ins.
func NewClusterObserver(ins ClusterInstruments) cluster.Observer { return clusterObserver{ins} }

type clusterObserver struct{ ins ClusterInstruments }

func (o clusterObserver) Forwarded(ctx context.Context, spans int) {
	o.ins.SpansForwarded.Add(ctx, int64(spans))
}

func (o clusterObserver) HandedOver(ctx context.Context, traces, _, bytes int) {
	o.ins.TracesHandedOver.Add(ctx, int64(traces))
	o.ins.BytesHandedOver.Add(ctx, int64(bytes))
}

func (o clusterObserver) DecisionsHandedOver(ctx context.Context, n int) {
	o.ins.DecisionsHandedOver.Add(ctx, int64(n))
}

func (o clusterObserver) DecidedLocally(ctx context.Context, traces int) {
	o.ins.DecidedLocally.Add(ctx, int64(traces))
}

func (o clusterObserver) Members(delta int) {
	o.ins.Members.Add(context.Background(), int64(delta))
}
