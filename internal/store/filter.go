package store

import (
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
	if err := wire.Scan(req, &f.batch); err != nil {
		return dst, 0, err
	}
	n := 0
	scope := int32(-1)
	flush := func() {
		if len(f.ends) > 0 {
			dst = wire.AppendResourceSpans(dst, &f.batch.Scopes[scope], f.spans, f.ends)
		}
		f.spans, f.ends = f.spans[:0], f.ends[:0]
	}
	for i := range f.batch.Spans {
		sp := &f.batch.Spans[i]
		if !want(&sp.TraceID) {
			continue
		}
		if sp.Scope != scope {
			flush()
			scope = sp.Scope
		}
		f.spans = append(f.spans, sp.Raw...)
		f.ends = append(f.ends, len(f.spans))
		n++
	}
	flush()
	f.batch.Reset()
	return dst, n, nil
}
