package tracebuf

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tailsift/tailsift/internal/wire"
)

// A request heavier than the whole of buffer.max_queued_bytes (its bytes,
// its buffer's spare capacity, and its scan: 136 B a span) could never be
// queued whole. Refusing it lost its traces: a request within the
// receiver's size limit weighs 1.3 to 1.7 times its bytes, and a gRPC
// request's pooled buffer counts at its power-of-two capacity, so a
// request the client was right to send was dropped. Such a request is
// taken in as pieces instead, cut at resource, scope and span boundaries
// of its wire bytes (wire.Split), each re-encoded as a request of its own
// holding its spans under their resource and scope, weighing at most a
// quarter of the queue. The pieces go in order, each waiting for room as a
// request does: they are admitted one after another, never over the
// budget.
//
// If a piece finds no room before the caller's context (or the wait) ends,
// or Shutdown begins, the rest of the request is refused as retryable,
// like a request: the pieces taken before are in the buffer, and the
// client's retry sends their spans again (those of a trace still buffered
// are dropped as duplicates when it is exported; those of a trace decided
// in between arrive as late spans). The spans not taken in, those of the
// pieces never offered too, are counted refused (queue_full), so that each
// span of the attempt is counted once, taken in or refused; the error
// counts both. Only a span that with its resource and scope weighs more
// than the whole queue is refused for its size (too_large), permanently;
// the other spans of its request go on.
//
// A request that came with a cluster control (forwarded by another
// gateway, or handed over; cluster.Node strips the control and calls
// IngestForwarded or IngestAgain) is never split: the control belongs to
// the whole request, and such spans are never refused for their weight.
//
// Memory: the pieces are copies, but each is counted in the queue from
// its admission until the shards are done with it. What the split holds
// besides, for its duration only, is the request as it came (its buffer,
// which the caller held anyway, and its scan), and the one piece being
// admitted (at most a quarter of the queue) while it waits for room, as a
// request waiting for room is held uncounted. The request's buffer is
// released (done) once, as soon as the last piece is encoded from it.

// pieceShare is the part of buffer.max_queued_bytes one piece may weigh.
const pieceShare = 4

// ingestPieces takes in req, scanned and routed, whose weight is over the
// whole queue, as pieces within it, and recycles req. It waits at most wait
// (when > 0) for room, for all the pieces together. accepted and invalid
// are ingest's.
func (b *Buffer) ingestPieces(ctx context.Context, req *request, wait time.Duration, accepted bool, invalid int) error {
	if wait > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, wait)
		defer cancel()
	}
	// The scan holds only the valid spans (SkipInvalid), which the pieces
	// share out.
	valid := len(req.batch.Spans)
	target := b.queuedMax / pieceShare
	fits := func(size, spans, groups int) bool { return QueueWeight(size, spans, groups) <= target }
	var s pieces
	// free recycles req once, as soon as its last piece is encoded.
	free := func() {
		if req != nil {
			req.drop()
			req = nil
		}
	}
	defer free() // Split stopped before the last piece
	err := wire.Split(&req.batch, fits, func(p wire.Piece) error {
		var last func()
		if p.End == valid {
			last = free
		}
		return b.ingestPiece(ctx, req, p, accepted, last, &s)
	})
	rest := valid - s.taken - s.tooLarge // this piece and those never offered
	refusal, full := errors.AsType[*RefusedError](err)
	switch {
	case full:
		// The invalid spans are not counted here: the retry will be.
		b.set.Observer.Refused(RefusedQueueFull, rest)
		return &RefusedError{Spans: rest, Taken: s.taken, Cause: refusal.Cause}
	case err != nil:
		b.set.Observer.Refused(RefusedInvalid, rest+invalid)
		return err
	}
	if invalid > 0 {
		b.set.Observer.Refused(RefusedInvalid, invalid)
	}
	if s.tooLarge > 0 {
		return &TooLargeError{Spans: s.tooLarge, Weight: s.heaviest, Max: b.queuedMax, Taken: s.taken, Invalid: invalid}
	}
	if invalid > 0 {
		return InvalidIDs(invalid, valid+invalid)
	}
	return nil
}

// pieces is what ingestPieces counts of a request's pieces.
type pieces struct {
	taken, tooLarge int   // spans taken in; refused for their size
	heaviest        int64 // the heaviest of those refused for their size
}

// ingestPiece takes in piece p of req, waiting for room until ctx ends,
// and counts it in s. It returns a *RefusedError (whose Cause is why
// waiting ended) when it found none. last, when not nil, is called once
// req is read no more.
func (b *Buffer) ingestPiece(ctx context.Context, req *request, p wire.Piece, accepted bool, last func(), s *pieces) error {
	n := p.Spans()
	if w := QueueWeight(p.Size, n, p.Groups); w > b.queuedMax {
		// One span (wire.Split: every piece of more fits a quarter of
		// the queue), too heavy for all of it with its resource and
		// scope: not even encoded.
		s.tooLarge += n
		s.heaviest = max(s.heaviest, w)
		b.set.Observer.Refused(RefusedTooLarge, n)
		return nil
	}
	piece := b.reqs.Get().(*request)
	piece.buf = wire.AppendPiece(make([]byte, 0, p.Size), &req.batch, p)
	if last != nil {
		last()
	}
	if err := wire.Scan(piece.buf, &piece.batch); err != nil {
		piece.drop()
		// A piece of spans Scan accepted always scans (FuzzSplit): never
		// retryable, should it happen.
		return fmt.Errorf("tailsift: a piece of a request heavier than buffer.max_queued_bytes does not scan: %w", err)
	}
	_, targets := b.route(piece)
	// A scan capacity the pooled request kept from a larger one must not
	// make the piece weigh more than its share.
	fitScan(piece.buf, &piece.batch, b.queuedMax/pieceShare)
	if err := b.reserve(ctx, piece, 0, false); err != nil {
		piece.drop()
		if tl, ok := errors.AsType[*tooLarge](err); ok { // not with a piece of at most a quarter
			s.tooLarge += n
			s.heaviest = max(s.heaviest, tl.weight)
			b.set.Observer.Refused(RefusedTooLarge, n)
			return nil
		}
		return &RefusedError{Spans: n, Cause: err}
	}
	b.admit(piece, targets, accepted)
	b.set.Observer.Received(n)
	s.taken += n
	return nil
}
