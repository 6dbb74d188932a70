package tailsiftprocessor

import (
	"context"
	"errors"

	"github.com/tailsift/tailsift/internal/cluster"
	"github.com/tailsift/tailsift/internal/tracebuf"
	"github.com/tailsift/tailsift/internal/wire"
)

// A batch heavier than the whole of buffer.max_queued_bytes is taken in by
// the buffer as pieces within it (tracebuf's split.go). With a cluster,
// though, the node first partitions the batch by owner and forwards the
// other members' part whole, and the owner takes forwarded spans in whole,
// never split and never refused for their weight (IngestForwarded),
// counting a request heavier than its queue as its whole queue: a part
// heavier than the queue would be held there against a budget counted
// full (1.95 times it in TestOverBudgetBatchForwardedPartsFitPeerQueue).
// So with a node the processor cuts such a batch, at resource, scope and
// span boundaries of its wire bytes (wire.Split), into pieces of at most a
// quarter of the queue, and hands them to the node one after another: what
// it forwards of a piece is within every member's queue (members of a
// tier share their configuration), and what it keeps goes in whole.
//
// A batch with a cluster control at its head (another gateway's: forwarded
// spans, a handover and its decisions) is never cut: the control belongs
// to the whole batch, which the node takes as it comes.

// pieceShare is the part of buffer.max_queued_bytes one piece may weigh,
// as the buffer's pieces.
const pieceShare = 4

// ingestNode hands buf, an encoded batch, to the cluster node: in pieces
// when it weighs more than the whole queue and carries no control, whole
// otherwise.
func (p *tailsiftProcessor) ingestNode(ctx context.Context, buf []byte) error {
	if _, _, control, _ := cluster.SplitControl(buf); !control {
		b := wire.Batch{SkipInvalid: true} // bad IDs cost no scan
		if wire.Scan(buf, &b) == nil && len(b.Spans) > 0 &&
			tracebuf.QueueWeight(len(buf), len(b.Spans), len(b.Scopes)) > p.buf.MaxQueued() {
			return p.nodePieces(ctx, &b)
		}
	}
	// The buffer reports what is malformed, as without a cluster.
	_, err := p.node.Ingest(ctx, buf, nil)
	return err
}

// nodePieces hands the spans of b, scanned without those with bad IDs,
// to the node in pieces, in order, each waiting for room as a batch does.
// Every span is counted once, as the buffer counts a request it takes in
// pieces: the node and the buffer count those of each piece offered
// (forwarded, taken in, or refused); nodePieces counts those with bad IDs
// and, when a piece finds no room, those of the pieces never offered
// (queue_full). Its errors are the buffer's for such a request.
func (p *tailsiftProcessor) nodePieces(ctx context.Context, b *wire.Batch) error {
	target := p.buf.MaxQueued() / pieceShare
	fits := func(size, spans, groups int) bool { return tracebuf.QueueWeight(size, spans, groups) <= target }
	valid, invalid := len(b.Spans), b.Invalid
	var taken, offered, tooLarge int
	var heaviest int64
	err := wire.Split(b, fits, func(pc wire.Piece) error {
		n := pc.Spans()
		offered += n
		_, err := p.node.Ingest(ctx, wire.AppendPiece(make([]byte, 0, pc.Size), b, pc), nil)
		if tl, ok := errors.AsType[*tracebuf.TooLargeError](err); ok {
			// A span heavier than the whole queue, counted by the
			// buffer; the others go on.
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
	if rf, full := errors.AsType[*tracebuf.RefusedError](err); full {
		// The buffer counted the spans of the piece refused; those of
		// the pieces after it were never offered. The spans with bad
		// IDs are not counted: the retry will be.
		if rest := valid - offered; rest > 0 {
			p.status.Refused(tracebuf.RefusedQueueFull, rest)
		}
		return &tracebuf.RefusedError{Spans: valid - taken - tooLarge, Taken: taken, Cause: rf.Cause}
	}
	if err != nil {
		return err
	}
	if invalid > 0 {
		p.status.Refused(tracebuf.RefusedInvalid, invalid)
	}
	if tooLarge > 0 {
		return &tracebuf.TooLargeError{Spans: tooLarge, Weight: heaviest, Max: p.buf.MaxQueued(), Taken: taken, Invalid: invalid}
	}
	if invalid > 0 {
		return tracebuf.InvalidIDs(invalid, valid+invalid)
	}
	return nil
}
