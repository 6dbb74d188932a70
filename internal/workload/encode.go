package workload

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"

	"google.golang.org/protobuf/encoding/protowire"
)

// OTLP field numbers used here (opentelemetry/proto/trace/v1/trace.proto,
// common/v1/common.proto, resource/v1/resource.proto).
const (
	fReqResourceSpans = 1 // ExportTraceServiceRequest.resource_spans

	fRSResource   = 1 // ResourceSpans.resource
	fRSScopeSpans = 2 // ResourceSpans.scope_spans
	fSSScope      = 1 // ScopeSpans.scope
	fSSSpans      = 2 // ScopeSpans.spans

	fSpanTraceID   = 1
	fSpanSpanID    = 2
	fSpanParentID  = 4
	fSpanName      = 5
	fSpanKind      = 6
	fSpanStart     = 7 // fixed64
	fSpanEnd       = 8 // fixed64
	fSpanAttrs     = 9
	fSpanStatus    = 15
	fSpanFlags     = 16 // fixed32
	fStatusMessage = 2
	fStatusCode    = 3

	fKVKey   = 1
	fKVValue = 2
	fAVStr   = 1
	fAVInt   = 3
)

// SeqWidth is the fixed width of the tailsift.test.seq int_value: a varint
// padded with continuation bytes to 8 bytes (values < 2^56). Protobuf decoders
// accept non-minimal varints, so the attribute decodes as a plain int64.
const SeqWidth = 8

// MaxSeq is the largest sequence number SeqWidth bytes hold.
const MaxSeq = 1<<(7*SeqWidth) - 1

// PutPaddedVarint writes v (< 2^56) as a SeqWidth-byte varint into
// b[:SeqWidth].
func PutPaddedVarint(b []byte, v uint64) {
	binary.LittleEndian.PutUint64(b, paddedVarint(v))
}

// paddedVarint returns the SeqWidth-byte padded varint of v as a
// little-endian uint64: seven 7-bit groups with the continuation bit set,
// then the last group without it.
func paddedVarint(v uint64) uint64 {
	var x uint64
	for i := range SeqWidth {
		x |= (v >> (7 * i) & 0x7f) << (8 * i)
	}
	return x | 0x0080808080808080
}

func appendBytesField(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendStringField(b []byte, num protowire.Number, v string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, v)
}

// appendKVHead appends a KeyValue{key, AnyValue{...}} as field num up to
// the AnyValue's contents, which take avLen bytes and follow.
func appendKVHead(b []byte, num protowire.Number, key string, avLen int) []byte {
	kvLen := 1 + protowire.SizeBytes(len(key)) + 1 + protowire.SizeBytes(avLen)
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(kvLen))
	b = appendStringField(b, fKVKey, key)
	b = protowire.AppendTag(b, fKVValue, protowire.BytesType)
	return protowire.AppendVarint(b, uint64(avLen))
}

// appendKVString appends a KeyValue{key, AnyValue{string_value}} as field num.
func appendKVString(b []byte, num protowire.Number, key, val string) []byte {
	b = appendKVHead(b, num, key, 1+protowire.SizeBytes(len(val)))
	return appendStringField(b, fAVStr, val)
}

// appendKVInt appends a KeyValue{key, AnyValue{int_value}} as field num.
func appendKVInt(b []byte, num protowire.Number, key string, val int64) []byte {
	b = appendKVHead(b, num, key, 1+protowire.SizeVarint(uint64(val)))
	b = protowire.AppendTag(b, fAVInt, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(val))
}

// appendKVPaddedInt appends a KeyValue whose int_value is a SeqWidth-byte
// padded varint and returns the offset of those SeqWidth bytes in b.
func appendKVPaddedInt(b []byte, num protowire.Number, key string, val uint64) ([]byte, int) {
	b = appendKVHead(b, num, key, 1+SeqWidth)
	b = protowire.AppendTag(b, fAVInt, protowire.VarintType)
	off := len(b)
	b = binary.LittleEndian.AppendUint64(b, paddedVarint(val))
	return b, off
}

func encodeResource(rng *rand.Rand, svc int) []byte {
	name := ServiceName(svc)
	pod := fmt.Sprintf("%s-%08x-%05x", name, rng.Uint32(), rng.Uint32()&0xfffff)
	var r []byte
	r = appendKVString(r, 1, "service.name", name)
	r = appendKVString(r, 1, "service.namespace", "shop")
	r = appendKVString(r, 1, "service.version", fmt.Sprintf("1.%d.%d", rng.IntN(40), rng.IntN(10)))
	r = appendKVString(r, 1, "service.instance.id", fmt.Sprintf("%08x-%04x-4%03x-a%03x-%012x",
		rng.Uint32(), rng.Uint32()&0xffff, rng.Uint32()&0xfff, rng.Uint32()&0xfff, rng.Uint64()&0xffffffffffff))
	r = appendKVString(r, 1, "deployment.environment.name", "production")
	r = appendKVString(r, 1, "host.name", fmt.Sprintf("ip-10-0-%d-%d.ec2.internal", rng.IntN(16), 1+rng.IntN(254)))
	r = appendKVString(r, 1, "k8s.pod.name", pod)
	r = appendKVString(r, 1, "k8s.namespace.name", "shop-prod")
	r = appendKVString(r, 1, "telemetry.sdk.language", "go")
	return appendBytesField(nil, fRSResource, r)
}

func encodeScope() []byte {
	var s []byte
	s = appendStringField(s, 1, "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp")
	s = appendStringField(s, 2, "0.63.0")
	return appendBytesField(nil, fSSScope, s)
}

// Span kinds and status codes as OTLP encodes them.
const (
	kindInternal = 1
	kindServer   = 2
	kindClient   = 3

	statusOK    = 1
	statusError = 2
)

// spanFields is what encodeSpan needs to know about one span.
type spanFields struct {
	spanID, parentID [8]byte
	root             bool
	name             string
	kind             int
	start, end       int64 // relative ns (patched per instance)
	class            string
	method           string
	route            string
	httpStatus       int64
	serverAddr       string
	peerAddr         string
	codeFunc         string
	url              string
	requestID        string
	status           int // 0 unset, statusOK, statusError
	statusMsg        string
	few              bool // ShapeSDK: SDKSpanAttrs attributes
}

// encodeSpan appends the span as a ScopeSpans.spans field (tag, length,
// message) to b and returns the absolute offsets in b of the 16-byte trace ID,
// the fixed64 start and end times and the padded seq varint. scratch is
// reused for the message body.
func encodeSpan(b []byte, scratch *[]byte, f *spanFields) (out []byte, tid, start, end, seq int) {
	s := (*scratch)[:0]
	defer func() { *scratch = s }()
	s = protowire.AppendTag(s, fSpanTraceID, protowire.BytesType)
	s = protowire.AppendVarint(s, 16)
	tidRel := len(s)
	s = append(s, make([]byte, 16)...) // patched
	s = appendBytesField(s, fSpanSpanID, f.spanID[:])
	if !f.root {
		s = appendBytesField(s, fSpanParentID, f.parentID[:])
	}
	s = appendStringField(s, fSpanName, f.name)
	s = protowire.AppendTag(s, fSpanKind, protowire.VarintType)
	s = protowire.AppendVarint(s, uint64(f.kind))
	s = protowire.AppendTag(s, fSpanStart, protowire.Fixed64Type)
	startRel := len(s)
	s = protowire.AppendFixed64(s, uint64(f.start))
	s = protowire.AppendTag(s, fSpanEnd, protowire.Fixed64Type)
	endRel := len(s)
	s = protowire.AppendFixed64(s, uint64(f.end))

	// 10 attributes (4 when few), the two labels first.
	s = appendKVString(s, fSpanAttrs, AttrClass, f.class)
	var seqRel int
	s, seqRel = appendKVPaddedInt(s, fSpanAttrs, AttrSeq, 0)
	s = appendKVString(s, fSpanAttrs, "http.request.method", f.method)
	s = appendKVString(s, fSpanAttrs, "http.route", f.route)
	if f.few {
		return finishSpan(b, s, f, tidRel, startRel, endRel, seqRel)
	}
	s = appendKVInt(s, fSpanAttrs, "http.response.status_code", f.httpStatus)
	s = appendKVString(s, fSpanAttrs, "server.address", f.serverAddr)
	s = appendKVString(s, fSpanAttrs, "network.peer.address", f.peerAddr)
	s = appendKVString(s, fSpanAttrs, "code.function.name", f.codeFunc)
	s = appendKVString(s, fSpanAttrs, "url.full", f.url)
	s = appendKVString(s, fSpanAttrs, "app.request.id", f.requestID)
	return finishSpan(b, s, f, tidRel, startRel, endRel, seqRel)
}

// finishSpan appends the status and flags to the span message s and s as a
// ScopeSpans.spans field to b; the offsets are relative to s.
func finishSpan(b, s []byte, f *spanFields, tidRel, startRel, endRel, seqRel int) (out []byte, tid, start, end, seq int) {
	if f.status != 0 {
		stLen := 1 + protowire.SizeVarint(uint64(f.status))
		if f.statusMsg != "" {
			stLen += 1 + protowire.SizeBytes(len(f.statusMsg))
		}
		s = protowire.AppendTag(s, fSpanStatus, protowire.BytesType)
		s = protowire.AppendVarint(s, uint64(stLen))
		if f.statusMsg != "" {
			s = appendStringField(s, fStatusMessage, f.statusMsg)
		}
		s = protowire.AppendTag(s, fStatusCode, protowire.VarintType)
		s = protowire.AppendVarint(s, uint64(f.status))
	}
	s = protowire.AppendTag(s, fSpanFlags, protowire.Fixed32Type)
	s = protowire.AppendFixed32(s, 0x101) // sampled, has-is-remote (local parent)

	b = protowire.AppendTag(b, fSSSpans, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(len(s)))
	base := len(b)
	b = append(b, s...)
	return b, base + tidRel, base + startRel, base + endRel, base + seqRel
}

// patchRun copies the encoded spans [from, to) of t to dst and patches them
// for instance inst whose trace started at wall time startNs.
func patchRun(dst []byte, t *Template, from, to int32, inst *Instance, startNs int64) []byte {
	lo := t.Patch[from].Off
	hi := t.Patch[to-1].Off + t.Patch[to-1].Len
	base := int32(len(dst)) - lo
	dst = append(dst, t.Enc[lo:hi]...)
	seq := paddedVarint(uint64(inst.Seq))
	tid := inst.TraceID
	for i := from; i < to; i++ {
		p := &t.Patch[i]
		*(*[16]byte)(dst[base+p.TraceID:]) = tid
		binary.LittleEndian.PutUint64(dst[base+p.Start:], uint64(startNs+p.RelStart))
		binary.LittleEndian.PutUint64(dst[base+p.End:], uint64(startNs+p.RelEnd))
		binary.LittleEndian.PutUint64(dst[base+p.Seq:], seq)
	}
	return dst
}

// AppendRequest appends the ExportTraceServiceRequest bytes of r to dst,
// patched for its trace instances: trace IDs, start/end times shifted so that
// virtual time 0 is wall time wallBase (unix ns), and sequence numbers.
// len(result)-len(dst) == r.Size.
func (g *Generator) AppendRequest(dst []byte, r *Request, wallBase int64) []byte {
	m := g.model
	for bi := range r.blocks {
		blk := &r.blocks[bi]
		res := m.resource[blk.svc]
		ssLen := len(m.scope) + blk.spanBytes
		rsLen := len(res) + 1 + protowire.SizeVarint(uint64(ssLen)) + ssLen + len(m.schemaURL)
		dst = append(dst, byte(fReqResourceSpans<<3|protowire.BytesType))
		dst = protowire.AppendVarint(dst, uint64(rsLen))
		dst = append(dst, res...)
		dst = append(dst, byte(fRSScopeSpans<<3|protowire.BytesType))
		dst = protowire.AppendVarint(dst, uint64(ssLen))
		dst = append(dst, m.scope...)
		for _, rr := range r.runs[blk.from:blk.to] {
			dst = patchRun(dst, rr.inst.T, rr.from, rr.to, rr.inst, wallBase+rr.inst.StartV)
		}
		dst = append(dst, m.schemaURL...)
	}
	return dst
}

// blockSize is the encoded size of a ResourceSpans field holding spanBytes of
// spans for service svc.
func (m *model) blockSize(svc uint8, spanBytes int) int {
	ssLen := len(m.scope) + spanBytes
	rsLen := len(m.resource[svc]) + 1 + protowire.SizeVarint(uint64(ssLen)) + ssLen + len(m.schemaURL)
	return 1 + protowire.SizeVarint(uint64(rsLen)) + rsLen
}

// TraceID derives the trace ID of sequence number seq from the seed: unique
// per seq (the high half is a bijection of seq), random-looking, reproducible.
func TraceID(seed, seq int64) (id [16]byte) {
	hi := mix64(uint64(seed)*0x9e3779b97f4a7c15 + uint64(seq))
	lo := mix64(hi ^ 0xd1b54a32d192ed03 ^ uint64(seed))
	putU64(id[:8], hi)
	putU64(id[8:], lo|1)
	return id
}

func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
