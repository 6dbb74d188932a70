package wire

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/protobuf/encoding/protowire"
)

// ---------------------------------------------------------------------------
// Building test data with pdata.

func tid(b byte) pcommon.TraceID {
	var id pcommon.TraceID
	for i := range id {
		id[i] = b + byte(i)
	}
	return id
}

func sid(b byte) pcommon.SpanID {
	var id pcommon.SpanID
	for i := range id {
		id[i] = b + byte(i)
	}
	return id
}

// spanOpts describes one span of a test fixture; zero fields stay unset.
type spanOpts struct {
	trace      pcommon.TraceID
	span       pcommon.SpanID
	parent     pcommon.SpanID
	name       string
	traceState string
	kind       ptrace.SpanKind
	flags      uint32
	start, end uint64
	status     ptrace.StatusCode
	statusMsg  string
	attrs      int
	events     int
	links      int
}

func addSpan(ss ptrace.ScopeSpans, o spanOpts) ptrace.Span {
	sp := ss.Spans().AppendEmpty()
	sp.SetTraceID(o.trace)
	sp.SetSpanID(o.span)
	sp.SetParentSpanID(o.parent)
	sp.SetName(o.name)
	sp.TraceState().FromRaw(o.traceState)
	sp.SetKind(o.kind)
	sp.SetFlags(o.flags)
	sp.SetStartTimestamp(pcommon.Timestamp(o.start))
	sp.SetEndTimestamp(pcommon.Timestamp(o.end))
	sp.Status().SetCode(o.status)
	sp.Status().SetMessage(o.statusMsg)
	for i := range o.attrs {
		k := fmt.Sprintf("attr.%d", i)
		switch i % 5 {
		case 0:
			sp.Attributes().PutStr(k, strings.Repeat("v", 3+i))
		case 1:
			sp.Attributes().PutInt(k, int64(i)*1000)
		case 2:
			sp.Attributes().PutBool(k, i%2 == 0)
		case 3:
			sp.Attributes().PutDouble(k, float64(i)/3)
		case 4:
			s := sp.Attributes().PutEmptySlice(k)
			s.AppendEmpty().SetStr("a")
			s.AppendEmpty().SetInt(2)
			m := s.AppendEmpty().SetEmptyMap()
			m.PutStr("nested", "kv")
			s.AppendEmpty().SetEmptyBytes().FromRaw([]byte{0, 1, 2})
		}
	}
	sp.SetDroppedAttributesCount(uint32(o.attrs) % 3)
	for i := range o.events {
		ev := sp.Events().AppendEmpty()
		ev.SetName(fmt.Sprintf("event-%d", i))
		ev.SetTimestamp(pcommon.Timestamp(o.start + uint64(i) + 1))
		ev.Attributes().PutStr("exception.message", "boom")
		ev.SetDroppedAttributesCount(uint32(i))
	}
	sp.SetDroppedEventsCount(uint32(o.events))
	for i := range o.links {
		l := sp.Links().AppendEmpty()
		l.SetTraceID(tid(byte(0x90 + i)))
		l.SetSpanID(sid(byte(0xa0 + i)))
		l.TraceState().FromRaw("ot=th:8,linked=yes")
		l.Attributes().PutInt("link.index", int64(i))
		l.SetFlags(1)
		l.SetDroppedAttributesCount(2)
	}
	sp.SetDroppedLinksCount(uint32(o.links))
	return sp
}

func putResourceAttrs(r pcommon.Resource, n int) {
	for i := range n {
		r.Attributes().PutStr(fmt.Sprintf("res.%d", i), fmt.Sprintf("value-%d", i))
	}
}

// richTraces has several resources and scopes, every span field, an empty
// scope and a resource without scopes (both carry no span).
func richTraces() ptrace.Traces {
	td := ptrace.NewTraces()

	rs := td.ResourceSpans().AppendEmpty()
	rs.SetSchemaUrl("https://opentelemetry.io/schemas/1.26.0")
	rs.Resource().Attributes().PutStr("service.name", "checkout")
	putResourceAttrs(rs.Resource(), 8)
	rs.Resource().SetDroppedAttributesCount(4)

	ss := rs.ScopeSpans().AppendEmpty()
	ss.SetSchemaUrl("https://opentelemetry.io/schemas/1.25.0")
	ss.Scope().SetName("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp")
	ss.Scope().SetVersion("0.60.0")
	ss.Scope().Attributes().PutStr("scope.attr", "x")
	ss.Scope().SetDroppedAttributesCount(1)
	addSpan(ss, spanOpts{
		trace: tid(1), span: sid(1), name: "GET /cart", kind: ptrace.SpanKindServer,
		flags: 0x301, start: 1_700_000_000_000_000_000, end: 1_700_000_000_250_000_000,
		status: ptrace.StatusCodeError, statusMsg: "internal error", attrs: 12, events: 2, links: 1,
		traceState: "ot=th:8;rv:abcdef01234567,congo=t61rcWkgMzE",
	})
	addSpan(ss, spanOpts{
		trace: tid(1), span: sid(2), parent: sid(1), name: "SELECT cart", kind: ptrace.SpanKindClient,
		start: 1_700_000_000_010_000_000, end: 1_700_000_000_020_000_000,
		status: ptrace.StatusCodeOk, attrs: 3, traceState: "ot=th:8",
	})
	addSpan(ss, spanOpts{
		trace: tid(1), span: sid(3), parent: sid(1), name: "render",
		start: 1_700_000_000_030_000_000, end: 1_700_000_000_040_000_000,
	})

	ss = rs.ScopeSpans().AppendEmpty() // no schema URL, no scope attributes
	ss.Scope().SetName("manual")
	addSpan(ss, spanOpts{
		trace: tid(2), span: sid(4), name: strings.Repeat("long-name-", 40), kind: ptrace.SpanKindInternal,
		start: 5, end: 4, status: ptrace.StatusCodeOk, attrs: 40, events: 20, links: 5,
	})

	rs.ScopeSpans().AppendEmpty().Scope().SetName("no spans here")

	rs = td.ResourceSpans().AppendEmpty() // empty resource, empty scope
	ss = rs.ScopeSpans().AppendEmpty()
	addSpan(ss, spanOpts{trace: tid(3), span: sid(5), name: "a", parent: sid(9), kind: ptrace.SpanKindProducer})
	addSpan(ss, spanOpts{trace: tid(4), span: sid(6), name: "", kind: ptrace.SpanKindConsumer, end: 1})

	td.ResourceSpans().AppendEmpty().Resource().Attributes().PutStr("service.name", "idle")

	rs = td.ResourceSpans().AppendEmpty()
	rs.SetSchemaUrl("https://example.com/only-resource-schema")
	putResourceAttrs(rs.Resource(), 30) // a Resource longer than 127 bytes
	ss = rs.ScopeSpans().AppendEmpty()
	ss.SetSchemaUrl(strings.Repeat("s", 200))
	addSpan(ss, spanOpts{trace: tid(5), span: sid(7), parent: sid(8), name: "big", attrs: 600, start: 1, end: 1 << 62})
	return td
}

func singleSpanTraces() ptrace.Traces {
	td := ptrace.NewTraces()
	ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
	addSpan(ss, spanOpts{trace: tid(0x10), span: sid(0x20), name: "only", start: 10, end: 20})
	return td
}

// manyScopesTraces has 50 resources of 3 scopes each, to exercise scope indexes.
func manyScopesTraces() ptrace.Traces {
	td := ptrace.NewTraces()
	n := byte(0)
	for r := range 50 {
		rs := td.ResourceSpans().AppendEmpty()
		putResourceAttrs(rs.Resource(), r%4)
		for s := range 3 {
			ss := rs.ScopeSpans().AppendEmpty()
			ss.Scope().SetName(fmt.Sprintf("scope-%d-%d", r, s))
			for range (r + s) % 3 {
				n++
				addSpan(ss, spanOpts{
					trace: tid(n), span: sid(n), name: fmt.Sprint(n), start: uint64(n), end: uint64(n) * 2,
					status: ptrace.StatusCode(int(n) % 3), attrs: int(n) % 4,
				})
			}
		}
	}
	return td
}

// ---------------------------------------------------------------------------
// Independent protowire helpers (they do not use the code under test).

// field returns the value of the last occurrence of the length-delimited
// field num in msg, nil when absent.
func field(t testing.TB, msg []byte, num protowire.Number) []byte {
	t.Helper()
	var out []byte
	for len(msg) > 0 {
		n, typ, l := protowire.ConsumeTag(msg)
		require.GreaterOrEqual(t, l, 0)
		msg = msg[l:]
		if n == num && typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(msg)
			require.GreaterOrEqual(t, m, 0)
			out = v
			msg = msg[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(n, typ, msg)
		require.GreaterOrEqual(t, m, 0)
		msg = msg[m:]
	}
	return out
}

func path(t testing.TB, msg []byte, nums ...protowire.Number) []byte {
	t.Helper()
	for _, n := range nums {
		msg = field(t, msg, n)
		if msg == nil {
			return nil
		}
	}
	return msg
}

func marshal(t testing.TB, td ptrace.Traces) []byte {
	t.Helper()
	var m ptrace.ProtoMarshaler
	buf, err := m.MarshalTraces(td)
	require.NoError(t, err)
	return buf
}

func unmarshal(t testing.TB, buf []byte) ptrace.Traces {
	t.Helper()
	var u ptrace.ProtoUnmarshaler
	td, err := u.UnmarshalTraces(buf)
	require.NoError(t, err)
	return td
}

func toJSON(t testing.TB, td ptrace.Traces) string {
	t.Helper()
	var m ptrace.JSONMarshaler
	buf, err := m.MarshalTraces(td)
	require.NoError(t, err)
	return string(buf)
}

// encodings are the two messages Scan accepts.
var encodings = []struct {
	name string
	enc  func(testing.TB, ptrace.Traces) []byte
}{
	{"TracesData", marshal},
	{"ExportTraceServiceRequest", func(t testing.TB, td ptrace.Traces) []byte {
		t.Helper()
		buf, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
		require.NoError(t, err)
		return buf
	}},
}

var fixtures = []struct {
	name  string
	build func() ptrace.Traces
}{
	{"rich", richTraces},
	{"single span", singleSpanTraces},
	{"many scopes", manyScopesTraces},
	{"empty", ptrace.NewTraces},
	{"resource without scopes", func() ptrace.Traces {
		td := ptrace.NewTraces()
		td.ResourceSpans().AppendEmpty().Resource().Attributes().PutStr("k", "v")
		return td
	}},
}

// expected is what Scan must record for one pdata span.
type expected struct {
	span  ptrace.Span
	scope int32
	raw   []byte
	frame Scope
}

// expectations walks td in order; a ScopeSpans without spans gets no index.
func expectations(t testing.TB, td ptrace.Traces) []expected {
	t.Helper()
	var out []expected
	scope := int32(0)
	for i := range td.ResourceSpans().Len() {
		rs := td.ResourceSpans().At(i)

		only := ptrace.NewTraces()
		ors := only.ResourceSpans().AppendEmpty()
		rs.Resource().CopyTo(ors.Resource())
		resBytes := path(t, marshal(t, only), 1, 1)

		for j := range rs.ScopeSpans().Len() {
			ss := rs.ScopeSpans().At(j)
			if ss.Spans().Len() == 0 {
				continue
			}
			only := ptrace.NewTraces()
			oss := only.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
			ss.Scope().CopyTo(oss.Scope())
			frame := Scope{
				Resource:          resBytes,
				ResourceSchemaURL: []byte(rs.SchemaUrl()),
				Scope:             path(t, marshal(t, only), 1, 2, 1),
				ScopeSchemaURL:    []byte(ss.SchemaUrl()),
			}
			for k := range ss.Spans().Len() {
				sp := ss.Spans().At(k)
				only := ptrace.NewTraces()
				sp.CopyTo(only.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty())
				out = append(out, expected{
					span:  sp,
					scope: scope,
					raw:   path(t, marshal(t, only), 1, 2, 2),
					frame: frame,
				})
			}
			scope++
		}
	}
	return out
}

func statusOf(c ptrace.StatusCode) uint8 {
	switch c {
	case ptrace.StatusCodeOk:
		return StatusOK
	case ptrace.StatusCodeError:
		return StatusError
	}
	return StatusUnset
}

// within reports whether sub aliases memory inside buf.
func within(sub, buf []byte) bool {
	if len(sub) == 0 {
		return true
	}
	if len(buf) == 0 {
		return false
	}
	s := uintptr(unsafe.Pointer(unsafe.SliceData(sub)))
	b := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	return s >= b && s+uintptr(len(sub)) <= b+uintptr(len(buf))
}

func sameBytes(t testing.TB, want, got []byte, what string) {
	t.Helper()
	assert.Equal(t, want == nil, got == nil, "%s: presence (want nil=%v)", what, want == nil)
	assert.True(t, bytes.Equal(want, got), "%s: want %x, got %x", what, want, got)
}

// ---------------------------------------------------------------------------
// Tests.

func TestScanRecordsEveryField(t *testing.T) {
	for _, fx := range fixtures {
		for _, enc := range encodings {
			t.Run(fx.name+"/"+enc.name, func(t *testing.T) {
				td := fx.build()
				buf := enc.enc(t, td)
				want := expectations(t, td)

				var b Batch
				require.NoError(t, Scan(buf, &b))
				require.Len(t, b.Spans, len(want))
				require.Equal(t, td.SpanCount(), len(b.Spans))

				nscopes := 0
				if len(want) > 0 {
					nscopes = int(want[len(want)-1].scope) + 1
				}
				require.Len(t, b.Scopes, nscopes, "scopes without spans are not recorded")

				for i, w := range want {
					got := b.Spans[i]
					sp := w.span
					assert.Equal(t, [16]byte(sp.TraceID()), got.TraceID, "span %d trace id", i)
					assert.Equal(t, [8]byte(sp.SpanID()), got.SpanID, "span %d span id", i)
					assert.Equal(t, !sp.ParentSpanID().IsEmpty(), got.HasParent, "span %d has parent", i)
					assert.Equal(t, statusOf(sp.Status().Code()), got.Status, "span %d status", i)
					assert.Equal(t, uint64(sp.StartTimestamp()), got.Start, "span %d start", i)
					assert.Equal(t, uint64(sp.EndTimestamp()), got.End, "span %d end", i)
					assert.Equal(t, sp.Name(), string(got.Name), "span %d name", i)
					assert.Equal(t, sp.Flags(), got.Flags, "span %d flags", i)
					assert.Equal(t, sp.TraceState().AsRaw(), string(got.TraceState), "span %d tracestate", i)
					if sp.TraceState().AsRaw() == "" {
						assert.Nil(t, got.TraceState, "span %d: absent tracestate is nil", i)
					}
					assert.Equal(t, w.scope, got.Scope, "span %d scope index", i)
					assert.Equal(t, w.raw, got.Raw, "span %d raw bytes", i)
					assert.True(t, within(got.Raw, buf), "span %d raw aliases the input", i)
					assert.True(t, got.ValidIDs(), "span %d ids", i)

					sc := b.Scopes[got.Scope]
					sameBytes(t, w.frame.Resource, sc.Resource, fmt.Sprintf("span %d resource", i))
					sameBytes(t, nilIfEmpty(w.frame.ResourceSchemaURL), sc.ResourceSchemaURL, fmt.Sprintf("span %d resource schema", i))
					sameBytes(t, w.frame.Scope, sc.Scope, fmt.Sprintf("span %d scope", i))
					sameBytes(t, nilIfEmpty(w.frame.ScopeSchemaURL), sc.ScopeSchemaURL, fmt.Sprintf("span %d scope schema", i))
				}
			})
		}
	}
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

func TestScanBothEncodingsAgree(t *testing.T) {
	td := richTraces()
	a := encodings[0].enc(t, td)
	e := encodings[1].enc(t, td)
	var ba, be Batch
	require.NoError(t, Scan(a, &ba))
	require.NoError(t, Scan(e, &be))
	assert.Equal(t, ba, be)
}

func TestScanAppendsAndReset(t *testing.T) {
	buf := marshal(t, richTraces())
	var b Batch
	require.NoError(t, Scan(buf, &b))
	n, ns := len(b.Spans), len(b.Scopes)

	// A second Scan appends; scope indexes keep pointing at the right scope.
	require.NoError(t, Scan(buf, &b))
	require.Len(t, b.Spans, 2*n)
	require.Len(t, b.Scopes, 2*ns)
	for i := range n {
		assert.Equal(t, b.Spans[i].Scope+int32(ns), b.Spans[n+i].Scope)
		assert.Equal(t, b.Spans[i].SpanID, b.Spans[n+i].SpanID)
	}

	c := cap(b.Spans)
	b.Reset()
	assert.Empty(t, b.Spans)
	assert.Empty(t, b.Scopes)
	assert.Equal(t, c, cap(b.Spans), "Reset keeps capacity")
	full := b.Spans[:c]
	assert.Nil(t, full[0].Raw, "Reset clears references into old buffers")

	require.NoError(t, Scan(buf, &b))
	assert.Len(t, b.Spans, n)
	allocs := testing.AllocsPerRun(20, func() {
		b.Reset()
		_ = Scan(buf, &b)
	})
	assert.Zero(t, allocs, "Scan into a grown Batch allocates nothing")
}

// TestScanFieldOrder hand-encodes messages whose fields come in unusual order
// and carry unknown fields of every wire type, which Scan must skip.
func TestScanFieldOrder(t *testing.T) {
	unknown := func(b []byte) []byte {
		b = protowire.AppendTag(b, 99, protowire.VarintType)
		b = protowire.AppendVarint(b, 1<<40)
		b = protowire.AppendTag(b, 98, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, 7)
		b = protowire.AppendTag(b, 97, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, 7)
		b = protowire.AppendTag(b, 96, protowire.BytesType)
		b = protowire.AppendBytes(b, []byte("unknown"))
		return b
	}
	// Groups are deprecated; pdata misreads them (it ends a group at its
	// first scalar field) and then refuses the message. Scan refuses them.
	group := func(b []byte) []byte {
		b = protowire.AppendTag(b, 95, protowire.StartGroupType)
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, 3)
		return protowire.AppendTag(b, 95, protowire.EndGroupType)
	}
	status := unknown(nil)
	status = protowire.AppendTag(status, 3, protowire.VarintType)
	status = protowire.AppendVarint(status, 2)
	status = protowire.AppendTag(status, 2, protowire.BytesType)
	status = protowire.AppendString(status, "msg after code")

	var span []byte
	span = protowire.AppendTag(span, 15, protowire.BytesType)
	span = protowire.AppendBytes(span, status)
	span = protowire.AppendTag(span, 8, protowire.Fixed64Type)
	span = protowire.AppendFixed64(span, 200)
	span = unknown(span)
	span = protowire.AppendTag(span, 5, protowire.BytesType)
	span = protowire.AppendString(span, "reordered")
	span = protowire.AppendTag(span, 4, protowire.BytesType)
	span = protowire.AppendBytes(span, sidb(0x40))
	span = protowire.AppendTag(span, 2, protowire.BytesType)
	span = protowire.AppendBytes(span, sidb(0x30))
	span = protowire.AppendTag(span, 7, protowire.Fixed64Type)
	span = protowire.AppendFixed64(span, 100)
	span = protowire.AppendTag(span, 1, protowire.BytesType)
	span = protowire.AppendBytes(span, tidb(0x20))
	span = protowire.AppendTag(span, 3, protowire.BytesType)
	span = protowire.AppendString(span, "ot=th:c")

	var ss []byte
	ss = protowire.AppendTag(ss, 3, protowire.BytesType)
	ss = protowire.AppendString(ss, "scope-schema")
	ss = protowire.AppendTag(ss, 2, protowire.BytesType)
	ss = protowire.AppendBytes(ss, span)
	ss = unknown(ss)
	ss = protowire.AppendTag(ss, 1, protowire.BytesType)
	ss = protowire.AppendBytes(ss, []byte{0x0a, 0x01, 'x'}) // scope name "x"

	var rs []byte
	rs = protowire.AppendTag(rs, 2, protowire.BytesType)
	rs = protowire.AppendBytes(rs, ss)
	rs = unknown(rs)
	rs = protowire.AppendTag(rs, 3, protowire.BytesType)
	rs = protowire.AppendString(rs, "resource-schema")
	rs = protowire.AppendTag(rs, 1, protowire.BytesType)
	rs = protowire.AppendBytes(rs, []byte{}) // empty but present resource

	msg := unknown(nil)
	msg = protowire.AppendTag(msg, 1, protowire.BytesType)
	msg = protowire.AppendBytes(msg, rs)
	msg = unknown(msg)

	var b Batch
	require.NoError(t, Scan(msg, &b))
	require.Len(t, b.Spans, 1)
	require.Len(t, b.Scopes, 1)
	s := b.Spans[0]
	assert.Equal(t, [16]byte(tid(0x20)), s.TraceID)
	assert.Equal(t, [8]byte(sid(0x30)), s.SpanID)
	assert.True(t, s.HasParent)
	assert.Equal(t, StatusError, s.Status)
	assert.Equal(t, uint64(100), s.Start)
	assert.Equal(t, uint64(200), s.End)
	assert.Equal(t, "reordered", string(s.Name))
	assert.Equal(t, "ot=th:c", string(s.TraceState))
	assert.Equal(t, span, s.Raw)
	sc := b.Scopes[0]
	assert.NotNil(t, sc.Resource, "an empty resource that is present is recorded as non-nil")
	assert.Empty(t, sc.Resource)
	assert.Equal(t, "resource-schema", string(sc.ResourceSchemaURL))
	assert.Equal(t, []byte{0x0a, 0x01, 'x'}, sc.Scope)
	assert.Equal(t, "scope-schema", string(sc.ScopeSchemaURL))

	// pdata agrees on the message.
	td := unmarshal(t, msg)
	for name, buf := range map[string][]byte{
		"group in the request": group(append([]byte(nil), msg...)),
		"group in the span":    inSpan(group(append([]byte(nil), span...))),
	} {
		var b2 Batch
		require.ErrorIs(t, Scan(buf, &b2), ErrMalformed, name)
		_, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(buf)
		require.Error(t, err, name)
	}
	sp := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	assert.Equal(t, "reordered", sp.Name())
	assert.Equal(t, ptrace.StatusCodeError, sp.Status().Code())
	assert.Equal(t, "x", td.ResourceSpans().At(0).ScopeSpans().At(0).Scope().Name())
}

func TestScanSpanFields(t *testing.T) {
	bytesF := func(num protowire.Number, v []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), v)
	}
	statusF := func(code uint64) []byte {
		st := protowire.AppendVarint(protowire.AppendTag(nil, 3, protowire.VarintType), code)
		return bytesF(15, st)
	}
	ids := append(bytesF(1, tidb(1)), bytesF(2, sidb(1))...)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	zero8 := make([]byte, 8)

	tests := []struct {
		name   string
		span   []byte
		parent bool
		status uint8
		valid  bool
		ts     []byte
	}{
		{name: "ids only", span: ids, valid: true},
		{name: "parent", span: cat(ids, bytesF(4, sidb(2))), parent: true, valid: true},
		{name: "all-zero parent", span: cat(ids, bytesF(4, zero8)), valid: true},
		{name: "empty parent", span: cat(ids, bytesF(4, nil)), valid: true},
		{name: "status unset", span: cat(ids, statusF(0)), status: StatusUnset, valid: true},
		{name: "status ok", span: cat(ids, statusF(1)), status: StatusOK, valid: true},
		{name: "status error", span: cat(ids, statusF(2)), status: StatusError, valid: true},
		// Current behaviour: codes outside the enum are recorded as unset.
		{name: "status out of range", span: cat(ids, statusF(7)), status: StatusUnset, valid: true},
		{name: "empty status", span: cat(ids, bytesF(15, nil)), status: StatusUnset, valid: true},
		{name: "last status wins", span: cat(ids, statusF(2), statusF(1)), status: StatusOK, valid: true},
		{name: "empty tracestate", span: cat(ids, bytesF(3, nil)), valid: true, ts: []byte{}},
		{name: "zero trace id", span: cat(bytesF(1, make([]byte, 16)), bytesF(2, sidb(1)))},
		{name: "zero span id", span: cat(bytesF(1, tidb(1)), bytesF(2, zero8))},
		{name: "missing trace id", span: bytesF(2, sidb(1))},
		{name: "missing span id", span: bytesF(1, tidb(1))},
		{name: "empty ids", span: cat(bytesF(1, nil), bytesF(2, nil))},
		{name: "no fields", span: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := bytesF(1, bytesF(2, bytesF(2, tt.span)))
			var b Batch
			require.NoError(t, Scan(msg, &b))
			require.Len(t, b.Spans, 1)
			s := b.Spans[0]
			assert.Equal(t, tt.parent, s.HasParent)
			assert.Equal(t, tt.status, s.Status)
			assert.Equal(t, tt.valid, s.ValidIDs())
			if tt.ts == nil {
				assert.Nil(t, s.TraceState)
			} else {
				assert.Equal(t, tt.ts, s.TraceState)
			}
		})
	}
}

func TestValidIDs(t *testing.T) {
	tests := []struct {
		name  string
		span  Span
		valid bool
	}{
		{"both set", Span{TraceID: tid(1), SpanID: sid(1)}, true},
		{"zero trace id", Span{SpanID: sid(1)}, false},
		{"zero span id", Span{TraceID: tid(1)}, false},
		{"both zero", Span{}, false},
		{"one trace id byte", Span{TraceID: [16]byte{15: 1}, SpanID: [8]byte{0: 1}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.valid, tt.span.ValidIDs())
		})
	}
}

// groupByScope re-encodes the batch the way the buffer does: per scope, every
// span with tracestate ts(i), under that scope's framing.
func groupByScope(b *Batch, ts func(i int) string) []byte {
	var out, spans []byte
	var ends []int
	for sc, idx := range spansByScope(b) {
		spans, ends = spans[:0], ends[:0]
		for _, i := range idx {
			spans = AppendSpan(spans, b.Spans[i].Raw, ts(i))
			ends = append(ends, len(spans))
		}
		if len(ends) > 0 {
			out = AppendResourceSpans(out, &b.Scopes[sc], spans, ends)
		}
	}
	return out
}

// spansByScope lists, per scope, the indexes of its spans in order.
func spansByScope(b *Batch) [][]int {
	per := make([][]int, len(b.Scopes))
	for i := range b.Spans {
		per[b.Spans[i].Scope] = append(per[b.Spans[i].Scope], i)
	}
	return per
}

// regrouped is what groupByScope must produce for td: one ResourceSpans per
// ScopeSpans that has spans, with tracestates set by ts.
func regrouped(td ptrace.Traces, ts func(i int) string) ptrace.Traces {
	out := ptrace.NewTraces()
	n := 0
	for i := range td.ResourceSpans().Len() {
		rs := td.ResourceSpans().At(i)
		for j := range rs.ScopeSpans().Len() {
			ss := rs.ScopeSpans().At(j)
			if ss.Spans().Len() == 0 {
				continue
			}
			ors := out.ResourceSpans().AppendEmpty()
			rs.Resource().CopyTo(ors.Resource())
			ors.SetSchemaUrl(rs.SchemaUrl())
			oss := ors.ScopeSpans().AppendEmpty()
			ss.Scope().CopyTo(oss.Scope())
			oss.SetSchemaUrl(ss.SchemaUrl())
			for k := range ss.Spans().Len() {
				sp := oss.Spans().AppendEmpty()
				ss.Spans().At(k).CopyTo(sp)
				sp.TraceState().FromRaw(ts(n))
				n++
			}
		}
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	tsFuncs := []struct {
		name string
		ts   func(int) string
	}{
		{"ot=th:0", func(int) string { return "ot=th:0" }},
		{"removed", func(int) string { return "" }},
		{"mixed", func(i int) string {
			return []string{"ot=th:c", "", "ot=rv:00112233445566;th:fd,vendor=" + strings.Repeat("x", 200)}[i%3]
		}},
	}
	for _, fx := range fixtures {
		for _, enc := range encodings {
			for _, tf := range tsFuncs {
				t.Run(fx.name+"/"+enc.name+"/"+tf.name, func(t *testing.T) {
					td := fx.build()
					buf := enc.enc(t, td)
					var b Batch
					require.NoError(t, Scan(buf, &b))

					out := groupByScope(&b, tf.ts)
					got := unmarshal(t, out)
					want := regrouped(td, tf.ts)
					require.Equal(t, toJSON(t, want), toJSON(t, got))

					// The output scans again to the same spans.
					var b2 Batch
					require.NoError(t, Scan(out, &b2))
					require.Len(t, b2.Spans, len(b.Spans))
					for i := range b.Spans {
						s1, s2 := b.Spans[i], b2.Spans[i]
						assert.Equal(t, s1.TraceID, s2.TraceID)
						assert.Equal(t, s1.SpanID, s2.SpanID)
						assert.Equal(t, s1.HasParent, s2.HasParent)
						assert.Equal(t, s1.Status, s2.Status)
						assert.Equal(t, s1.Start, s2.Start)
						assert.Equal(t, s1.End, s2.End)
						assert.Equal(t, s1.Name, s2.Name)
						assert.Equal(t, tf.ts(i), string(s2.TraceState))
					}
				})
			}
		}
	}
}

func TestAppendSpan(t *testing.T) {
	td := richTraces()
	var b Batch
	require.NoError(t, Scan(marshal(t, td), &b))
	for i, s := range b.Spans {
		// Appending keeps dst's prefix.
		prefix := []byte("prefix")
		out := AppendSpan(append([]byte(nil), prefix...), s.Raw, "ot=th:0")
		require.True(t, bytes.HasPrefix(out, prefix))
		body := out[len(prefix):]

		id, ts := PeekSpan(body)
		assert.Equal(t, s.SpanID, id, "span %d", i)
		assert.Equal(t, "ot=th:0", string(ts), "span %d", i)

		// An empty ts removes the field; with no tracestate the raw span
		// is copied as it was.
		removed := AppendSpan(nil, s.Raw, "")
		_, ts = PeekSpan(removed)
		assert.Nil(t, ts, "span %d", i)
		if s.TraceState == nil {
			assert.Equal(t, s.Raw, removed, "span %d", i)
		} else {
			want := len(s.Raw) - protowire.SizeTag(3) - protowire.SizeBytes(len(s.TraceState))
			assert.Len(t, removed, want, "span %d", i)
		}

		// Replacing a tracestate several times leaves exactly one.
		again := AppendSpan(nil, AppendSpan(nil, s.Raw, "a=1"), "b=2")
		count := 0
		for rest := again; len(rest) > 0; {
			num, typ, n := protowire.ConsumeTag(rest)
			require.Positive(t, n)
			if num == 3 {
				count++
			}
			m := protowire.ConsumeFieldValue(num, typ, rest[n:])
			require.GreaterOrEqual(t, m, 0)
			rest = rest[n+m:]
		}
		assert.Equal(t, 1, count, "span %d", i)
	}
}

func TestPeekSpan(t *testing.T) {
	td := richTraces()
	var b Batch
	require.NoError(t, Scan(marshal(t, td), &b))
	for i, s := range b.Spans {
		id, ts := PeekSpan(s.Raw)
		assert.Equal(t, s.SpanID, id, "span %d", i)
		assert.Equal(t, s.TraceState, ts, "span %d", i)
	}
	id, ts := PeekSpan(nil)
	assert.Equal(t, [8]byte{}, id)
	assert.Nil(t, ts)
}

func TestAppendResourceSpansFraming(t *testing.T) {
	// Large framing fields and span bodies need multi-byte length varints.
	span := AppendSpan(nil, nil, strings.Repeat("t", 20000))
	tests := []struct {
		name  string
		scope Scope
		spans [][]byte
	}{
		{"no framing", Scope{}, [][]byte{{}}},
		{"empty resource and scope", Scope{Resource: []byte{}, Scope: []byte{}}, [][]byte{{}, {}}},
		{"big", Scope{
			Resource:          path(t, marshal(t, richTraces()), 1, 1),
			ResourceSchemaURL: bytes.Repeat([]byte("r"), 300),
			Scope:             bytes.Repeat([]byte{0x0a, 0x01, 'n'}, 100),
			ScopeSchemaURL:    bytes.Repeat([]byte("s"), 129),
		}, [][]byte{span, span, {}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var spans []byte
			var ends []int
			for _, s := range tt.spans {
				spans = append(spans, s...)
				ends = append(ends, len(spans))
			}
			out := AppendResourceSpans([]byte("keep"), &tt.scope, spans, ends)
			require.Equal(t, "keep", string(out[:4]))
			out = out[4:]

			// Exactly one top-level field 1 that holds the whole output.
			num, typ, n := protowire.ConsumeTag(out)
			require.Equal(t, protowire.Number(1), num)
			require.Equal(t, protowire.BytesType, typ)
			_, m := protowire.ConsumeBytes(out[n:])
			require.Equal(t, len(out), n+m)

			var b Batch
			require.NoError(t, Scan(out, &b))
			require.Len(t, b.Spans, len(tt.spans))
			require.Len(t, b.Scopes, 1)
			sc := b.Scopes[0]
			sameBytes(t, tt.scope.Resource, sc.Resource, "resource")
			sameBytes(t, tt.scope.Scope, sc.Scope, "scope")
			sameBytes(t, nilIfEmpty(tt.scope.ResourceSchemaURL), sc.ResourceSchemaURL, "resource schema")
			sameBytes(t, nilIfEmpty(tt.scope.ScopeSchemaURL), sc.ScopeSchemaURL, "scope schema")
			for i, s := range tt.spans {
				assert.Equal(t, s, b.Spans[i].Raw)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// Malformed input.

func tagB(num protowire.Number, typ protowire.Type) []byte { return protowire.AppendTag(nil, num, typ) }

func lenField(num protowire.Number, v []byte) []byte {
	return protowire.AppendBytes(tagB(num, protowire.BytesType), v)
}

func varintField(num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(tagB(num, protowire.VarintType), v)
}

func fixed64Field(num protowire.Number, v uint64) []byte {
	return protowire.AppendFixed64(tagB(num, protowire.Fixed64Type), v)
}

func fixed32Field(num protowire.Number, v uint32) []byte {
	return protowire.AppendFixed32(tagB(num, protowire.Fixed32Type), v)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// inSpan wraps span fields into TracesData → ResourceSpans → ScopeSpans → Span.
func inSpan(fields ...[]byte) []byte {
	return lenField(1, lenField(2, lenField(2, cat(fields...))))
}

func inScope(fields ...[]byte) []byte { return lenField(1, lenField(2, cat(fields...))) }

func inResource(fields ...[]byte) []byte { return lenField(1, cat(fields...)) }

// withLen writes tag num with a length that claims n bytes, followed by body.
func withLen(num protowire.Number, n uint64, body []byte) []byte {
	return append(protowire.AppendVarint(tagB(num, protowire.BytesType), n), body...)
}

func nestedGroups(num protowire.Number, depth int) []byte {
	var b []byte
	for range depth {
		b = protowire.AppendTag(b, num, protowire.StartGroupType)
	}
	for range depth {
		b = protowire.AppendTag(b, num, protowire.EndGroupType)
	}
	return b
}

func TestScanMalformed(t *testing.T) {
	ids := cat(lenField(1, tidb(1)), lenField(2, sidb(1)))
	tests := []struct {
		name string
		buf  []byte
	}{
		{name: "truncated tag varint", buf: []byte{0x8a}},
		{name: "overlong tag varint", buf: bytes.Repeat([]byte{0xff}, 11)},
		{name: "field number zero", buf: []byte{0x02, 0x00}},
		{name: "truncated length varint", buf: append(tagB(1, protowire.BytesType), 0x80)},
		{name: "truncated unknown varint", buf: append(tagB(5, protowire.VarintType), 0xff, 0xff)},
		{name: "truncated unknown fixed32", buf: append(tagB(5, protowire.Fixed32Type), 1, 2)},
		{name: "stray end group", buf: tagB(5, protowire.EndGroupType)},
		{name: "unterminated group", buf: tagB(5, protowire.StartGroupType)},
		{name: "mismatched end group", buf: cat(tagB(5, protowire.StartGroupType), tagB(6, protowire.EndGroupType))},
		{name: "reserved wire type 6", buf: []byte{0x0e}},

		// Lengths past the end, at every level.
		{name: "resource_spans length past end", buf: withLen(1, 10, []byte{0x12, 0x00})},
		{name: "huge resource_spans length", buf: withLen(1, 1<<62, nil)},
		{name: "scope_spans length past end", buf: inResource(withLen(2, 5, nil))},
		{name: "resource length past end", buf: inResource(withLen(1, 5, []byte{1}))},
		{name: "resource schema length past end", buf: inResource(withLen(3, 5, []byte{1}))},
		{name: "unknown resource_spans field past end", buf: inResource(withLen(7, 5, nil))},
		{name: "spans length past end", buf: inScope(withLen(2, 3, nil))},
		{name: "scope length past end", buf: inScope(withLen(1, 3, nil))},
		{name: "unknown scope_spans field past end", buf: inScope(withLen(9, 3, nil))},
		{name: "trace_id length past end", buf: inSpan(withLen(1, 16, tidb(1)[:8]))},
		{name: "span_id length past end", buf: inSpan(withLen(2, 8, nil))},
		{name: "tracestate length past end", buf: inSpan(ids, withLen(3, 2, nil))},
		{name: "parent length past end", buf: inSpan(ids, withLen(4, 8, nil))},
		{name: "name length past end", buf: inSpan(ids, withLen(5, 4, []byte("ab")))},
		{name: "status length past end", buf: inSpan(ids, withLen(15, 4, nil))},
		{name: "attributes length past end", buf: inSpan(ids, withLen(9, 4, nil))},
		{name: "truncated start timestamp", buf: inSpan(ids, append(tagB(7, protowire.Fixed64Type), 1, 2, 3))},
		{name: "truncated end timestamp", buf: inSpan(ids, tagB(8, protowire.Fixed64Type))},
		{name: "truncated status code", buf: inSpan(ids, lenField(15, append(tagB(3, protowire.VarintType), 0x80)))},
		{name: "status message past end", buf: inSpan(ids, lenField(15, withLen(2, 9, nil)))},
		{name: "bad tag in status", buf: inSpan(ids, lenField(15, []byte{0x80}))},
		{name: "bad tag in span", buf: inSpan(ids, []byte{0xff})},
		{name: "bad tag in scope_spans", buf: inScope([]byte{0x00})},
		{name: "bad tag in resource_spans", buf: inResource([]byte{0x80})},

		// Wrong wire types.
		{name: "resource_spans as varint", buf: varintField(1, 3)},
		{name: "resource_spans as fixed64", buf: fixed64Field(1, 3)},
		{name: "resource_spans as fixed32", buf: fixed32Field(1, 3)},
		{name: "resource_spans as group", buf: nestedGroups(1, 1)},
		{name: "resource as varint", buf: inResource(varintField(1, 1))},
		{name: "scope_spans as varint", buf: inResource(varintField(2, 1))},
		{name: "scope_spans as fixed64", buf: inResource(fixed64Field(2, 1))},
		{name: "resource schema as fixed32", buf: inResource(fixed32Field(3, 1))},
		{name: "scope as fixed64", buf: inScope(fixed64Field(1, 1))},
		{name: "spans as varint", buf: inScope(varintField(2, 1))},
		{name: "spans as fixed32", buf: inScope(fixed32Field(2, 1))},
		{name: "scope schema as varint", buf: inScope(varintField(3, 1))},
		{name: "trace_id as varint", buf: inSpan(varintField(1, 1))},
		{name: "trace_id as fixed64", buf: inSpan(fixed64Field(1, 1), fixed64Field(1, 2))},
		{name: "span_id as fixed64", buf: inSpan(lenField(1, tidb(1)), fixed64Field(2, 1))},
		{name: "tracestate as varint", buf: inSpan(ids, varintField(3, 1))},
		{name: "parent as fixed64", buf: inSpan(ids, fixed64Field(4, 1))},
		{name: "name as fixed32", buf: inSpan(ids, fixed32Field(5, 1))},
		{name: "start as varint", buf: inSpan(ids, varintField(7, 1))},
		{name: "start as fixed32", buf: inSpan(ids, fixed32Field(7, 1))},
		{name: "end as bytes", buf: inSpan(ids, lenField(8, make([]byte, 8)))},
		{name: "status as varint", buf: inSpan(ids, varintField(15, 2))},
		{name: "status as fixed64", buf: inSpan(ids, fixed64Field(15, 2))},
		{name: "status code as bytes", buf: inSpan(ids, lenField(15, lenField(3, []byte{2})))},
		{name: "status code as fixed32", buf: inSpan(ids, lenField(15, fixed32Field(3, 2)))},

		// ID lengths.
		{name: "trace_id of 15 bytes", buf: inSpan(lenField(1, tidb(1)[:15]), lenField(2, sidb(1)))},
		{name: "trace_id of 17 bytes", buf: inSpan(lenField(1, make([]byte, 17)), lenField(2, sidb(1)))},
		{name: "trace_id of 1 byte", buf: inSpan(lenField(1, []byte{1}))},
		{name: "span_id of 7 bytes", buf: inSpan(lenField(1, tidb(1)), lenField(2, sidb(1)[:7]))},
		{name: "span_id of 16 bytes", buf: inSpan(lenField(1, tidb(1)), lenField(2, tidb(1)))},
		{name: "parent of 9 bytes", buf: inSpan(ids, lenField(4, make([]byte, 9)))},

		// Absurd nesting: groups deeper than protowire's recursion limit.
		{name: "deep groups at top level", buf: nestedGroups(5, 20000)},
		{name: "deep groups in resource_spans", buf: inResource(nestedGroups(5, 20000))},
		{name: "deep groups in scope_spans", buf: inScope(nestedGroups(5, 20000))},
		{name: "deep groups in span", buf: inSpan(ids, nestedGroups(9, 20000))},
		{name: "deep groups in status", buf: inSpan(ids, lenField(15, nestedGroups(5, 20000)))},
		{name: "deep unterminated groups", buf: bytes.Repeat(tagB(5, protowire.StartGroupType), 1<<20)},

		// Errors after valid spans.
		{name: "valid span then garbage", buf: cat(inSpan(ids), []byte{0xff, 0xff})},
		{name: "valid span then bad span", buf: cat(inSpan(ids), inSpan(lenField(1, []byte{1, 2, 3})))},
		{name: "garbage", buf: []byte("\xde\xad\xbe\xef this is not protobuf \xff\xff\xff\xff\xff\xff\xff\xff\xff\xff")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b Batch
			var err error
			require.NotPanics(t, func() { err = Scan(tt.buf, &b) })
			require.Error(t, err)
			require.ErrorIs(t, err, ErrMalformed)
			assert.Contains(t, err.Error(), "at byte ")

			// pdata refuses these inputs too, except for the ones whose
			// only fault is in a part Scan reads and pdata skips.
			_, perr := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(tt.buf)
			assert.Error(t, perr, "pdata accepts the input")
		})
	}
}

func TestScanMalformedKeepsEarlierSpans(t *testing.T) {
	ids := cat(lenField(1, tidb(1)), lenField(2, sidb(1)))
	buf := cat(inSpan(ids), inSpan(ids), []byte{0xff})
	var b Batch
	require.ErrorIs(t, Scan(buf, &b), ErrMalformed)
	require.Len(t, b.Spans, 2, "On error b holds what was read before it")
}

func TestScanRandomGarbage(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	valid := marshal(t, richTraces())
	for i := range 20000 {
		var buf []byte
		switch i % 3 {
		case 0: // random bytes
			buf = make([]byte, rng.IntN(300))
			for j := range buf {
				buf[j] = byte(rng.Uint32())
			}
		case 1: // a valid message with bytes flipped
			buf = append([]byte(nil), valid...)
			for range 1 + rng.IntN(4) {
				buf[rng.IntN(len(buf))] = byte(rng.Uint32())
			}
		case 2: // a truncated valid message
			buf = valid[:rng.IntN(len(valid))]
		}
		var b Batch
		var err error
		require.NotPanics(t, func() { err = Scan(buf, &b) }, "input %x", buf)
		if err != nil {
			require.True(t, errors.Is(err, ErrMalformed), "input %x: %v", buf, err)
			continue
		}
		for _, s := range b.Spans {
			require.True(t, within(s.Raw, buf))
			require.Less(t, int(s.Scope), len(b.Scopes))
		}
	}
}

func tidb(b byte) []byte { id := tid(b); return id[:] }

func sidb(b byte) []byte { id := sid(b); return id[:] }

// TestScanAgreesWithPdata feeds valid but unusual encodings, which protobuf
// decoders must read with last-one-wins (scalars) and merge (messages)
// semantics, and compares Scan's view, and the re-encoded output, with pdata's.
func TestScanAgreesWithPdata(t *testing.T) {
	ids := cat(lenField(1, tidb(1)), lenField(2, sidb(1)))
	status := func(code uint64) []byte { return lenField(15, varintField(3, code)) }
	attr := lenField(1, cat(lenField(1, []byte("k")), lenField(2, lenField(1, []byte("v")))))
	tests := []struct {
		name string
		buf  []byte
	}{
		{name: "name twice", buf: inSpan(ids, lenField(5, []byte("first")), lenField(5, []byte("second")))},
		{name: "tracestate twice", buf: inSpan(ids, lenField(3, []byte("a=1")), lenField(3, []byte("b=2")))},
		{name: "start twice", buf: inSpan(ids, fixed64Field(7, 5), fixed64Field(7, 6))},
		{name: "parent then empty parent", buf: inSpan(ids, lenField(4, sidb(3)), lenField(4, nil))},
		{name: "empty trace id", buf: inSpan(lenField(1, nil), lenField(2, sidb(1)))},
		{name: "status twice with codes", buf: inSpan(ids, status(2), status(1))},
		{name: "status code then message in one status", buf: inSpan(ids, lenField(15, cat(varintField(3, 2), lenField(2, []byte("m")))))},
		{
			name: "status code then a second status without code",
			buf:  inSpan(ids, status(2), lenField(15, lenField(2, []byte("m")))),
		},
		{
			name: "span id then empty span id",
			buf:  inSpan(lenField(1, tidb(1)), lenField(2, sidb(1)), lenField(2, nil)),
		},
		{
			name: "trace id then empty trace id",
			buf:  inSpan(lenField(1, tidb(1)), lenField(1, nil), lenField(2, sidb(1))),
		},
		{
			name: "status code beyond int32",
			buf:  inSpan(ids, status(1<<32+2)),
		},
		{
			name: "resource twice",
			buf:  lenField(1, cat(lenField(1, attr), lenField(1, nil), lenField(2, lenField(2, ids)))),
		},
		{
			name: "scope twice",
			buf:  inResource(lenField(2, cat(lenField(1, lenField(1, []byte("name"))), lenField(1, lenField(2, []byte("v1"))), lenField(2, ids)))),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(tt.buf)
			require.NoError(t, err, "pdata must accept the fixture")
			var b Batch
			require.NoError(t, Scan(tt.buf, &b))
			want := expectations(t, td)
			require.Len(t, b.Spans, len(want))

			var diffs []string
			for i, w := range want {
				sp, got := w.span, b.Spans[i]
				if [16]byte(sp.TraceID()) != got.TraceID || [8]byte(sp.SpanID()) != got.SpanID {
					diffs = append(diffs, fmt.Sprintf("ids: pdata %v/%v, Scan %x/%x", sp.TraceID(), sp.SpanID(), got.TraceID, got.SpanID))
				}
				if !sp.ParentSpanID().IsEmpty() != got.HasParent {
					diffs = append(diffs, "has parent")
				}
				if statusOf(sp.Status().Code()) != got.Status {
					diffs = append(diffs, fmt.Sprintf("status: pdata %v, Scan %d", sp.Status().Code(), got.Status))
				}
				if uint64(sp.StartTimestamp()) != got.Start || uint64(sp.EndTimestamp()) != got.End {
					diffs = append(diffs, "times")
				}
				if sp.Flags() != got.Flags {
					diffs = append(diffs, fmt.Sprintf("flags: pdata %x, Scan %x", sp.Flags(), got.Flags))
				}
				if sp.Name() != string(got.Name) || sp.TraceState().AsRaw() != string(got.TraceState) {
					diffs = append(diffs, fmt.Sprintf("name/tracestate: pdata %q/%q, Scan %q/%q", sp.Name(), sp.TraceState().AsRaw(), got.Name, got.TraceState))
				}
			}
			keep := func(i int) string { return string(b.Spans[i].TraceState) }
			if g, w := toJSON(t, unmarshal(t, groupByScope(&b, keep))), toJSON(t, regrouped(td, func(i int) string {
				return want[i].span.TraceState().AsRaw()
			})); g != w {
				diffs = append(diffs, fmt.Sprintf("re-encoded:\n got %s\nwant %s", g, w))
			}
			require.Empty(t, diffs)
		})
	}
}

// TestScanSkipInvalid: an empty span is 2 bytes on the wire and was a
// 136-byte Span in the batch, so that 20 MiB of them made a scan allocate
// about 7 GiB. With SkipInvalid the spans without valid IDs are counted,
// not recorded: the scan of 4 MiB of empty spans allocates next to
// nothing, and the spans with valid IDs among them are recorded as before.
func TestScanSkipInvalid(t *testing.T) {
	const empty = 2 << 20 // spans
	scope := make([]byte, 0, 2*empty+64)
	for range empty {
		scope = append(scope, 0x12, 0x00) // ScopeSpans.spans: an empty Span
	}
	valid := append([]byte{0x0a, 16}, make([]byte, 16)...)
	valid[2] = 1
	valid = append(valid, 0x12, 8, 1, 0, 0, 0, 0, 0, 0, 0)
	scope = protowire.AppendBytes(protowire.AppendTag(scope, 2, protowire.BytesType), valid)
	rs := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), scope)
	req := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), rs)

	b := Batch{SkipInvalid: true}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	require.NoError(t, Scan(req, &b))
	runtime.ReadMemStats(&after)
	require.Len(t, b.Spans, 1)
	require.Equal(t, empty, b.Invalid)
	require.Len(t, b.Scopes, 1)
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(64<<10), "bytes allocated by the scan of %d bytes", len(req))
	b.Reset()
	require.Zero(t, b.Invalid)
	require.True(t, b.SkipInvalid, "Reset keeps SkipInvalid")

	var all Batch
	require.NoError(t, Scan(req, &all))
	require.Len(t, all.Spans, empty+1, "without SkipInvalid every span is recorded")
}
