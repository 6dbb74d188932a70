package tracebuf

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/consumer/consumererror"
)

// The hand-offs to the next consumer: retried while they fail retryably,
// and given up on when they outlive their context (Shutdown's deadline).

// retryRetryable calls call through within (CallWithin, or a shard's
// caller.call), again after a backoff (5 ms, doubling up to 1 s) while it
// fails retryably, until it succeeds, fails permanently or ctx ends. It
// never calls call once ctx has ended, and gives up on a call that
// outlives ctx.
func retryRetryable(ctx context.Context, call func() error, within func(context.Context, func() error) error) error {
	backoff := 5 * time.Millisecond
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		err := within(ctx, call)
		if err == nil || consumererror.IsPermanent(err) || errors.Is(err, ErrAbandoned) {
			return err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
		backoff = min(backoff*2, time.Second)
	}
}

// AbandonGrace is how long a call to the next consumer may run on once its
// context has ended: one that honours its context returns well within it.
const AbandonGrace = 100 * time.Millisecond

// ErrAbandoned is CallWithin's error for a call it gave up on.
var ErrAbandoned = errors.New("the next consumer did not return")

// CallWithin runs call, a hand-off to the next consumer (the rescuer's, the
// receiver's RED flush), on a goroutine of its own, and returns its error;
// or, when ctx ends and call has not returned AbandonGrace later,
// ErrAbandoned. call is then left running: a next consumer that blocks and
// ignores its context keeps that goroutine (and what call holds) until it
// returns, but no longer holds the rescuer or Shutdown past its deadline.
// The goroutine costs 0.76 µs and 3 allocations a call (BenchmarkCallWithin)
// besides its stack; the shards, which hand on every output request, keep
// one goroutine for their calls instead (caller).
func CallWithin(ctx context.Context, call func() error) error {
	done := make(chan error, 1)
	go func() { done <- call() }()
	_, err := waitCall(ctx, done)
	return err
}

// waitCall returns the error done gives, or true and ErrAbandoned when ctx
// ends and done gives nothing AbandonGrace later.
func waitCall(ctx context.Context, done <-chan error) (abandoned bool, err error) {
	select {
	case e := <-done:
		return false, e
	case <-ctx.Done():
	}
	t := time.NewTimer(AbandonGrace)
	defer t.Stop()
	select {
	case e := <-done:
		return false, e
	case <-t.C:
		return true, fmt.Errorf("%w within %v of its deadline (%w), and is left running", ErrAbandoned, AbandonGrace, ctx.Err())
	}
}

// caller runs a shard's calls to the next consumer (deliver) on one
// goroutine that lives from one call to the next, so that each can be given
// up on as CallWithin's are, without a goroutine started for each, its
// stack grown again to the next consumer's depth: with one per call, the
// fast path took 7 % more CPU at 20 000 SDK spans/s than with direct calls
// (bench-e2e A/B, 3 concurrent rounds: direct ÷ CallWithin 0.88, 0.93,
// 0.99). Only the shard's goroutine uses it; run stops it.
type caller struct {
	calls chan func() error
	errs  chan error
}

// call runs f on h's goroutine, started at the first call, and returns its
// error; or ErrAbandoned when ctx ends and f has not returned AbandonGrace
// later. That goroutine is then left to f, and ends when f returns; the
// next call starts another.
func (h *caller) call(ctx context.Context, f func() error) error {
	if h.calls == nil {
		h.calls, h.errs = make(chan func() error), make(chan error, 1)
		go runCalls(h.calls, h.errs)
	}
	h.calls <- f
	abandoned, err := waitCall(ctx, h.errs)
	if abandoned {
		h.stop()
	}
	return err
}

// stop ends h's goroutine once its call, if any, has returned.
func (h *caller) stop() {
	if h.calls != nil {
		close(h.calls)
		h.calls, h.errs = nil, nil
	}
}

func runCalls(calls <-chan func() error, errs chan<- error) {
	for f := range calls {
		errs <- f()
	}
}
