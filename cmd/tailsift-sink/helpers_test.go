package main

import (
	"encoding/binary"
	"encoding/hex"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/workload"
)

// Tracestates used by the tests, and the adjusted counts they mean.
const (
	th5pct   = "ot=th:f333" // probability (0x10000-0xf333)/0x10000 = 3277/65536
	th100pct = "ot=th:0"
	adj5pct  = 65536.0 / 3277.0
)

// testTraceID is the trace ID the tests give the trace with sequence seq.
func testTraceID(seq int64) [16]byte {
	var id [16]byte
	copy(id[:8], "tailsift")
	binary.BigEndian.PutUint64(id[8:], uint64(seq))
	return id
}

func testTraceHex(seq int64) string {
	id := testTraceID(seq)
	return hex.EncodeToString(id[:])
}

// span describes one span to send.
type span struct {
	seq     int64  // trace, by testTraceID
	id      uint64 // span ID
	class   string // "" for no class label
	noSeq   bool   // no seq label
	seqAttr int64  // seq label value when it differs from seq (0: same)
	ts      string // tracestate
}

// labelled returns n spans of trace seq with the given class and
// tracestate, span IDs 1..n.
func labelled(seq int64, class string, n int, ts string) []span {
	out := make([]span, n)
	for i := range out {
		out[i] = span{seq: seq, id: uint64(i + 1), class: class, ts: ts}
	}
	return out
}

// traces builds one request holding spans (one resource, one scope).
func traces(spans ...span) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "test")
	ss := rs.ScopeSpans().AppendEmpty()
	for _, s := range spans {
		sp := ss.Spans().AppendEmpty()
		sp.SetTraceID(pcommon.TraceID(testTraceID(s.seq)))
		var sid [8]byte
		binary.BigEndian.PutUint64(sid[:], s.id)
		sp.SetSpanID(pcommon.SpanID(sid))
		sp.SetName("op")
		sp.TraceState().FromRaw(s.ts)
		if s.class != "" {
			sp.Attributes().PutStr(workload.AttrClass, s.class)
		}
		if !s.noSeq {
			seq := s.seq
			if s.seqAttr != 0 {
				seq = s.seqAttr
			}
			sp.Attributes().PutInt(workload.AttrSeq, seq)
		}
	}
	return td
}
