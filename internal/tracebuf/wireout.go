package tracebuf

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/tailsift/tailsift/internal/router"
	"github.com/tailsift/tailsift/internal/wire"
)

// Wire output (output::exporter). A shard's output batch is already a
// sequence of encoded ExportTraceServiceRequests: its kept spans, marked and
// grouped under their resources and scopes. Handing them to the pipeline
// costs a decode to pdata here, then the exporter's marshal back to the same
// bytes. When the pipeline ends in a tailsift exporter, its router can take
// the bytes as they are, and sends them with its own queue, retries,
// failover, TLS and compression: the round trip is skipped.
//
// Kept spans that do not leave through the output batch still go to the
// pipeline as pdata: the spans the store gives back for a rescue or a
// retroactive keep (store.go, storerescue.go). Both reach the same exporter.

// EmitWire hands kept spans on as req, an encoded ExportTraceServiceRequest
// holding spans spans. req is the caller's again once it returns; a call
// given up on (CallWithin) keeps it.
type EmitWire func(ctx context.Context, req []byte, spans int) error

// SetEmitWire makes the shards hand their output batches to fn as bytes
// instead of to the Emit given to New as pdata. Call it before Start.
func (b *Buffer) SetEmitWire(fn EmitWire) {
	for _, s := range b.shards {
		s.deps.emitWire = fn
	}
}

// SetKeptWire makes the shards call fn with the scan of each request the
// wire output is about to hand on (a receiver's RED exemplars), from their
// goroutines; fn must not keep the batch. Kept spans that go out as pdata
// reach the Emit given to New instead. Call it before Start.
func (b *Buffer) SetKeptWire(fn func(*wire.Batch)) {
	for _, s := range b.shards {
		s.deps.keptWire = fn
	}
}

// startOutput points the wire output at the router of output::exporter,
// when it is set. The exporter must have started: the collector starts a
// pipeline's exporters before its processors and receivers.
func (b *Buffer) startOutput() error {
	id := b.cfg.Output.Exporter
	if id == nil {
		return nil
	}
	rt := router.Lookup(*id)
	if rt == nil {
		return fmt.Errorf("output::exporter: %q has not started: it must be a tailsift exporter configured under exporters and listed in this pipeline's exporters", id.String())
	}
	b.SetEmitWire(rt.RouteEncoded)
	return nil
}

// sendWire hands req, a request of the output batch holding spans spans, to
// the wire output, retrying as send does, and notes in d whether its
// traces were delivered (outDelivery). req is scanned once, when the KeptWire hook
// or the store needs it.
func (s *shard) sendWire(ctx context.Context, req []byte, spans int, d *outDelivery) error {
	b := &s.outScan
	b.Reset()
	scanned := false
	if s.deps.keptWire != nil || s.deps.store != nil {
		if err := wire.Scan(req, b); err != nil {
			// The batch was encoded here from scanned spans (FuzzScanAgreesWithPdata).
			s.deps.logger.Error("Kept spans' exemplars and delivery not recorded: the output request does not scan", zap.Error(err))
		} else {
			scanned = true
		}
	}
	if scanned && s.deps.keptWire != nil {
		s.deps.keptWire(b)
	}
	err := s.deliver(ctx, spans, func() error { return s.deps.emitWire(ctx, req, spans) })
	if d != nil {
		if scanned {
			d.handed(batchTraceIDs(b), err)
		} else {
			d.unknown = true
		}
	}
	return err
}

// batchTraceIDs returns the IDs of the traces of b, sorted, each once, as
// traceIDs does for pdata.
func batchTraceIDs(b *wire.Batch) [][16]byte {
	ids := make([][16]byte, 0, len(b.Spans))
	for i := range b.Spans {
		if id := b.Spans[i].TraceID; len(ids) == 0 || ids[len(ids)-1] != id {
			ids = append(ids, id)
		}
	}
	return sortedIDs(ids)
}
