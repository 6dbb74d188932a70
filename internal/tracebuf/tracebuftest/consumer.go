package tracebuftest

import (
	"context"
	"sync"

	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/tracebuf"
)

// Blocking is a next consumer that holds every ConsumeTraces until Release
// is closed: a backend that stalls, for overload tests. Entered is closed
// when the first call arrives.
type Blocking struct {
	consumertest.TracesSink
	Release chan struct{}
	Entered chan struct{}
	once    sync.Once
}

// NewBlocking returns a Blocking consumer, not yet released.
func NewBlocking() *Blocking {
	return &Blocking{Release: make(chan struct{}), Entered: make(chan struct{})}
}

// ConsumeTraces waits for Release, then keeps td.
func (b *Blocking) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	b.once.Do(func() { close(b.Entered) })
	<-b.Release
	return b.TracesSink.ConsumeTraces(ctx, td)
}

// NewStalled sets cfg up so that one error span fills it: one shard, a 1 MiB
// input queue, a trace decided at its first span and handed on at once; and
// returns the Blocking next consumer that stalls the shard on it. The
// overload tests of the processor and the receiver start from it.
func NewStalled(cfg *tracebuf.Config) *Blocking {
	cfg.Shards = 1
	cfg.Buffer.MaxQueuedBytes = 1 << 20
	cfg.Completion.MaxSpans = 1
	cfg.Output.BatchTimeout = 0 // hand the kept trace on at once, to block in next
	return NewBlocking()
}
