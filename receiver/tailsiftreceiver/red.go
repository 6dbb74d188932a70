package tailsiftreceiver

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/collector/consumer"
	"go.uber.org/zap"

	"github.com/tailsift/tailsift/internal/red"
	"github.com/tailsift/tailsift/internal/tracebuf"
	"github.com/tailsift/tailsift/internal/wire"
)

// enableRED makes the receiver count every accepted span into a RED table
// flushed to next. Called at creation, before Start.
func (r *tailsiftReceiver) enableRED(next consumer.Metrics) {
	r.nextMetrics = next
	r.red = red.NewTable(r.cfg.RED, uint64(r.clock.Now().UnixNano()))
}

// accepted is the buffer's Accepted hook.
func (r *tailsiftReceiver) accepted(b *wire.Batch) {
	if r.red != nil {
		r.red.Observe(b)
	}
}

// startRED starts the flush loop, when the receiver is in a metrics
// pipeline; stopRED ends it.
func (r *tailsiftReceiver) startRED() {
	if r.red == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.stopREDLoop = cancel
	r.redDone = make(chan struct{})
	go func() {
		defer close(r.redDone)
		t := r.clock.NewTimer(r.cfg.RED.Interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C():
				if err := r.flushRED(ctx); err != nil {
					r.set.Logger.Warn("RED metrics not delivered", zap.Error(err))
				}
				t.Reset(r.cfg.RED.Interval)
			}
		}
	}()
}

// stopRED ends the flush loop and sends the metrics a last time, with
// every span the buffer took, within ctx (and tracebuf.AbandonGrace).
func (r *tailsiftReceiver) stopRED(ctx context.Context) error {
	if r.red == nil || r.redDone == nil {
		return nil
	}
	r.stopREDLoop()
	<-r.redDone
	// A metrics consumer that blocks and ignores ctx does not hold
	// Shutdown: the flush is given up on past the deadline.
	err := tracebuf.CallWithin(ctx, func() error { return r.flushRED(ctx) })
	if errors.Is(err, tracebuf.ErrAbandoned) {
		return fmt.Errorf("send RED metrics: %w", err)
	}
	return err
}

func (r *tailsiftReceiver) flushRED(ctx context.Context) error {
	md := r.red.Flush(uint64(r.clock.Now().UnixNano()))
	if md.DataPointCount() == 0 {
		return nil
	}
	if err := r.nextMetrics.ConsumeMetrics(ctx, md); err != nil {
		return fmt.Errorf("send RED metrics: %w", err)
	}
	return nil
}
