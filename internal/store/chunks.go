package store

import (
	"github.com/cespare/xxhash/v2"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tailsift/tailsift/internal/wire"
)

// Reading a stored trace in bounded pieces, for the readers that send all
// of it on (a retroactive keep, a late-error rescue): Trace read the whole
// trace into one request, 32 MiB for a trace of 128 000 spans, which the
// reader then decoded whole into pdata.

// SpanSet holds spans by ID and a hash of their bytes: the spans a reader
// has passed on, so that it passes each once (a client's retry stores a
// span twice). 16 bytes a span, plus the map's overhead: 40-60 bytes a
// span as the table grows (54 measured at 128 000 spans,
// TestSpanSetBytesPerSpan), under a quarter of a typical span's OTLP bytes.
type SpanSet map[spanKey]struct{}

type spanKey struct {
	id [8]byte
	h  uint64
}

func keyOf(id [8]byte, raw []byte) spanKey { return spanKey{id, xxhash.Sum64(raw)} }

// Add adds the span with ID id and bytes raw, and reports whether it was
// not in s.
func (s SpanSet) Add(id [8]byte, raw []byte) bool {
	k := keyOf(id, raw)
	if _, ok := s[k]; ok {
		return false
	}
	s[k] = struct{}{}
	return true
}

// Delete removes the span with ID id and bytes raw.
func (s SpanSet) Delete(id [8]byte, raw []byte) { delete(s, keyOf(id, raw)) }

// TraceInfo returns the decision of trace id as Trace does, without reading
// its spans (Request is nil, Spans 0). It returns ErrNotFound for a trace
// the index does not hold.
func (s *Store) TraceInfo(id [16]byte) (Trace, error) {
	var t Trace
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.idx.get(id)
	if !ok {
		return t, ErrNotFound
	}
	t.Decision, t.Decided, t.Delivered = s.idx.decision(e), e.flags&flagDecided != 0, e.flags&flagDelivered != 0
	return t, nil
}

// TraceChunks calls f with the stored spans of trace id, in the order
// recorded, as OTLP requests (TracesData) of at most maxBytes each (a span
// larger than that goes alone), reading each block once. With seen, it
// leaves out the spans in seen (by ID and bytes) and adds those it passes
// to f; when f returns an error, the spans of that call are taken out of
// seen again, and TraceChunks returns the error. req is valid during the
// call only. It returns the number of spans f took.
//
// It holds one request of maxBytes, a store block's buffers while it reads
// the block, and seen, whatever the trace's size.
func (s *Store) TraceChunks(id [16]byte, maxBytes int, seen SpanSet, f func(req []byte, spans int) error) (int, error) {
	in := func(x *[16]byte) bool { return *x == id }
	var fl filter
	c := chunker{max: maxBytes, seen: seen, f: f}
	err := s.eachRequest([][16]byte{id}, in, func(req []byte) error { return fl.appendChunks(&c, req, in) })
	if err == nil {
		err = c.emit()
	}
	return c.total, err
}

// chunker gathers spans into requests of at most max bytes for
// TraceChunks.
type chunker struct {
	max  int
	seen SpanSet
	f    func(req []byte, spans int) error
	buf  []byte
	n    int       // spans in buf and in the filter's pending group
	keys []spanKey // theirs, added to seen
	// total counts the spans f took.
	total int
}

// emit hands the spans gathered to f and starts again empty.
func (c *chunker) emit() error {
	if c.n == 0 {
		return nil
	}
	err := c.f(c.buf, c.n)
	if err != nil {
		for _, k := range c.keys {
			delete(c.seen, k)
		}
	} else {
		c.total += c.n
	}
	c.buf, c.n, c.keys = c.buf[:0], 0, c.keys[:0]
	return err
}

// take reports whether the span is to be passed on, and marks it seen.
func (c *chunker) take(sp *wire.Span) bool {
	if c.seen == nil {
		return true
	}
	k := keyOf(sp.SpanID, sp.Raw)
	if _, ok := c.seen[k]; ok {
		return false
	}
	c.seen[k] = struct{}{}
	c.keys = append(c.keys, k)
	return true
}

// appendChunks adds the spans of req that want accepts to c, one
// ResourceSpans per run of spans of one scope, handing c's request on
// (emit) whenever the next span would take it past c.max. A request that
// does not scan adds nothing (as in Requests: the buffer scanned every
// stored request when it accepted it).
func (f *filter) appendChunks(c *chunker, req []byte, want func(id *[16]byte) bool) error {
	if wire.Scan(req, &f.batch) != nil {
		return nil
	}
	defer f.batch.Reset()
	scope := int32(-1)
	fields := 0 // the span fields' bytes in f.spans
	flush := func() {
		if len(f.ends) > 0 {
			c.buf = wire.AppendResourceSpans(c.buf, &f.batch.Scopes[scope], f.spans, f.ends)
		}
		f.spans, f.ends, fields, scope = f.spans[:0], f.ends[:0], 0, -1
	}
	for i := range f.batch.Spans {
		sp := &f.batch.Spans[i]
		if !want(&sp.TraceID) {
			continue
		}
		field := protowire.SizeTag(2) + protowire.SizeBytes(len(sp.Raw))
		if c.n > 0 {
			if f.flushedSize(len(c.buf), scope, fields, sp, field) > c.max {
				flush()
				if err := c.emit(); err != nil {
					return err
				}
			}
		}
		if !c.take(sp) {
			continue
		}
		if sp.Scope != scope {
			flush()
			scope = sp.Scope
		}
		f.spans = append(f.spans, sp.Raw...)
		f.ends = append(f.ends, len(f.spans))
		fields += field
		c.n++
	}
	flush()
	return nil
}
