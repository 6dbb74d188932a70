package tracebuf

import (
	"context"
	"errors"

	"github.com/tailsift/tailsift/internal/wire"
)

// A request that reaches the buffer through a cluster node is partitioned
// by owner first: the node forwards the other members' part whole, and
// the owner takes forwarded spans in whole, never split and never refused
// for their weight (IngestForwarded), counting a request heavier than its
// queue as its whole queue. A part heavier than the queue would be held
// there against a budget counted full: 1.95 times a 1 MiB queue in
// tailsiftprocessor's TestOverBudgetBatchForwardedPartsFitPeerQueue. So a
// request heavier than the whole queue is cut before the node, into the
// pieces the buffer would take it in (split.go), each handed to the node
// in order: what the node forwards of a piece fits every member's queue
// (members of a tier share their configuration), and what it keeps fits
// this one's.

// IngestVia is IngestOwned for a request that goes through ingest (a
// cluster node's Ingest, which hands this buffer the part it keeps), for a
// buf that carries no cluster control (the node strips it, and its control
// belongs to the whole request: the caller hands such a request to ingest
// itself). A request within the queue goes to ingest whole; one heavier is
// cut into pieces of at most a quarter of the queue, each handed to ingest
// in order, and done is called once the last is encoded. It returns the
// number of spans of buf and the errors Ingest returns for a request taken
// in pieces; each span is counted once, by ingest (forwarded, taken in or
// refused) or here (spans with bad IDs, and the pieces never offered after
// one was refused).
func (b *Buffer) IngestVia(ctx context.Context, buf []byte, done func(), ingest func(context.Context, []byte, func()) (int, error)) (int, error) {
	if !b.mayOutweigh(len(buf)) {
		return ingest(ctx, buf, done) // no scan on the way of most requests
	}
	req := b.reqs.Get().(*request)
	defer req.drop() // recycles the scan only: buf and done are not req's
	if wire.Scan(buf, &req.batch) != nil || len(req.batch.Spans) == 0 ||
		QueueWeight(len(buf), len(req.batch.Spans), len(req.batch.Scopes)) <= b.queuedMax {
		// ingest reports what is malformed, as for any request.
		return ingest(ctx, buf, done)
	}
	valid, invalid := len(req.batch.Spans), req.batch.Invalid
	release := func() {
		if done != nil {
			done()
			done = nil
		}
	}
	defer release() // stopped before the last piece
	target := b.queuedMax / pieceShare
	fits := func(size, spans, groups int) bool { return QueueWeight(size, spans, groups) <= target }
	var taken, offered, tooLarge int
	var heaviest int64
	err := wire.Split(&req.batch, fits, func(p wire.Piece) error {
		n := p.Spans()
		offered += n
		piece := wire.AppendPiece(make([]byte, 0, p.Size), &req.batch, p)
		if p.End == valid {
			release()
		}
		_, err := ingest(ctx, piece, nil)
		if tl, ok := errors.AsType[*TooLargeError](err); ok {
			// A span heavier than the whole queue, counted as such;
			// the others go on.
			tooLarge += tl.Spans
			taken += n - tl.Spans
			heaviest = max(heaviest, tl.Weight)
			return nil
		}
		if err != nil {
			return err
		}
		taken += n
		return nil
	})
	if rf, full := errors.AsType[*RefusedError](err); full {
		// ingest counted the spans of the piece refused; those of the
		// pieces after it were never offered. The spans with bad IDs
		// are not counted: the retry will be.
		if rest := valid - offered; rest > 0 {
			b.set.Observer.Refused(RefusedQueueFull, rest)
		}
		return valid + invalid, &RefusedError{Spans: valid - taken - tooLarge, Taken: taken, Cause: rf.Cause}
	}
	if err != nil {
		return valid + invalid, err
	}
	if invalid > 0 {
		b.set.Observer.Refused(RefusedInvalid, invalid)
	}
	if tooLarge > 0 {
		return valid + invalid, &TooLargeError{Spans: tooLarge, Weight: heaviest, Max: b.queuedMax, Taken: taken, Invalid: invalid}
	}
	if invalid > 0 {
		return valid + invalid, InvalidIDs(invalid, valid+invalid)
	}
	return valid + invalid, nil
}

// minSpanWire is the least a span with valid IDs takes on the wire: its
// trace_id and span_id fields (18 and 10 bytes) and its own tag and length.
const minSpanWire = 30

// mayOutweigh reports whether a request of size bytes may weigh more than
// the whole queue once scanned: its bytes and, at most, a span and a scope
// of scan for each minSpanWire bytes.
func (b *Buffer) mayOutweigh(size int) bool {
	n := size / minSpanWire
	return QueueWeight(size, n, n) > b.queuedMax
}
