package tailsiftextension

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/tailsift/tailsift/internal/store"
	"github.com/tailsift/tailsift/internal/tracebuf"
)

// The bound on the keeps under way at once, and on each one's time.
//
// A keep (POST /api/v1/traces/{trace_id}/keep) sends the stored trace down
// the pipeline in requests of at most 1 MiB of stored spans: it holds one
// of them and its pdata, a store block's buffers while it reads the block,
// and the set of the spans it sent (40–60 bytes a span, store.TestSpanSetBytesPerSpan), whatever the
// trace's size otherwise: 12–13 MiB for a trace of 32 MiB
// (tracebuf.TestKeepStoredBigTraceBounded). Without a bound on their
// number, N keeps held N times that: 4 keeps at once were all under way
// together (TestConcurrentKeepsBounded). A keep now takes one of
// max_concurrent_keeps before it records anything, and gives it back once
// it is answered; one that finds none free within keepWait (or its
// deadline) is answered 503 with Retry-After and has recorded nothing.
//
// Keeps have a bound of their own rather than a share of
// max_concurrent_response_bytes: how long a keep lasts depends on the next
// consumer (it retries what it refuses retryably), not on the client, and
// keeps held up by an exporter that is down must not starve the GETs of
// traces.
//
// A keep's time is bounded too (keepTime): it retried until its client
// went away or the shutdown began, so a client without a deadline held
// its keep, and its share of max_concurrent_keeps, for as long as the next
// consumer refused, past the server's write_timeout, after which its answer
// could not even be written (TestKeepTimeBounded). A next consumer that
// ignores its context is given up on AbandonGrace after that
// (tracebuf.CallWithin): the keep is answered and gives its share back,
// while the call, left running, still holds its request and pdata (about
// 4 MiB) until it returns. That memory is outside max_concurrent_keeps.

// defaultKeepWait is how long a keep waits for one of max_concurrent_keeps
// before it is answered 503.
const defaultKeepWait = time.Second

// defaultKeepTime bounds a keep when the server has no write_timeout.
const defaultKeepTime = 30 * time.Second

// keepTime is how long a keep may take, from its request's start: the
// server's write_timeout less a tenth of it (at most a second), so that the
// answer is written before the connection's deadline; defaultKeepTime
// without one.
func keepTime(writeTimeout time.Duration) time.Duration {
	if writeTimeout <= 0 {
		return defaultKeepTime
	}
	return writeTimeout - min(writeTimeout/10, time.Second)
}

// reserveKeep takes one of max_concurrent_keeps for a keep, waiting at most
// keepWait or until ctx ends. ok is false when none was free in time;
// otherwise release gives it back.
func (e *Extension) reserveKeep(ctx context.Context) (release func(), ok bool) {
	if !e.keeps.TryAcquire(1) {
		wctx, cancel := context.WithTimeout(ctx, e.keepWait)
		err := e.keeps.Acquire(wctx, 1)
		cancel()
		if err != nil {
			return nil, false
		}
	}
	return func() { e.keeps.Release(1) }, true
}

// keepResponse is the body of a successful keep.
type keepResponse struct {
	TraceID string `json:"trace_id"`
	Spans   int    `json:"spans"`
	Rule    string `json:"sampling.rule"`
}

func (e *Extension) keepTrace(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), e.keepTime)
	defer cancel()
	id, err := parseTraceID(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	k := e.keeper()
	if k == nil {
		http.Error(w, "no tailsift processor or receiver uses this extension's store", http.StatusServiceUnavailable)
		return
	}
	release, ok := e.reserveKeep(ctx)
	if !ok {
		e.refuse(w, r, refusedKeep, "other keeps hold max_concurrent_keeps; retry later")
		return
	}
	defer release()
	n, err := k.KeepStored(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		http.Error(w, "trace not found (unknown, or older than the retention)", http.StatusNotFound)
		return
	case errors.Is(err, tracebuf.ErrNotDropped):
		http.Error(w, "trace is kept already, or not decided yet", http.StatusConflict)
		return
	case errors.Is(err, tracebuf.ErrShutdown):
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	case err != nil && ctx.Err() == nil && (errors.Is(err, context.Canceled) || errors.Is(err, tracebuf.ErrAbandoned)):
		// Neither the client nor the keep's time ended it: the buffer's
		// shutdown began, which ends the keep's retries.
		http.Error(w, "shutting down: the keep is recorded, not delivered; the next start sends the trace", http.StatusServiceUnavailable)
		return
	case err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) && r.Context().Err() == nil:
		http.Error(w, "keep trace: the next consumer did not take the whole trace within "+e.keepTime.String()+
			" (write_timeout less a margin); the keep is recorded, not delivered: ask again to send it: "+err.Error(), http.StatusGatewayTimeout)
		return
	case err != nil:
		http.Error(w, "keep trace: "+err.Error(), http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(keepResponse{TraceID: hex.EncodeToString(id[:]), Spans: n, Rule: tracebuf.RetroactiveRule})
}
