package router

import (
	"context"
	"errors"
)

// untilDrain returns ctx for a call to m's queue made under closing's read
// lock: when the queue may make it wait (block_on_overflow,
// wait_for_result), it is cancelled also as m begins to drain, so that
// the drain, which waits for that lock, keeps Shutdown's deadline (with
// every member down a request waited for room as long as its caller's
// context let it, for ever without a deadline, and Shutdown with it:
// TestShutdownBlockOnOverflowAllDown). done releases it; closed tells
// whether an error of the call is the drain's doing.
func (m *member) untilDrain(ctx context.Context) (_ context.Context, done func(), closed func(error) error) {
	q := m.r.queue.Get()
	if !m.r.queue.HasValue() || !q.BlockOnOverflow && !q.WaitForResult || m.quit == nil {
		return ctx, func() {}, func(err error) error { return err }
	}
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(m.quit, func() { cancel(errMemberClosed) })
	return ctx, func() { stop(); cancel(nil) }, func(err error) error {
		if err != nil && errors.Is(context.Cause(ctx), errMemberClosed) {
			return errMemberClosed
		}
		return err
	}
}
