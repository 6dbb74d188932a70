package tailsiftextension

import (
	"context"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// The bound on the GETs of traces served at once.
//
// max_response_bytes bounds what one GET holds: its response, the trace's
// first spans up to that many bytes, which it holds from the read until
// the client has taken the last byte (a slow client holds it longest).
// Without a bound on their number, N GETs of big traces held N times that:
// 4 GETs of a 16 MiB response held 72 MiB of heap at once
// (TestConcurrentBigTraceResponsesBounded). Each GET now takes
// max_response_bytes of max_concurrent_response_bytes before it reads, and
// gives it back once its response is written, so the responses held at
// once stay within that budget. Reading the trace also takes a store
// block's buffers (up to about 8 MiB while the block is read, given back
// before the response is written) and, for a JSON response, one chunk's
// pdata and JSON at a time: per GET served, so within
// max_concurrent_response_bytes ÷ max_response_bytes of them.
//
// Each GET takes the whole max_response_bytes, whatever its trace's size:
// the size is known only once the trace is read, and taking more as it
// grows could leave two GETs each holding part of the budget and waiting
// for the other's. A GET of a small trace gives its share back within
// milliseconds, so one that finds the budget taken waits for it, up to
// responseWait.

// defaultResponseWait is how long a GET waits for room in
// max_concurrent_response_bytes before it is answered 503.
const defaultResponseWait = time.Second

// retryAfterSeconds is the Retry-After of that 503.
const retryAfterSeconds = "1"

// reserveResponse takes max_response_bytes of max_concurrent_response_bytes
// for one GET, waiting at most responseWait or until ctx ends. ok is false
// when there was no room in time; otherwise release gives it back.
func (e *Extension) reserveResponse(ctx context.Context) (release func(), ok bool) {
	n := int64(e.cfg.MaxResponseBytes)
	if !e.responses.TryAcquire(n) {
		wctx, cancel := context.WithTimeout(ctx, e.responseWait)
		err := e.responses.Acquire(wctx, n)
		cancel()
		if err != nil {
			return nil, false
		}
	}
	return func() { e.responses.Release(n) }, true
}

// The values of the refusals' attribute "request".
var (
	refusedGet  = metric.WithAttributeSet(attribute.NewSet(attribute.String("request", "get")))
	refusedKeep = metric.WithAttributeSet(attribute.NewSet(attribute.String("request", "keep")))
)

// refuse answers a request that found no room in its bound (msg names
// it) 503 with Retry-After, and counts it in api_responses_refused with
// the attribute request (refusedGet or refusedKeep).
func (e *Extension) refuse(w http.ResponseWriter, r *http.Request, request metric.AddOption, msg string) {
	if c := e.responsesRefused; c != nil {
		c.Add(r.Context(), 1, request)
	}
	w.Header().Set("Retry-After", retryAfterSeconds)
	http.Error(w, msg, http.StatusServiceUnavailable)
}
