// Package store is tailsift's durable span and decision store: an
// append-only log of records (accepted OTLP requests, decisions, delivery
// marks), each writer batch compressed once (zstd or s2) into a block
// appended to the current numbered segment file, which is the write-ahead
// log, with an in-memory trace-ID index over them. docs/store.md describes the format and why this
// engine was chosen.
package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
)

// Record kinds.
const (
	// KindSpans is an accepted OTLP request and the trace IDs it holds.
	KindSpans byte = 1
	// KindDecision is a sampling decision on one trace.
	KindDecision byte = 2
	// KindDelivered says that kept traces were accepted by the next consumer.
	KindDelivered byte = 3
	// kindRequest is how a spans record is written: the request alone.
	// Its trace IDs are those of its spans, found again by scanning it
	// when the store is opened; the IDs a spans record (kind 1, written by
	// earlier versions) lists took 10 of its 107 bytes per span on disk
	// (16 incompressible bytes per trace per request, about 100 traces in
	// a request of 160 spans).
	kindRequest byte = 4
	// kindDecisions is how a shard's batch of decisions is written: one
	// record, not one per decision, each decision's policy and reason an
	// index into the record's table of names. A decision took about 73
	// bytes as its own record (frame, sequence, time, names), 46 bytes a
	// span on the benchmark workload, every one of them compressed; in a
	// batch it takes about 20.
	kindDecisions byte = 5
	// kindBlockRequest is kind 4 without its record CRC (zero): the
	// CRC-32C of the block's compressed bytes covers it, and computing
	// the CRC of every request a second time was about 4 % of the
	// store's CPU. Read only inside a block.
	kindBlockRequest byte = 6
	// kindDecisionsRV is kind 5 with, after each decision, a uvarint:
	// 0, or the randomness (rv) the trace was kept on plus 1 (Decision.RV).
	// The writer uses it only for a batch where some decision has one, so
	// that a store without such decisions stays readable by the versions
	// before it.
	kindDecisionsRV byte = 7
	// kindDeliveredMark is a delivered record (kind 3) that covers only
	// the spans records up to a mark: uvarint mark (the sequence of the
	// last record queued before the delivery began, Store.BeginDelivery),
	// then the trace IDs as in kind 3. A spans record of one of the traces
	// with a higher sequence, written before it (a late span recorded while
	// the delivery was in the next consumer's call), is not delivered.
	// The writer uses it only when such a record exists, so that a store
	// without one stays readable by the versions before it.
	kindDeliveredMark byte = 8
)

// frameHeader is a record's frame: u32 payload length, u32 CRC-32C of the
// payload. The payload is u8 kind, u64 sequence, i64 unix nanoseconds, body.
const (
	frameHeader   = 8
	payloadHeader = 1 + 8 + 8
	// maxRecord bounds one record, so that a corrupt length cannot make the
	// parser allocate or read far.
	maxRecord = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Record is one parsed record. Its slices alias the buffer it was parsed
// from.
type Record struct {
	Kind byte
	Seq  uint64
	Time int64 // unix nanoseconds
	// IDs are the trace IDs of a spans or delivered record, and the one
	// trace of a decision.
	IDs [][16]byte
	// Request is a spans record's encoded OTLP request.
	Request []byte
	// IDsOmitted: a spans record written without its trace IDs (IDs is
	// empty): they are the trace IDs of Request's spans (requestIDs).
	IDsOmitted bool
	// Mark, with Marked, is what a delivered record covers (kind 8): the
	// spans records of its traces up to sequence Mark. A delivered record
	// without a mark (kind 3) covers every record before it.
	Mark   uint64
	Marked bool
	// Decision is a decision record's decision.
	Decision Decision
	// BatchIndex and BatchLen: a decision read from a decisions record
	// (kind 5) is the BatchIndex-th of its BatchLen; BatchLen is 0 for a
	// decision written as its own record.
	BatchIndex, BatchLen int
}

// Decision is a sampling decision as the store keeps it.
type Decision struct {
	Keep      bool
	Threshold uint64 // OpenTelemetry threshold, unsigned form
	// RV, with HasRV, is the randomness (56 bits) a kept trace was kept
	// on when a policy derived it (a hash_salt, not's reflection, the
	// union's R*): its spans carry it as an explicit rv next to th.
	RV     uint64
	HasRV  bool
	Policy string
	Reason string
}

// maxRV bounds Decision.RV: 56 bits.
const maxRV = 1 << 56

// anyRV reports whether some decision of decs has an rv: a decisions
// record of them is kind 7.
func anyRV(decs []Decision) bool {
	for i := range decs {
		if decs[i].HasRV {
			return true
		}
	}
	return false
}

// errTruncated reports a record cut short: the rest of the buffer is not a
// whole record.
var errTruncated = errors.New("truncated record")

// appendFrame appends one framed record to dst: kind, seq, t and body.
func appendFrame(dst []byte, kind byte, seq uint64, t int64, body ...[]byte) []byte {
	n := payloadHeader
	for _, b := range body {
		n += len(b)
	}
	start := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(n))
	dst = binary.LittleEndian.AppendUint32(dst, 0) // CRC, set below
	dst = append(dst, kind)
	dst = binary.LittleEndian.AppendUint64(dst, seq)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(t))
	for _, b := range body {
		dst = append(dst, b...)
	}
	crc := crc32.Checksum(dst[start+frameHeader:], castagnoli)
	binary.LittleEndian.PutUint32(dst[start+4:], crc)
	return dst
}

// appendSpansFrame appends a spans record framed but not sealed: its
// sequence and CRC are zero until sealFrame sets them. AppendSpans frames
// as it copies the request, so that the writer need not copy it again.
func appendSpansFrame(dst []byte, t int64, req []byte) []byte {
	n := payloadHeader + len(req)
	dst = slices.Grow(dst, frameHeader+n+blockTail)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(n))
	dst = binary.LittleEndian.AppendUint32(dst, 0)
	dst = append(dst, kindRequest)
	dst = binary.LittleEndian.AppendUint64(dst, 0)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(t))
	return append(dst, req...)
}

// blockTail is the room appendSpansFrame leaves after a request for the
// small records the writer puts behind it in its block (writeBatch: the
// decisions the same Ingest call took, about 20 B each and at most 80 B
// each by item.size), so that the request need not be copied again. The
// room is kept small, 4 KiB per queued request: the queue counts it (and
// more, a copy's buffer rounded up to a power of two, item.held), and with
// 16 KiB a queue of requests of a few KiB held several times the bytes of
// its records.
const blockTail = 4 << 10

// sealFrame sets the sequence of a record framed by appendSpansFrame and
// makes it a kind 6 record: one that goes into a block, whose CRC covers it.
func sealFrame(rec []byte, seq uint64) {
	rec[frameHeader] = kindBlockRequest
	binary.LittleEndian.PutUint64(rec[frameHeader+1:], seq)
}

// spansBody is the body of a spans record: uvarint count, the IDs, the request.
func spansBody(dst []byte, ids [][16]byte, req []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(ids)))
	for i := range ids {
		dst = append(dst, ids[i][:]...)
	}
	return append(dst, req...)
}

// decisionBody is the body of a decision record.
func decisionBody(dst []byte, id [16]byte, d Decision) []byte {
	dst = append(dst, id[:]...)
	keep := byte(0)
	if d.Keep {
		keep = 1
	}
	dst = append(dst, keep)
	dst = binary.LittleEndian.AppendUint64(dst, d.Threshold)
	dst = binary.AppendUvarint(dst, uint64(len(d.Policy)))
	dst = append(dst, d.Policy...)
	dst = binary.AppendUvarint(dst, uint64(len(d.Reason)))
	return append(dst, d.Reason...)
}

// decisionsBody is the body of a decisions record (kind 5): uvarint count
// of names, the names (uvarint length, bytes), uvarint count of decisions,
// then each decision: trace ID, keep byte, uvarint threshold, uvarint
// policy name index, uvarint reason name index, and, with withRV (kind 7),
// uvarint rv + 1 or 0. names is scratch space.
func decisionsBody(dst []byte, ids [][16]byte, decs []Decision, names []string, withRV bool) ([]byte, []string) {
	names = names[:0]
	index := func(s string) int {
		for i, n := range names {
			if n == s {
				return i
			}
		}
		names = append(names, s)
		return len(names) - 1
	}
	for i := range decs {
		index(decs[i].Policy)
		index(decs[i].Reason)
	}
	dst = binary.AppendUvarint(dst, uint64(len(names)))
	for _, n := range names {
		dst = binary.AppendUvarint(dst, uint64(len(n)))
		dst = append(dst, n...)
	}
	dst = binary.AppendUvarint(dst, uint64(len(decs)))
	for i := range decs {
		d := &decs[i]
		dst = append(dst, ids[i][:]...)
		keep := byte(0)
		if d.Keep {
			keep = 1
		}
		dst = append(dst, keep)
		dst = binary.AppendUvarint(dst, d.Threshold)
		dst = binary.AppendUvarint(dst, uint64(index(d.Policy)))
		dst = binary.AppendUvarint(dst, uint64(index(d.Reason)))
		if withRV {
			var rv uint64
			if d.HasRV {
				rv = d.RV&(maxRV-1) + 1
			}
			dst = binary.AppendUvarint(dst, rv)
		}
	}
	return dst, names
}

// deliveredBody is the body of a delivered record.
func deliveredBody(dst []byte, ids [][16]byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(ids)))
	for i := range ids {
		dst = append(dst, ids[i][:]...)
	}
	return dst
}

// deliveredMarkBody is the body of a delivered record with a mark (kind 8).
func deliveredMarkBody(dst []byte, mark uint64, ids [][16]byte) []byte {
	dst = binary.AppendUvarint(dst, mark)
	return deliveredBody(dst, ids)
}

// ParseRecords calls f for each whole, intact record at the start of buf
// (a block's records), in order. It returns how many bytes those records take and, when it stopped
// before the end of buf, why: a truncated or corrupt record (bad length,
// CRC mismatch, unknown kind, malformed body). It never panics on any input.
func ParseRecords(buf []byte, f func(*Record) error) (int, error) {
	return parseRecords(buf, true, f)
}

// parseRecords is ParseRecords; outside a block (the write-ahead file of
// earlier versions) every record has its CRC, and kind 6 is refused.
func parseRecords(buf []byte, inBlock bool, f func(*Record) error) (int, error) {
	off := 0
	var r Record
	for off < len(buf) {
		if len(buf)-off < frameHeader {
			return off, errTruncated
		}
		n := int(binary.LittleEndian.Uint32(buf[off:]))
		crc := binary.LittleEndian.Uint32(buf[off+4:])
		if n < payloadHeader || n > maxRecord {
			return off, fmt.Errorf("record at %d: bad length %d", off, n)
		}
		if len(buf)-off-frameHeader < n {
			return off, errTruncated
		}
		payload := buf[off+frameHeader : off+frameHeader+n]
		unchecked := inBlock && payload[0] == kindBlockRequest && crc == 0
		if !unchecked && crc32.Checksum(payload, castagnoli) != crc {
			return off, fmt.Errorf("record at %d: checksum mismatch", off)
		}
		if payload[0] == kindDecisions || payload[0] == kindDecisionsRV {
			if err := parseDecisions(payload, &r, f); err != nil {
				return off, fmt.Errorf("record at %d: %w", off, err)
			}
			off += frameHeader + n
			continue
		}
		if err := parsePayload(payload, &r); err != nil {
			return off, fmt.Errorf("record at %d: %w", off, err)
		}
		if err := f(&r); err != nil {
			return off, err
		}
		off += frameHeader + n
	}
	return off, nil
}

func parsePayload(p []byte, r *Record) error {
	*r = Record{IDs: r.IDs[:0]}
	r.Kind = p[0]
	r.Seq = binary.LittleEndian.Uint64(p[1:])
	r.Time = int64(binary.LittleEndian.Uint64(p[9:]))
	body := p[payloadHeader:]
	switch r.Kind {
	case KindSpans, KindDelivered:
		rest, err := parseIDs(body, r)
		if err != nil {
			return err
		}
		if r.Kind == KindDelivered && len(rest) > 0 {
			return errors.New("delivered record: trailing bytes")
		}
		r.Request = rest
	case kindDeliveredMark:
		mark, rest, ok := uvarint(body)
		if !ok {
			return errors.New("delivered record: bad mark")
		}
		if rest, err := parseIDs(rest, r); err != nil || len(rest) > 0 {
			return errors.New("delivered record: bad trace IDs")
		}
		r.Kind, r.Mark, r.Marked = KindDelivered, mark, true
	case kindRequest, kindBlockRequest:
		r.Kind, r.Request, r.IDsOmitted = KindSpans, body, true
	case KindDecision:
		return parseDecision(body, r)
	default:
		return fmt.Errorf("unknown kind %d", r.Kind)
	}
	return nil
}

// parseDecisions checks a decisions record (kind 5 or 7) whole, then calls
// f with each of its decisions, as a decision record.
func parseDecisions(p []byte, r *Record, f func(*Record) error) error {
	withRV := p[0] == kindDecisionsRV
	seq, t := binary.LittleEndian.Uint64(p[1:]), int64(binary.LittleEndian.Uint64(p[9:]))
	body := p[payloadHeader:]
	count, n := binary.Uvarint(body)
	if n <= 0 || count > uint64(len(body)) {
		return errors.New("decisions record: bad name count")
	}
	body = body[n:]
	names := make([]string, 0, count)
	for range count {
		name, rest, ok := parseString(body)
		if !ok {
			return errors.New("decisions record: bad name")
		}
		names, body = append(names, name), rest
	}
	count, n = binary.Uvarint(body)
	if n <= 0 || count > uint64(len(body))/(16+1+3) {
		return errors.New("decisions record: bad decision count")
	}
	body = body[n:]
	decs := body
	// Check every decision before handing any on.
	for range count {
		if _, body = parseBatchDecision(body, names, withRV); body == nil {
			return errors.New("decisions record: bad decision")
		}
	}
	if len(body) != 0 {
		return errors.New("decisions record: trailing bytes")
	}
	for i := range int(count) {
		var d Decision
		id := [16]byte(decs[:16])
		d, decs = parseBatchDecision(decs, names, withRV)
		*r = Record{Kind: KindDecision, Seq: seq, Time: t, IDs: append(r.IDs[:0], id), Decision: d, BatchIndex: i, BatchLen: int(count)}
		if err := f(r); err != nil {
			return err
		}
	}
	return nil
}

// parseBatchDecision parses one decision of a decisions record (kind 7
// with withRV); the rest is nil when it is malformed.
func parseBatchDecision(b []byte, names []string, withRV bool) (Decision, []byte) {
	if len(b) < 16+1 {
		return Decision{}, nil
	}
	d := Decision{Keep: b[16] == 1}
	b = b[17:]
	var ok bool
	if d.Threshold, b, ok = uvarint(b); !ok {
		return Decision{}, nil
	}
	for _, name := range []*string{&d.Policy, &d.Reason} {
		var i uint64
		if i, b, ok = uvarint(b); !ok || i >= uint64(len(names)) {
			return Decision{}, nil
		}
		*name = names[i]
	}
	if withRV {
		var rv uint64
		if rv, b, ok = uvarint(b); !ok || rv > maxRV {
			return Decision{}, nil
		}
		if rv > 0 {
			d.RV, d.HasRV = rv-1, true
		}
	}
	if b == nil {
		b = []byte{}
	}
	return d, b
}

func uvarint(b []byte) (uint64, []byte, bool) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, nil, false
	}
	return v, b[n:], true
}

func parseIDs(body []byte, r *Record) ([]byte, error) {
	count, n := binary.Uvarint(body)
	if n <= 0 || count > uint64(len(body)-n)/16 {
		return nil, errors.New("bad trace ID count")
	}
	body = body[n:]
	for range count {
		r.IDs = append(r.IDs, [16]byte(body[:16]))
		body = body[16:]
	}
	return body, nil
}

func parseDecision(body []byte, r *Record) error {
	if len(body) < 16+1+8 {
		return errors.New("decision record: too short")
	}
	r.IDs = append(r.IDs, [16]byte(body[:16]))
	r.Decision.Keep = body[16] == 1
	r.Decision.Threshold = binary.LittleEndian.Uint64(body[17:])
	body = body[25:]
	policy, body, ok := parseString(body)
	if !ok {
		return errors.New("decision record: bad policy")
	}
	reason, body, ok := parseString(body)
	if !ok || len(body) != 0 {
		return errors.New("decision record: bad reason")
	}
	r.Decision.Policy, r.Decision.Reason = policy, reason
	return nil
}

func parseString(b []byte) (string, []byte, bool) {
	l, n := binary.Uvarint(b)
	if n <= 0 || l > uint64(len(b)-n) {
		return "", nil, false
	}
	return string(b[n : n+int(l)]), b[n+int(l):], true
}
