package e2e

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// stream is load that goes on while a test acts on the collector: workers
// send interleaved groups of new traces until stopped or until its cutoff.
type stream struct {
	stats        sendStats
	acceptedErrs atomic.Int64 // error traces whose every request succeeded

	mu   sync.Mutex
	sent []*testTrace // traces whose every request was made

	stopCh chan struct{}
	done   sync.WaitGroup
	stop   func()
}

// streamConfig says what a stream sends and how.
type streamConfig struct {
	workers, groupSize int
	// cutoff bounds the sending, whatever happens.
	cutoff time.Duration
	// class picks each new trace's class.
	class func(*rand.Rand) traceClass
	// export makes one request; nil means exp.ExportSpans.
	export func(context.Context, exportRequest) error
	// pause is how long a worker waits after a group; groupFailed says
	// whether one of its requests failed. nil means no pause.
	pause func(groupFailed bool) time.Duration
}

// startStream starts sc.workers senders on exp, with their random sources
// drawn from base. They stop when stop is called or when the test ends.
func startStream(t testing.TB, ctx context.Context, exp sdktrace.SpanExporter, base *rand.Rand, sc streamConfig) *stream {
	s := &stream{stopCh: make(chan struct{})}
	if sc.export == nil {
		sc.export = func(ctx context.Context, req exportRequest) error { return exp.ExportSpans(ctx, req.spans) }
	}
	cutoff := time.Now().Add(sc.cutoff)
	for w := range sc.workers {
		rng := rand.New(rand.NewPCG(base.Uint64(), uint64(w)))
		s.done.Go(func() {
			for {
				select {
				case <-s.stopCh:
					return
				default:
				}
				if time.Now().After(cutoff) {
					return
				}
				if d := s.sendGroup(ctx, rng, sc); d > 0 {
					time.Sleep(d)
				}
			}
		})
	}
	s.stop = sync.OnceFunc(func() {
		close(s.stopCh)
		s.done.Wait()
	})
	t.Cleanup(s.stop)
	return s
}

// sendGroup sends one group of new traces and returns the pause after it.
func (s *stream) sendGroup(ctx context.Context, rng *rand.Rand, sc streamConfig) time.Duration {
	group := make([]*testTrace, sc.groupSize)
	for i := range group {
		group[i] = newTrace(rng, sc.class(rng), time.Now())
	}
	failed := false
	for _, req := range interleave(group) {
		err := sc.export(ctx, req)
		s.stats.record(req, err)
		failed = failed || err != nil
	}
	for _, tt := range group {
		if tt.class == classError && s.stats.accepted(tt) {
			s.acceptedErrs.Add(1)
		}
	}
	s.mu.Lock()
	s.sent = append(s.sent, group...)
	s.mu.Unlock()
	if sc.pause == nil {
		return 0
	}
	return sc.pause(failed)
}

// acceptedOf returns the traces sent so far, whose every request
// succeeded, for which keep says yes. Call it after stop.
func (s *stream) acceptedOf(keep func(*testTrace) bool) []*testTrace {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*testTrace
	for _, tt := range s.sent {
		if keep(tt) && s.stats.accepted(tt) {
			out = append(out, tt)
		}
	}
	return out
}
