package tailsiftprocessor

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/cluster"
	"github.com/tailsift/tailsift/internal/tracebuf"
)

// A batch heavier than the whole of buffer.max_queued_bytes could never be
// queued whole. Refusing it would lose its traces: the processor cannot
// make its client send smaller requests (an otlp receiver's limits, or a
// batch processor that merges requests, are not the processor's to see).
// So it is taken in as pieces of at most a quarter of the queue each, in
// order, each waiting for room as a request does. Every piece is within
// the budget; together they are admitted one after another, not at once.
//
// If a piece finds no room before the caller's context ends, the batch is
// refused as retryable, like a request: the pieces taken before are in the
// buffer, and the client's retry sends their spans again. The spans not
// taken in, those of the pieces never offered too, are counted refused
// (queue_full), and the error counts both. The buffer keeps
// a trace's spans once (what the retry brings again of a trace not decided
// yet is dropped as a duplicate when it is exported); spans of a trace
// decided in between arrive as late spans.

// pieceShare is the part of buffer.max_queued_bytes one piece may weigh.
const pieceShare = 4

// overQueue says whether td, encoded as buf, weighs more than the whole
// queue and is to be split. A batch another gateway sent (a cluster
// control at its head: forwarded spans, a handover and its decisions) is
// never split: the control belongs to the batch as a whole, which pieces
// would drop (their spans forwarded again, the decisions lost), and the
// node takes such spans in without refusing them for their weight.
func (p *tailsiftProcessor) overQueue(td ptrace.Traces, buf []byte) bool {
	if p.node != nil {
		if _, _, control, _ := cluster.SplitControl(buf); control {
			return false
		}
	}
	if tracebuf.QueueWeight(len(buf), 0, 0) > p.buf.MaxQueued() {
		return true
	}
	scopes, spans := 0, 0
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			scopes++
			spans += ss.Spans().Len()
		}
	}
	return tracebuf.QueueWeight(len(buf), spans, scopes) > p.buf.MaxQueued()
}

// consumePieces takes td in as pieces within the queue's budget. A piece
// refused as too large (a span that with its resource and scope weighs
// more than the whole queue) is counted as the buffer counts it and the
// others go on; a piece refused for lack of room, or at shutdown, ends the
// batch with a retryable error (piecesRefused) that counts what was taken
// and what the client is to send again.
func (p *tailsiftProcessor) consumePieces(ctx context.Context, td ptrace.Traces) error {
	var tooLarge []error
	refused, taken, offered := 0, 0, 0
	err := splitTraces(td, p.buf.MaxQueued()/pieceShare, func(piece ptrace.Traces) error {
		var m ptrace.ProtoMarshaler
		buf, err := m.MarshalTraces(piece)
		if err != nil {
			return consumererror.NewPermanent(fmt.Errorf("tailsift: encode traces: %w", err))
		}
		spans := piece.SpanCount()
		offered += spans
		err = p.ingestEncoded(ctx, buf)
		if tl, ok := errors.AsType[*tracebuf.TooLargeError](err); ok {
			tooLarge = append(tooLarge, tl)
			refused += spans
			return nil
		}
		if inv, ok := errors.AsType[*tracebuf.InvalidError](err); ok && inv.Total > 0 {
			// Some spans had bad IDs: counted, dropped; the others are in.
			tooLarge = append(tooLarge, inv)
			taken += spans - inv.Rejected
			refused += inv.Rejected
			return nil
		}
		if err != nil {
			return err
		}
		taken += spans
		return nil
	})
	if err != nil {
		return pipelineError(p.refusedPart(err, td.SpanCount(), taken, offered))
	}
	if len(tooLarge) == 0 {
		return nil
	}
	return pipelineError(fmt.Errorf("%w (%d spans of the batch refused; the %d other spans of the batch were taken in)",
		errors.Join(tooLarge...), refused, taken))
}

// refusedPart is the error of a batch whose piece was refused for lack of
// room (or at shutdown) after taken of its total spans were taken in. The
// buffer counted that piece's spans refused (queue_full); the pieces after
// it, never offered, are counted so too: the client resends them all, so
// each span of the attempt is counted once, received or refused. Other
// errors are returned as they are.
func (p *tailsiftProcessor) refusedPart(err error, total, taken, offered int) error {
	rf, full := errors.AsType[*tracebuf.RefusedError](err)
	if !full && !errors.Is(err, tracebuf.ErrShutdown) {
		return err
	}
	why := err
	if full {
		if rest := total - offered; rest > 0 {
			p.status.Refused(tracebuf.RefusedQueueFull, rest)
		}
		err, why = &tracebuf.RefusedError{Spans: total - taken, Cause: rf.Cause}, rf.Cause
	}
	return &piecesRefused{taken: taken, refused: total - taken, why: why, err: err}
}

// piecesRefused is a retryable refusal of a batch taken in pieces: some
// were taken in before one found no room. It is what err is (errors.Is,
// errors.As: a RefusedError or ErrShutdown).
type piecesRefused struct {
	taken, refused int
	why, err       error // why waiting ended; what the refusal is
}

func (e *piecesRefused) Error() string {
	return fmt.Sprintf("tailsift: a batch heavier than buffer.max_queued_bytes, taken in pieces: %d spans taken in, the other %d refused, "+
		"retry later (spans of a trace still buffered are kept once): %v", e.taken, e.refused, e.why)
}

func (e *piecesRefused) Unwrap() error { return e.err }

// ingestEncoded hands an encoded batch to the cluster node, or to the
// buffer without one.
func (p *tailsiftProcessor) ingestEncoded(ctx context.Context, buf []byte) error {
	if p.node != nil {
		_, err := p.node.Ingest(ctx, buf, nil)
		return err
	}
	return p.buf.Ingest(ctx, buf)
}

// splitTraces calls emit with pieces of td, in order, each weighing at most
// target in the queue (tracebuf.QueueWeight): its spans, resources and
// scopes, each with its framing. A span that with its resource and scope
// weighs more than target is a piece of its own. It stops at emit's first
// error.
func splitTraces(td ptrace.Traces, target int64, emit func(ptrace.Traces) error) error {
	var m ptrace.ProtoMarshaler
	piece := ptrace.NewTraces()
	var weight int64
	for _, rs := range td.ResourceSpans().All() {
		rw := resourceWeight(&m, rs)
		var prs ptrace.ResourceSpans
		inPiece := false // prs is in the current piece
		for _, ss := range rs.ScopeSpans().All() {
			sw := scopeWeight(&m, ss)
			var pss ptrace.ScopeSpans
			scopeIn := false
			for _, sp := range ss.Spans().All() {
				w := tracebuf.QueueWeight(m.SpanSize(sp)+framing, 1, 0)
				if !scopeIn {
					w += sw
				}
				if !inPiece {
					w += rw
				}
				if weight > 0 && weight+w > target {
					if err := emit(piece); err != nil {
						return err
					}
					piece, weight, inPiece, scopeIn = ptrace.NewTraces(), 0, false, false
					w = tracebuf.QueueWeight(m.SpanSize(sp)+framing, 1, 0) + sw + rw
				}
				if !inPiece {
					prs = piece.ResourceSpans().AppendEmpty()
					rs.Resource().CopyTo(prs.Resource())
					prs.SetSchemaUrl(rs.SchemaUrl())
					inPiece = true
				}
				if !scopeIn {
					pss = prs.ScopeSpans().AppendEmpty()
					ss.Scope().CopyTo(pss.Scope())
					pss.SetSchemaUrl(ss.SchemaUrl())
					scopeIn = true
				}
				sp.CopyTo(pss.Spans().AppendEmpty())
				weight += w
			}
		}
	}
	if piece.SpanCount() == 0 {
		return nil
	}
	return emit(piece)
}

// framing bounds what a message costs its parent besides its own bytes:
// a one-byte field tag and its length, a varint of at most 5 bytes.
const framing = 1 + 5

// resourceWeight is what rs's resource and schema URL weigh in a piece:
// their bytes with the framing of rs.
func resourceWeight(m *ptrace.ProtoMarshaler, rs ptrace.ResourceSpans) int64 {
	head := ptrace.NewResourceSpans()
	rs.Resource().CopyTo(head.Resource())
	head.SetSchemaUrl(rs.SchemaUrl())
	return int64(m.ResourceSpansSize(head) + framing)
}

// scopeWeight is what ss's scope and schema URL weigh in a piece: their
// bytes with the framing of ss, and its scan.
func scopeWeight(m *ptrace.ProtoMarshaler, ss ptrace.ScopeSpans) int64 {
	head := ptrace.NewScopeSpans()
	ss.Scope().CopyTo(head.Scope())
	head.SetSchemaUrl(ss.SchemaUrl())
	return tracebuf.QueueWeight(m.ScopeSpansSize(head)+framing, 0, 1)
}
