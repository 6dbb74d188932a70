package tracebuftest

import (
	"context"
	"sync"

	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
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
