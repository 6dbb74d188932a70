package wire

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// flatSpan is a span with its resource and scope, each as pdata encodes
// it, for comparing requests span by span.
type flatSpan struct {
	resource, resourceSchema, scope, scopeSchema, span string
}

// flatten decodes buf with pdata, as the otlp receiver does (which reads
// the deprecated instrumentation_library_spans as scope spans), and lists
// its spans in order, each with its resource and scope.
func flatten(t testing.TB, buf []byte) []flatSpan {
	t.Helper()
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalProto(buf); err != nil {
		t.Fatalf("pdata refuses: %v", err)
	}
	td := req.Traces()
	var m ptrace.ProtoMarshaler
	one := func(f func(ptrace.Traces)) string {
		td := ptrace.NewTraces()
		f(td)
		b, err := m.MarshalTraces(td)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		return string(b)
	}
	var out []flatSpan
	for _, rs := range td.ResourceSpans().All() {
		res := one(func(td ptrace.Traces) { rs.Resource().CopyTo(td.ResourceSpans().AppendEmpty().Resource()) })
		for _, ss := range rs.ScopeSpans().All() {
			scope := one(func(td ptrace.Traces) {
				ss.Scope().CopyTo(td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Scope())
			})
			for _, sp := range ss.Spans().All() {
				span := one(func(td ptrace.Traces) {
					sp.CopyTo(td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty())
				})
				out = append(out, flatSpan{res, rs.SchemaUrl(), scope, ss.SchemaUrl(), span})
			}
		}
	}
	return out
}

// checkSplit splits the scanned buf with fits and checks the pieces: each
// encodes to its Size and Groups, decodes with pdata, and fits unless it is
// one span; together they are buf's spans, in order, each under its
// resource and scope. It returns the pieces.
func checkSplit(t testing.TB, buf []byte, b *Batch, fits func(size, spans, groups int) bool) []Piece {
	t.Helper()
	var pieces []Piece
	var got []flatSpan
	next := 0
	err := Split(b, fits, func(p Piece) error {
		if p.Start != next || p.End <= p.Start {
			t.Fatalf("piece %d: spans [%d, %d) after %d", len(pieces), p.Start, p.End, next)
		}
		next = p.End
		enc := AppendPiece(nil, b, p)
		if len(enc) != p.Size {
			t.Fatalf("piece %d: %d bytes, Size %d", len(pieces), len(enc), p.Size)
		}
		if p.Spans() > 1 && !fits(p.Size, p.Spans(), p.Groups) {
			t.Fatalf("piece %d of %d spans, %d bytes in %d groups does not fit", len(pieces), p.Spans(), p.Size, p.Groups)
		}
		var pb Batch
		if err := Scan(enc, &pb); err != nil {
			t.Fatalf("piece %d does not scan: %v", len(pieces), err)
		}
		if len(pb.Spans) != p.Spans() || len(pb.Scopes) != p.Groups {
			t.Fatalf("piece %d scans to %d spans in %d scopes, want %d in %d", len(pieces), len(pb.Spans), len(pb.Scopes), p.Spans(), p.Groups)
		}
		got = append(got, flatten(t, enc)...)
		pieces = append(pieces, p)
		return nil
	})
	if err != nil {
		t.Fatalf("Split: %v", err)
	}
	if next != len(b.Spans) {
		t.Fatalf("pieces end at span %d of %d", next, len(b.Spans))
	}
	want := flatten(t, buf)
	if len(want) != len(got) {
		t.Fatalf("pieces hold %d spans, the request %d", len(got), len(want))
	}
	for i := range want {
		if want[i] != got[i] {
			t.Fatalf("span %d differs in the pieces (resource, scope or span)", i)
		}
	}
	return pieces
}

// manyGroups is a request of resources × scopes groups of spans spans of
// about pad bytes each.
func manyGroups(resources, scopes, spans, pad int) ptrace.Traces {
	td := ptrace.NewTraces()
	p := strings.Repeat("x", pad)
	for r := range resources {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", fmt.Sprintf("svc-%d", r))
		if r%2 == 1 {
			rs.SetSchemaUrl("https://opentelemetry.io/schemas/1.26.0")
		}
		for s := range scopes {
			ss := rs.ScopeSpans().AppendEmpty()
			ss.Scope().SetName(fmt.Sprintf("lib-%d", s))
			if s%2 == 0 {
				ss.SetSchemaUrl("https://opentelemetry.io/schemas/1.25.0")
			}
			for k := range spans {
				sp := ss.Spans().AppendEmpty()
				sp.SetTraceID([16]byte{byte(r + 1), byte(s), byte(k)})
				sp.SetSpanID([8]byte{byte(k + 1), byte(s), byte(r)})
				sp.Attributes().PutStr("pad", p)
			}
		}
		rs.ScopeSpans().AppendEmpty() // a scope without spans is in no piece
	}
	return td
}

func TestSplitPieces(t *testing.T) {
	buf := marshal(t, manyGroups(3, 3, 20, 100))
	var b Batch
	require.NoError(t, Scan(buf, &b))
	require.Len(t, b.Spans, 180)

	t.Run("one piece when all fits", func(t *testing.T) {
		pieces := checkSplit(t, buf, &b, func(int, int, int) bool { return true })
		require.Len(t, pieces, 1)
		assert.Equal(t, Piece{Start: 0, End: 180, Size: pieces[0].Size, Groups: 9}, pieces[0])
	})
	t.Run("by size", func(t *testing.T) {
		const limit = 2000
		pieces := checkSplit(t, buf, &b, func(size, _, _ int) bool { return size <= limit })
		require.Greater(t, len(pieces), 10)
		for i, p := range pieces[:len(pieces)-1] {
			// Each piece is as long as the limit allows: the next span
			// would have taken it over.
			more := checkOne(t, &b, p.Start, p.End+1)
			assert.Greater(t, more.Size, limit, "piece %d could have held one more span", i)
		}
	})
	t.Run("by spans and groups", func(t *testing.T) {
		pieces := checkSplit(t, buf, &b, func(_, spans, groups int) bool { return spans <= 7 && groups <= 2 })
		for _, p := range pieces {
			assert.LessOrEqual(t, p.Spans(), 7)
			assert.LessOrEqual(t, p.Groups, 2)
		}
	})
	t.Run("a span too large alone is a piece of its own", func(t *testing.T) {
		pieces := checkSplit(t, buf, &b, func(size, _, _ int) bool { return size <= 10 })
		assert.Len(t, pieces, 180)
		for _, p := range pieces {
			assert.Equal(t, 1, p.Spans())
			assert.Equal(t, 1, p.Groups)
		}
	})
	t.Run("stops at emit's error", func(t *testing.T) {
		stop := errors.New("stop")
		calls := 0
		err := Split(&b, func(_, spans, _ int) bool { return spans <= 10 }, func(Piece) error {
			calls++
			if calls == 3 {
				return stop
			}
			return nil
		})
		assert.ErrorIs(t, err, stop)
		assert.Equal(t, 3, calls)
	})
	t.Run("no spans, no piece", func(t *testing.T) {
		var empty Batch
		require.NoError(t, Scan(marshal(t, manyGroups(2, 2, 0, 0)), &empty))
		err := Split(&empty, func(int, int, int) bool { return true }, func(Piece) error {
			t.Fatal("a piece without spans")
			return nil
		})
		assert.NoError(t, err)
	})
}

// checkOne is the piece of spans [start, end) of b as Split would size it.
func checkOne(t *testing.T, b *Batch, start, end int) Piece {
	t.Helper()
	sub := Batch{Spans: b.Spans[start:end], Scopes: b.Scopes}
	var got Piece
	require.NoError(t, Split(&sub, func(int, int, int) bool { return true }, func(p Piece) error { got = p; return nil }))
	got.Start, got.End = start, end
	require.Len(t, AppendPiece(nil, &sub, Piece{Start: 0, End: end - start, Size: got.Size, Groups: got.Groups}), got.Size)
	return got
}

// FuzzSplit checks the splitter on what Scan accepts: the pieces' spans
// together are the request's, in order, each under its own resource and
// scope as pdata decodes them; each piece decodes with pdata, is the size
// Split said, and is within the limit unless it is a single span.
func FuzzSplit(f *testing.F) {
	addScanSeeds(f)
	f.Add(marshal(f, manyGroups(2, 2, 3, 10)))
	f.Fuzz(func(t *testing.T, data []byte) {
		var b Batch
		if Scan(data, &b) != nil {
			return
		}
		for _, limit := range []int{1, len(data) / 4, len(data) / 2, len(data) + 1} {
			checkSplit(t, data, &b, func(size, _, _ int) bool { return size <= limit })
		}
		checkSplit(t, data, &b, func(_, spans, groups int) bool { return spans <= 2 && groups <= 1 })
	})
}
