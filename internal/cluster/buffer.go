package cluster

import "context"

// Buffer is what a Node needs of the gateway's trace buffer
// (tracebuf.Buffer, whose handover.go implements the cluster's side).
type Buffer interface {
	// IngestOwned buffers an encoded TracesData; done, when not nil, is
	// called once the buffer reads buf no more.
	IngestOwned(ctx context.Context, buf []byte, done func()) (int, error)
	// IngestAgain is IngestOwned for spans a gateway took in once
	// already (handed over, or given back after a handover failed): they
	// are not counted again in the RED metrics.
	IngestAgain(ctx context.Context, buf []byte, done func()) (int, error)
	// IngestForwarded is IngestOwned for spans another gateway forwarded
	// (and acknowledged to its client): counted in the RED metrics, but
	// never refused for their size, which would lose them.
	IngestForwarded(ctx context.Context, buf []byte, done func()) (int, error)
	// IngestDecisions remembers decisions handed over by another gateway.
	IngestDecisions(ctx context.Context, d *Decisions) error
	// Shards is the number of shards of the commands below.
	Shards() int
	// TakeForeign removes up to about maxBytes of the undecided traces of
	// a shard that owns rejects, and says whether more remain.
	TakeForeign(ctx context.Context, shard int, owns func(h uint64) bool, maxBytes int) (Foreign, bool, error)
	// ForeignDecisions lists the decisions a shard remembers of traces
	// that owns rejects.
	ForeignDecisions(ctx context.Context, shard int, owns func(h uint64) bool) (Decisions, error)
}

// Foreign is what Buffer.TakeForeign took out of a shard.
type Foreign struct {
	// Traces is an encoded TracesData of whole traces, their spans as they
	// arrived (tracestate unchanged, duplicates left out).
	Traces []byte
	// NTraces and Spans count them.
	NTraces, Spans int
}

// Observer is told what a Node does, for self-metrics.
type Observer interface {
	// Forwarded: spans of traces owned by another gateway, sent to it.
	Forwarded(ctx context.Context, spans int)
	// HandedOver: buffered traces handed to their new owner.
	HandedOver(ctx context.Context, traces, spans, bytes int)
	// DecisionsHandedOver: decisions handed to their trace's new owner.
	DecisionsHandedOver(ctx context.Context, n int)
	// DecidedLocally: traces that could not be handed over (their owner
	// refused them, or a bound was reached) and are decided here.
	DecidedLocally(ctx context.Context, traces int)
	// Members changes by delta.
	Members(delta int)
}

// NopObserver observes nothing.
type NopObserver struct{}

func (NopObserver) Forwarded(context.Context, int)            {}
func (NopObserver) HandedOver(context.Context, int, int, int) {}
func (NopObserver) DecisionsHandedOver(context.Context, int)  {}
func (NopObserver) DecidedLocally(context.Context, int)       {}
func (NopObserver) Members(int)                               {}
