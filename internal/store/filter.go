package store

import (
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tailsift/tailsift/internal/wire"
)

// filter re-encodes the spans of an OTLP request whose trace IDs want
// accepts, one ResourceSpans per run of spans of one scope, appended to
// dst. A request that does not scan adds nothing and returns the error.
type filter struct {
	batch wire.Batch
	spans []byte
	ends  []int
}

func (f *filter) appendSpans(dst, req []byte, want func(id *[16]byte) bool) ([]byte, int, error) {
	dst, n, _, err := f.appendSpansMax(dst, req, want, 0)
	return dst, n, err
}

// appendSpansMax is appendSpans with dst bounded to maxBytes (none when 0):
// from the first span that would take dst past it, the spans want accepts
// are counted in omitted, not appended.
func (f *filter) appendSpansMax(dst, req []byte, want func(id *[16]byte) bool, maxBytes int) (_ []byte, n, omitted int, _ error) {
	if err := wire.Scan(req, &f.batch); err != nil {
		return dst, 0, 0, err
	}
	scope := int32(-1)
	fields := 0 // the span fields' bytes in f.spans
	flush := func() {
		if len(f.ends) > 0 {
			dst = wire.AppendResourceSpans(dst, &f.batch.Scopes[scope], f.spans, f.ends)
		}
		f.spans, f.ends, fields = f.spans[:0], f.ends[:0], 0
	}
	for i := range f.batch.Spans {
		sp := &f.batch.Spans[i]
		if !want(&sp.TraceID) {
			continue
		}
		if omitted > 0 {
			omitted++
			continue
		}
		field := protowire.SizeTag(2) + protowire.SizeBytes(len(sp.Raw))
		if maxBytes > 0 {
			if f.flushedSize(len(dst), scope, fields, sp, field) > maxBytes {
				omitted++
				continue
			}
		}
		if sp.Scope != scope {
			flush()
			scope = sp.Scope
		}
		f.spans = append(f.spans, sp.Raw...)
		f.ends = append(f.ends, len(f.spans))
		fields += field
		n++
	}
	flush()
	f.batch.Reset()
	return dst, n, omitted, nil
}

// count returns how many spans of req want accepts.
func (f *filter) count(req []byte, want func(id *[16]byte) bool) int {
	defer f.batch.Reset()
	if wire.Scan(req, &f.batch) != nil {
		return 0
	}
	n := 0
	for i := range f.batch.Spans {
		if want(&f.batch.Spans[i].TraceID) {
			n++
		}
	}
	return n
}

// flushedSize is the size of a request of n bytes once span sp (a field of
// field bytes) joins the spans gathered (of scope, fields bytes of them)
// and they are flushed into it.
func (f *filter) flushedSize(n int, scope int32, fields int, sp *wire.Span, field int) int {
	if sp.Scope == scope {
		return n + wire.ResourceSpansSize(&f.batch.Scopes[scope], fields+field)
	}
	if len(f.ends) > 0 {
		n += wire.ResourceSpansSize(&f.batch.Scopes[scope], fields)
	}
	return n + wire.ResourceSpansSize(&f.batch.Scopes[sp.Scope], field)
}
