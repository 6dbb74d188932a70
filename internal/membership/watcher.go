package membership

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/tailsift/tailsift/internal/clock"
)

// Watcher resolves a members block and tells its subscriber when the member
// set changes. A static block resolves once. A dns block is looked up every
// interval; a failed or empty lookup keeps the last good set.
type Watcher struct {
	lookup   func(ctx context.Context) ([]string, error)
	interval time.Duration // 0: resolve once
	clock    clock.Clock
	logger   *zap.Logger

	mu       sync.Mutex // serializes lookups and notifications
	current  []string
	onChange func(members []string)

	cancel context.CancelFunc
	done   chan struct{}
}

// NewWatcher returns a watcher of cfg, which must be valid. clk times the dns
// lookups (clock.Real{} outside tests).
func NewWatcher(cfg Config, clk clock.Clock, logger *zap.Logger) *Watcher {
	w := &Watcher{clock: clk, logger: logger}
	if d := cfg.DNS.Get(); cfg.DNS.HasValue() && d != nil {
		dc := *d
		w.interval = dc.Interval
		w.lookup = func(ctx context.Context) ([]string, error) { return lookupDNS(ctx, &dc) }
		return w
	}
	static := normalize(cfg.Static)
	w.lookup = func(context.Context) ([]string, error) { return static, nil }
	return w
}

// Start resolves the members once, calls onChange with the result (unless the
// lookup failed or found no member), then, for dns, keeps looking up every
// interval until Shutdown. onChange is called from one goroutine at a time,
// with a sorted list it must not modify. A failed first lookup is logged, not
// returned: the watcher keeps trying.
func (w *Watcher) Start(ctx context.Context, onChange func(members []string)) error {
	if w.done != nil {
		return errors.New("membership watcher already started")
	}
	w.mu.Lock()
	w.onChange = onChange
	w.mu.Unlock()
	if err := w.Refresh(ctx); err != nil {
		w.logger.Warn("Resolving the members failed; retrying", zap.Error(err))
	}
	w.done = make(chan struct{})
	if w.interval == 0 {
		close(w.done)
		return nil
	}
	loopCtx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	go w.loop(loopCtx, w.clock.NewTimer(w.interval))
	return nil
}

func (w *Watcher) loop(ctx context.Context, t clock.Timer) {
	defer close(w.done)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		if err := w.Refresh(ctx); err != nil && ctx.Err() == nil {
			w.logger.Warn("Resolving the members failed; keeping the last good set",
				zap.Strings("members", w.Members()), zap.Error(err))
		}
		t.Reset(w.interval)
	}
}

// Refresh looks the members up now and, when the set changed, records it and
// calls the subscriber. A failed or empty lookup returns an error and keeps
// the last good set.
func (w *Watcher) Refresh(ctx context.Context) error {
	members, err := w.lookup(ctx)
	if err != nil {
		return err
	}
	if len(members) == 0 {
		return errors.New("no member found")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if slices.Equal(members, w.current) {
		return nil
	}
	w.logger.Info("Members changed", zap.Strings("members", members), zap.Strings("previous", w.current))
	w.current = members
	if w.onChange != nil {
		w.onChange(members)
	}
	return nil
}

// Members returns the last good member set (nil before the first), sorted.
// The caller must not modify it.
func (w *Watcher) Members() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.current
}

// Shutdown stops the lookups and waits for the one in progress, if any, up to
// ctx's deadline. It is safe to call twice and without Start.
func (w *Watcher) Shutdown(ctx context.Context) error {
	if w.cancel != nil {
		w.cancel()
	}
	if w.done == nil {
		return nil
	}
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop the membership watcher: %w", ctx.Err())
	}
}

// normalize writes a member list canonically (Canonical), sorted and
// without duplicates, into a new slice.
func normalize(ms []string) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = Canonical(m)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
