package wire

import (
	"errors"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// FuzzScanAgreesWithPdata checks the fast path's contract with export: if
// Scan accepts a request, pdata accepts it (as the exporter side and the
// otlp receiver decode it) and sees the same spans, and pdata accepts every
// span re-encoded from it by AppendSpan and AppendResourceSpans.
func FuzzScanAgreesWithPdata(f *testing.F) {
	addScanSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var b Batch
		if err := Scan(data, &b); err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		if _, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(data); err != nil {
			t.Fatalf("Scan accepts what ProtoUnmarshaler refuses: %v", err)
		}
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalProto(data); err != nil {
			t.Fatalf("Scan accepts what the otlp receiver refuses: %v", err)
		}
		i := 0
		rss := req.Traces().ResourceSpans()
		for r := range rss.Len() {
			sss := rss.At(r).ScopeSpans()
			for s := range sss.Len() {
				spans := sss.At(s).Spans()
				for k := range spans.Len() {
					sp := spans.At(k)
					if i >= len(b.Spans) {
						t.Fatalf("pdata has more spans than Scan's %d", len(b.Spans))
					}
					got := &b.Spans[i]
					if [16]byte(sp.TraceID()) != got.TraceID || [8]byte(sp.SpanID()) != got.SpanID ||
						sp.Name() != string(got.Name) || uint64(sp.EndTimestamp()) != got.End {
						t.Fatalf("span %d: pdata %v/%v %q, Scan %x/%x %q", i, sp.TraceID(), sp.SpanID(), sp.Name(), got.TraceID, got.SpanID, got.Name)
					}
					i++
				}
			}
		}
		if i != len(b.Spans) {
			t.Fatalf("pdata has %d spans, Scan %d", i, len(b.Spans))
		}

		for _, ts := range []string{"", "ot=th:c"} {
			out := groupByScope(&b, func(int) string { return ts })
			td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(out)
			if err != nil {
				t.Fatalf("pdata refuses the re-encoded spans: %v", err)
			}
			if td.SpanCount() != len(b.Spans) {
				t.Fatalf("re-encoded: pdata has %d spans, Scan %d", td.SpanCount(), len(b.Spans))
			}
		}
	})
}

// FuzzCheckAnyValue checks CheckAnyValue against Scan and pdata, with the
// value as a span attribute's.
func FuzzCheckAnyValue(f *testing.F) {
	f.Add([]byte{}, uint8(0))
	f.Add(lenField(1, []byte("v")), uint8(0))
	f.Add(varintField(3, 42), uint8(1))
	f.Add(fixed64Field(4, 1), uint8(0))
	f.Add(lenField(7, []byte{0, 1}), uint8(0))
	f.Add(deepAnyValue(4), uint8(0))
	f.Add(deepAnyValue(9), uint8(MaxAnyValueDepth-8))
	f.Add(deepAnyValue(MaxAnyValueDepth), uint8(0))
	f.Add(lenField(6, lenField(1, cat(lenField(1, []byte("k")), varintField(3, 7)))), uint8(0))
	f.Fuzz(func(t *testing.T, value []byte, depth uint8) {
		err := CheckAnyValue(value, 0)
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("error does not wrap ErrMalformed: %v", err)
		}
		var b Batch
		scanErr := Scan(attrWith(value), &b)
		if (err == nil) != (scanErr == nil) {
			t.Fatalf("CheckAnyValue: %v, Scan of the attribute: %v", err, scanErr)
		}
		if err == nil {
			if accepted, perr := pdataAccepts(attrWith(value)); !accepted {
				t.Fatalf("CheckAnyValue accepts what pdata refuses: %v", perr)
			}
		}
		// More enclosing levels can only make a value too deep.
		d := int(depth) % (MaxAnyValueDepth + 1)
		deeper := CheckAnyValue(value, d)
		if err != nil && deeper == nil {
			t.Fatalf("refused at depth 0 (%v), accepted at depth %d", err, d)
		}
		if err == nil && deeper != nil && !errors.Is(deeper, ErrTooDeep) {
			t.Fatalf("accepted at depth 0, refused at depth %d for another reason: %v", d, deeper)
		}
	})
}
