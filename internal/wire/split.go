package wire

// A request too large to be taken in at once is cut into pieces at
// resource, scope and span boundaries: Split chooses the pieces from a
// scanned Batch, AppendPiece re-encodes each as a TracesData (which is also
// an ExportTraceServiceRequest) holding its spans under their resource and
// scope, as AppendResourceSpans does. Split reads only the Batch; what a
// piece costs is its own encoding, written straight from the spans' bytes.

// Piece is a run of consecutive spans of a scanned Batch, Spans[Start:End],
// and its encoding by AppendPiece: Size bytes holding Groups ResourceSpans,
// one for each run of spans of one scope (a piece scans to Groups scopes).
type Piece struct {
	Start, End   int
	Size, Groups int
}

// Spans is the number of spans of p.
func (p Piece) Spans() int { return p.End - p.Start }

// Split calls emit with consecutive pieces of b's spans, in order, together
// every span once: each piece as long as fits allows, at least one span.
// fits is asked about the piece with one more span: its size, spans and
// groups as AppendPiece would encode it; a span that does not fit in a
// piece of its own is a piece of its own. Scopes without spans are in no
// piece. Split stops at emit's first error and returns it.
func Split(b *Batch, fits func(size, spans, groups int) bool, emit func(Piece) error) error {
	spans, scopes := b.Spans, b.Scopes
	var p Piece
	// closed is the size of the piece's runs but the last, run the last
	// run's scope and runFields the size of its span fields.
	closed, run, runFields := 0, int32(-1), 0
	for i := range spans {
		sp := &spans[i]
		f := fieldSize(2, len(sp.Raw))
		size, groups := p.Size+ResourceSpansSize(&scopes[sp.Scope], f), p.Groups+1
		if sp.Scope == run {
			size, groups = closed+ResourceSpansSize(&scopes[run], runFields+f), p.Groups
		}
		if i > p.Start && !fits(size, i+1-p.Start, groups) {
			if err := emit(p); err != nil {
				return err
			}
			p = Piece{Start: i}
			closed, run, runFields = 0, -1, 0
			size, groups = ResourceSpansSize(&scopes[sp.Scope], f), 1
		}
		if sp.Scope != run {
			closed, run, runFields = p.Size, sp.Scope, 0
		}
		runFields += f
		p.End, p.Size, p.Groups = i+1, size, groups
	}
	if p.End > p.Start {
		return emit(p)
	}
	return nil
}

// AppendPiece appends to dst the TracesData holding p's spans of b (as
// Split chose p from b): p.Size bytes.
func AppendPiece(dst []byte, b *Batch, p Piece) []byte {
	spans := b.Spans[p.Start:p.End]
	for len(spans) > 0 {
		n := 1
		for n < len(spans) && spans[n].Scope == spans[0].Scope {
			n++
		}
		dst = appendRun(dst, &b.Scopes[spans[0].Scope], spans[:n])
		spans = spans[n:]
	}
	return dst
}

// appendRun is AppendResourceSpans for spans, all under sc, written from
// their Raw bytes.
func appendRun(dst []byte, sc *Scope, spans []Span) []byte {
	fields := 0
	for i := range spans {
		fields += fieldSize(2, len(spans[i].Raw))
	}
	dst = appendResourceSpansHead(dst, sc, fields)
	for i := range spans {
		dst = appendField(dst, 2, spans[i].Raw)
	}
	return appendResourceSpansTail(dst, sc)
}
