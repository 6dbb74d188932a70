package workload

import (
	"bytes"
	"encoding/hex"
	"math"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/protobuf/encoding/protowire"
)

func TestPaddedVarint(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 300, 1 << 35, MaxSeq} {
		b := make([]byte, SeqWidth)
		PutPaddedVarint(b, v)
		got, n := protowire.ConsumeVarint(b)
		if n != SeqWidth || got != v {
			t.Fatalf("%d: got %d (%d bytes)", v, got, n)
		}
	}
}

func decode(t *testing.T, b []byte) ptrace.Traces {
	t.Helper()
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalProto(b); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	return req.Traces()
}

// cloneWithInstances returns a copy of r whose trace instances are replaced
// by copies with different seq, trace ID and start time.
func cloneWithInstances(r *Request, seqDelta int64, shift int64) *Request {
	c := *r
	m := map[*Instance]*Instance{}
	for _, tr := range r.Traces {
		in := tr.Inst
		n := &Instance{Seq: in.Seq + seqDelta, T: in.T, StartV: in.StartV + shift}
		n.TraceID = TraceID(99, n.Seq)
		m[in] = n
	}
	c.runs = make([]runRef, len(r.runs))
	for i, rr := range r.runs {
		rr.inst = m[rr.inst]
		c.runs[i] = rr
	}
	c.Traces = nil
	return &c
}

// TestPatching decodes patched requests with pdata and checks that trace IDs,
// times and seq are the instance's, that labels and resources are right, and
// that re-patching for other instances changes only the patched bytes.
func TestPatching(t *testing.T) {
	g, st := generate(t, Config{Seed: 5, Rate: 20000, ErrorPct: 5, Templates: 100}, 2000)
	const wall = int64(1_750_000_000_000_000_000)
	checked := 0
	for ri, r := range st.reqs {
		if ri%7 != 0 && r.LateSpans == 0 {
			continue
		}
		b := g.AppendRequest(nil, r, wall)
		if len(b) != r.Size {
			t.Fatalf("request %d: size %d, predicted %d", ri, len(b), r.Size)
		}
		td := decode(t, b)
		if td.SpanCount() != r.Spans {
			t.Fatalf("request %d: %d spans decoded, %d sent", ri, td.SpanCount(), r.Spans)
		}
		byTrace := map[[16]byte]*Instance{}
		for _, tr := range r.Traces {
			byTrace[tr.Inst.TraceID] = tr.Inst
		}
		rss := td.ResourceSpans()
		for i := range rss.Len() {
			rs := rss.At(i)
			if rs.Resource().Attributes().Len() != ResourceAttrs {
				t.Fatalf("resource attrs %d", rs.Resource().Attributes().Len())
			}
			svc, _ := rs.Resource().Attributes().Get("service.name")
			spans := rs.ScopeSpans().At(0).Spans()
			for j := range spans.Len() {
				sp := spans.At(j)
				in := byTrace[[16]byte(sp.TraceID())]
				if in == nil {
					t.Fatalf("span with unknown trace ID %s", sp.TraceID())
				}
				if sp.Attributes().Len() != SpanAttrs {
					t.Fatalf("span attrs %d", sp.Attributes().Len())
				}
				seq, ok := sp.Attributes().Get(AttrSeq)
				if !ok || seq.Int() != in.Seq {
					t.Fatalf("seq %v, want %d", seq.AsRaw(), in.Seq)
				}
				cls, _ := sp.Attributes().Get(AttrClass)
				if cls.Str() != in.T.Class {
					t.Fatalf("class %q, want %q", cls.Str(), in.T.Class)
				}
				base := wall + in.StartV
				st, en := int64(sp.StartTimestamp()), int64(sp.EndTimestamp())
				if st < base || en < st || en > base+int64(in.T.RootDur) {
					t.Fatalf("span times %d..%d outside trace %d..%d", st, en, base, base+int64(in.T.RootDur))
				}
				if en > wall+r.SendV {
					t.Fatalf("span ends after its request is sent")
				}
				if sp.ParentSpanID().IsEmpty() {
					if st != base || en != base+int64(in.T.RootDur) {
						t.Fatalf("root times %d..%d, want %d..%d", st, en, base, base+int64(in.T.RootDur))
					}
				}
				if sp.Status().Code() == ptrace.StatusCodeError && in.T.Class != ClassError {
					t.Fatalf("error status in class %s", in.T.Class)
				}
				if svc.Str() == "" {
					t.Fatal("no service.name")
				}
			}
		}
		// Same request, other instances: only patched bytes differ.
		c := cloneWithInstances(r, 1000, int64(3*time.Hour))
		b2 := g.AppendRequest(nil, c, wall+1)
		if len(b2) != len(b) {
			t.Fatalf("length changed %d -> %d", len(b), len(b2))
		}
		mask := patchMask(g, r)
		diff := 0
		for i := range b {
			if b[i] != b2[i] {
				if !mask[i] {
					t.Fatalf("request %d: byte %d outside patched fields changed", ri, i)
				}
				diff++
			}
		}
		if diff == 0 {
			t.Fatal("patching changed nothing")
		}
		td2 := decode(t, b2)
		sp2 := td2.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
		sp1 := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
		if sp1.TraceID() == sp2.TraceID() || sp1.StartTimestamp() == sp2.StartTimestamp() ||
			sp1.EndTimestamp() == sp2.EndTimestamp() || sp1.SpanID() != sp2.SpanID() || sp1.Name() != sp2.Name() {
			t.Fatal("re-patched span: wrong fields changed")
		}
		s1, _ := sp1.Attributes().Get(AttrSeq)
		s2, _ := sp2.Attributes().Get(AttrSeq)
		if s2.Int() != s1.Int()+1000 {
			t.Fatalf("seq %d -> %d", s1.Int(), s2.Int())
		}
		checked++
	}
	if checked < 10 {
		t.Fatalf("checked only %d requests", checked)
	}
}

// patchMask marks the patched byte ranges of r's encoding.
func patchMask(g *Generator, r *Request) []bool {
	b := g.AppendRequest(nil, r, 0)
	mask := make([]bool, len(b))
	// Re-walk the layout AppendRequest uses.
	pos := 0
	m := g.model
	for _, blk := range r.blocks {
		ssLen := len(m.scope) + blk.spanBytes
		rsLen := len(m.resource[blk.svc]) + 1 + protowire.SizeVarint(uint64(ssLen)) + ssLen + len(m.schemaURL)
		pos += 1 + protowire.SizeVarint(uint64(rsLen)) + len(m.resource[blk.svc]) + 1 + protowire.SizeVarint(uint64(ssLen)) + len(m.scope)
		for _, rr := range r.runs[blk.from:blk.to] {
			p := rr.inst.T.Patch
			lo := p[rr.from].Off
			for i := rr.from; i < rr.to; i++ {
				for _, f := range [][2]int32{{p[i].TraceID, 16}, {p[i].Start, 8}, {p[i].End, 8}, {p[i].Seq, SeqWidth}} {
					for k := range f[1] {
						mask[pos+int(f[0]-lo+k)] = true
					}
				}
			}
			pos += int(p[rr.to-1].Off + p[rr.to-1].Len - lo)
		}
		pos += len(m.schemaURL)
	}
	if pos != len(b) {
		panic("patchMask: layout mismatch")
	}
	return mask
}

func TestManifestRoundTrip(t *testing.T) {
	_, st := generate(t, Config{Seed: 11, Rate: 20000, Templates: 50}, 300)
	var buf bytes.Buffer
	hdr := ManifestHeader{Seed: 11, Rate: 20000, DurationS: 60, ErrorPct: 2, StartedUnixNano: 1732700000000000000}
	mw, err := NewManifestWriter(&buf, hdr)
	if err != nil {
		t.Fatal(err)
	}
	var want []ManifestTrace
	for i, r := range st.reqs {
		r.Complete(1732700000123456789+int64(i), i%50 == 3, func(in *Instance) {
			m := in.Manifest()
			want = append(want, m)
			mw.Write(&m)
		})
	}
	if err := mw.Flush(); err != nil {
		t.Fatal(err)
	}
	if len(want) != len(st.insts) {
		t.Fatalf("%d traces completed, %d started", len(want), len(st.insts))
	}
	gotH, got, err := ReadManifest(&buf)
	if err != nil {
		t.Fatal(err)
	}
	hdr.Header = true
	if gotH != hdr {
		t.Fatalf("header %+v, want %+v", gotH, hdr)
	}
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d", len(got), len(want))
	}
	late, refused := 0, 0
	for i := range got {
		w := want[i]
		g := got[i]
		if math.Abs(g.RootMs-w.RootMs) > 0.0005 { // 3 decimals on the wire
			t.Fatalf("line %d: root_ms %v, want %v", i, g.RootMs, w.RootMs)
		}
		g.RootMs = w.RootMs
		if g != w {
			t.Fatalf("line %d: %+v, want %+v", i, got[i], w)
		}
		if id, err := hex.DecodeString(got[i].TraceID); err != nil || len(id) != 16 {
			t.Fatalf("bad trace_id %q", got[i].TraceID)
		}
		if got[i].Late {
			late++
		}
		if got[i].RefusedSpans > 0 {
			refused++
		}
	}
	if late == 0 || refused == 0 {
		t.Fatalf("late %d refused %d: want some of each", late, refused)
	}
}

func TestReadManifestErrors(t *testing.T) {
	for _, in := range []string{
		"",
		`{"seq":1}` + "\n",
		`{"header":true,"seed":1}` + "\n" + `{"seq":1,"trace_id":` + "\n",
	} {
		if _, _, err := ReadManifest(strings.NewReader(in)); err == nil {
			t.Errorf("no error for %q", in)
		}
	}
	h, tr, err := ReadManifest(strings.NewReader(`{"header":true,"seed":3,"rate":10,"duration_s":1,"error_pct":2,"started_unix_nano":5}` + "\n\n" +
		`{"seq":1,"trace_id":"0102030405060708090a0b0c0d0e0f10","class":"fast","spans":7,"route":"svc-01/op-02","root_ms":1.5,"last_send_unix_nano":9,"late":true}`))
	if err != nil || h.Seed != 3 || len(tr) != 1 || !tr[0].Late || tr[0].Spans != 7 {
		t.Fatalf("%v %+v %+v", err, h, tr)
	}
}

func TestManifestHeaderMix(t *testing.T) {
	var buf bytes.Buffer
	m := Mix{Error: 3, Slow: 10, Anomaly: 0.5, Huge: 0.01, Late: 0}
	mw, err := NewManifestWriter(&buf, ManifestHeader{Seed: 1, Rate: 10, DurationS: 1, ErrorPct: 3, StartedUnixNano: 5, Mix: &m})
	if err != nil {
		t.Fatal(err)
	}
	if err := mw.Flush(); err != nil {
		t.Fatal(err)
	}
	const want = `{"header":true,"seed":1,"rate":10,"duration_s":1,"error_pct":3,"started_unix_nano":5,` +
		`"mix":{"error":3,"slow":10,"anomaly":0.5,"huge":0.01,"late":0}}` + "\n"
	if buf.String() != want {
		t.Fatalf("header line\n%s\nwant\n%s", buf.String(), want)
	}
	h, _, err := ReadManifest(&buf)
	if err != nil || h.Mix == nil || *h.Mix != m {
		t.Fatalf("read back %v %+v", err, h.Mix)
	}
	// Manifests written before the mix was recorded have none.
	h, _, err = ReadManifest(strings.NewReader(`{"header":true,"seed":3,"rate":10,"duration_s":1,"error_pct":2,"started_unix_nano":5}` + "\n"))
	if err != nil || h.Mix != nil {
		t.Fatalf("old header: %v %+v", err, h.Mix)
	}
}
