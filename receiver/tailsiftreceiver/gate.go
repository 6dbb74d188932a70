package tailsiftreceiver

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// handlerGrace bounds Shutdown's wait for the requests still served once
// its deadline has passed: a handler blocked in a middleware or an
// interceptor (an authenticator) does not hold Shutdown longer.
const handlerGrace = time.Second

// shuttingDown is the retryable refusal of a request that arrives once
// Shutdown has begun.
const shuttingDown = "tailsift receiver is shutting down, retry later"

// gate admits the servers' requests until Shutdown closes it, and lets
// Shutdown wait for those admitted before it closes the buffer: neither
// http.Server.Close nor grpc.Server.Stop waits for the handlers still
// running, which went on using the buffer, the node and the RED table
// after they were shut down.
type gate struct {
	mu      sync.RWMutex
	closed  bool
	running sync.WaitGroup
}

// enter admits a request, unless the gate is closed; an admitted request
// ends with leave.
func (g *gate) enter() bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.closed {
		return false
	}
	g.running.Add(1)
	return true
}

func (g *gate) leave() { g.running.Done() }

// close refuses the requests from now on.
func (g *gate) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// wait waits for the requests admitted until over is closed; it reports
// whether they all ended. Past that, the goroutine that waits stays until
// they do.
func (g *gate) wait(over <-chan struct{}) bool {
	done := make(chan struct{})
	go func() {
		g.running.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-over:
		return false
	}
}

// graceAfter returns a context that ends d after ctx does (or when
// cancelled), without a goroutine of its own.
func graceAfter(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	gctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var mu sync.Mutex
	var t *time.Timer
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		t = time.AfterFunc(d, cancel)
		mu.Unlock()
	})
	return gctx, func() {
		stop()
		mu.Lock()
		if t != nil {
			t.Stop()
		}
		mu.Unlock()
		cancel()
	}
}

// enter implements exporter: an Export call is admitted through the gate.
func (r *tailsiftReceiver) enter() bool { return r.gate.enter() }

// leave implements exporter.
func (r *tailsiftReceiver) leave() { r.gate.leave() }

// gated serves h through the gate, as the outermost handler of the HTTP
// server (around confighttp's middlewares and authentication): a request
// that arrives once Shutdown has begun is answered 503 with Retry-After.
func (r *tailsiftReceiver) gated(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !r.gate.enter() {
			isJSON := mediaType(req.Header.Get("Content-Type")) != pbContentType
			writeStatus(w, isJSON, retryable(shuttingDown), http.StatusServiceUnavailable)
			return
		}
		defer r.gate.leave()
		h.ServeHTTP(w, req)
	})
}
