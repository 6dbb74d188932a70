// Package wire reads and writes OTLP trace messages at the protobuf wire level.
//
// Scan walks an encoded TracesData or ExportTraceServiceRequest (both carry
// repeated ResourceSpans in field 1) and records, per span, what a sampling
// decision needs plus the location of the span's raw bytes. On the way it
// checks everything pdata would refuse at export (see field.go) and bounds
// the nesting of attribute values (anyvalue.go). It builds no pdata and,
// once the Batch has grown to the request's size, allocates only to merge a
// resource or scope that occurs more than once.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// Status codes as OTLP encodes them.
const (
	StatusUnset uint8 = 0
	StatusOK    uint8 = 1
	StatusError uint8 = 2
)

// Span is what Scan records of one span. Byte slices alias the scanned buffer.
type Span struct {
	TraceID   [16]byte
	SpanID    [8]byte
	HasParent bool
	Status    uint8
	// Kind is the span's kind, as OTLP encodes it (0 unspecified to 5
	// consumer; other values are kept as they come, truncated to a byte).
	Kind       uint8
	Start, End uint64
	// Name is the span's name.
	Name []byte
	// TraceState is the raw W3C tracestate, nil when absent.
	TraceState []byte
	// Flags is the span's flags field (W3C trace flags in the low byte).
	Flags uint32
	// Raw is the encoded Span message, without its tag and length.
	Raw []byte
	// Scope indexes Batch.Scopes.
	Scope int32
}

// Scope is one ScopeSpans of one ResourceSpans: the framing a span needs to be
// re-encoded under its resource and instrumentation scope.
type Scope struct {
	// Resource is the encoded Resource message (nil when absent).
	Resource []byte
	// ResourceSchemaURL is ResourceSpans.schema_url.
	ResourceSchemaURL []byte
	// Scope is the encoded InstrumentationScope message (nil when absent).
	Scope []byte
	// ScopeSchemaURL is ScopeSpans.schema_url.
	ScopeSchemaURL []byte
}

// Batch is the result of a Scan. Reuse it across calls with Reset.
type Batch struct {
	Spans  []Span
	Scopes []Scope
	// SkipInvalid, set by the caller (Reset keeps it), leaves out of Spans
	// the spans without valid IDs (Span.ValidIDs), and counts them in
	// Invalid. A caller that refuses such spans anyway sets it: a span is
	// 136 bytes in Spans, and an empty one 2 bytes on the wire, so that 20
	// MiB of empty spans made a scan allocate 7.4 GiB as Spans grew (the
	// audit of 2026-12-06; TestScanSkipInvalid checks that 4 MiB of them
	// allocate under 64 KiB now). A span with valid IDs takes at least 30
	// bytes on the wire.
	SkipInvalid bool
	// Invalid counts the spans left out (SkipInvalid).
	Invalid int
}

// Reset empties the batch, keeping its capacity and SkipInvalid.
func (b *Batch) Reset() {
	clear(b.Spans)
	clear(b.Scopes)
	b.Spans = b.Spans[:0]
	b.Scopes = b.Scopes[:0]
	b.Invalid = 0
}

// ErrMalformed is wrapped by every error Scan returns for bad input.
var ErrMalformed = errors.New("malformed OTLP traces message")

func malformed(what string, off int) error {
	return fmt.Errorf("%w: %s at byte %d", ErrMalformed, what, off)
}

// Scan appends the spans found in buf, an encoded TracesData or
// ExportTraceServiceRequest, to b. On error b holds what was read before it.
//
// Scan refuses (with an error wrapping ErrMalformed) every input pdata's
// ptrace.ProtoUnmarshaler refuses, and more: groups, and AnyValues nested
// deeper than MaxAnyValueDepth. It checks the framing and the wire type of
// every field of every message pdata decodes, down to attribute values, so
// that what it accepts, and every span re-encoded from it by AppendSpan and
// AppendResourceSpans, decodes for export. Its cost is linear in len(buf).
func Scan(buf []byte, b *Batch) error {
	for off := 0; off < len(buf); {
		num, typ, v, next, problem := readField(buf, off)
		if problem != "" {
			return malformed(problem+" in traces request", off)
		}
		if num == 1 {
			if typ != protowire.BytesType {
				return malformed("wrong wire type for resource_spans", off)
			}
			if err := scanResourceSpans(v, next-len(v), b); err != nil {
				return err
			}
		}
		off = next
	}
	return nil
}

// deprecatedScopeSpans is ResourceSpans.instrumentation_library_spans, which
// pdata decodes as ScopeSpans and uses when scope_spans is absent.
const deprecatedScopeSpans protowire.Number = 1000

// framing is what a first pass over a ResourceSpans finds: its singular
// message (field 1: the resource), merged, and its schema_url (field 3).
// Both may follow the repeated field 2 on the wire, and every Scope of the
// ResourceSpans carries them. (A ScopeSpans needs no first pass: see
// scanScopeSpans.)
type framing struct {
	msg, schemaURL []byte
	hasField2      bool
}

// readFraming checks every field of buf, a message of schema outer, and
// checks its field 1 as a message of schema inner.
func readFraming(buf []byte, base int, outer, inner *schema) (framing, error) {
	var fr framing
	var n, size int
	for off := 0; off < len(buf); {
		num, _, v, next, err := outer.field(buf, off, base)
		if err != nil {
			return fr, err
		}
		switch num {
		case 1:
			if err := inner.check(v, base+next-len(v)); err != nil {
				return fr, err
			}
			fr.msg, n, size = first(fr.msg, v), n+1, size+len(v)
		case 2:
			fr.hasField2 = true
		case 3:
			fr.schemaURL = v
		}
		off = next
	}
	if n > 1 {
		fr.msg = mergeAll(buf, 1, size)
	}
	return fr, nil
}

func scanResourceSpans(buf []byte, base int, b *Batch) error {
	fr, err := readFraming(buf, base, &resourceSpansMsg, &resourceMsg)
	if err != nil {
		return err
	}
	for off := 0; off < len(buf); {
		num, _, v, next, _ := readField(buf, off)
		if num == 2 || num == deprecatedScopeSpans {
			spans, scopes := len(b.Spans), len(b.Scopes)
			if err := scanScopeSpans(v, base+next-len(v), fr.msg, fr.schemaURL, b); err != nil {
				return err
			}
			if num == deprecatedScopeSpans && fr.hasField2 {
				// pdata checks these but drops them: keep nothing.
				clear(b.Spans[spans:])
				clear(b.Scopes[scopes:])
				b.Spans, b.Scopes = b.Spans[:spans], b.Scopes[:scopes]
			}
		}
		off = next
	}
	return nil
}

// scanScopeSpans records the spans of one ScopeSpans in a single pass: the
// spans only name their Scope's index, so its scope (field 1, merged when
// repeated) and schema_url (field 3), which may follow the spans on the
// wire, are filled in at the end.
func scanScopeSpans(buf []byte, base int, res, resSchema []byte, b *Batch) error {
	idx := int32(len(b.Scopes))
	spans := len(b.Spans)
	var scope, schemaURL []byte
	var n, size int
	for off := 0; off < len(buf); {
		num, _, v, next, err := scopeSpansMsg.field(buf, off, base)
		if err != nil {
			return err
		}
		switch num {
		case 1:
			if err := scopeMsg.check(v, base+next-len(v)); err != nil {
				return err
			}
			scope, n, size = first(scope, v), n+1, size+len(v)
		case 2:
			if err := scanSpan(v, base+next-len(v), idx, b); err != nil {
				return err
			}
		case 3:
			schemaURL = v
		}
		off = next
	}
	if len(b.Spans) == spans {
		return nil // a scope with no spans carries nothing to buffer
	}
	if n > 1 {
		scope = mergeAll(buf, 1, size)
	}
	b.Scopes = append(b.Scopes, Scope{Resource: res, ResourceSchemaURL: resSchema, Scope: scope, ScopeSchemaURL: schemaURL})
	return nil
}

// scanSpan records one span. The fields every span has, in the encoding
// every SDK writes (one-byte tag, IDs of their full length, lengths below
// 128), are dispatched on their tag byte and read inline; anything else,
// and every fault, goes through spanMsg.field, which checks it as before.
func scanSpan(buf []byte, base int, scope int32, b *Batch) error {
	b.Spans = append(b.Spans, Span{Raw: buf, Scope: scope})
	s := &b.Spans[len(b.Spans)-1]
	for off := 0; off < len(buf); {
		if off+1 < len(buf) {
			l := int(buf[off+1]) // a length or a one-byte varint, when < 0x80
			switch buf[off] {
			case 0x0a: // trace_id
				if l == 16 && off+18 <= len(buf) {
					s.TraceID = [16]byte(buf[off+2 : off+18])
					off += 18
					continue
				}
			case 0x12: // span_id
				if l == 8 && off+10 <= len(buf) {
					s.SpanID = [8]byte(buf[off+2 : off+10])
					off += 10
					continue
				}
			case 0x22: // parent_span_id
				if l == 8 && off+10 <= len(buf) {
					s.HasParent = binary.LittleEndian.Uint64(buf[off+2:off+10]) != 0
					off += 10
					continue
				}
			case 0x2a: // name
				if l < 0x80 && off+2+l <= len(buf) {
					s.Name = buf[off+2 : off+2+l]
					off += 2 + l
					continue
				}
			case 0x30: // kind
				if l < 0x80 {
					s.Kind = uint8(l)
					off += 2
					continue
				}
			case 0x39: // start_time_unix_nano
				if off+9 <= len(buf) {
					s.Start = binary.LittleEndian.Uint64(buf[off+1 : off+9])
					off += 9
					continue
				}
			case 0x41: // end_time_unix_nano
				if off+9 <= len(buf) {
					s.End = binary.LittleEndian.Uint64(buf[off+1 : off+9])
					off += 9
					continue
				}
			case 0x4a: // attributes
				if l < 0x80 && off+2+l <= len(buf) {
					if err := checkKeyValue(buf[off+2:off+2+l], base+off+2, 0); err != nil {
						return err
					}
					off += 2 + l
					continue
				}
			}
		}
		// field checks the wire type, the ID lengths, and the attributes,
		// events and links.
		num, _, v, next, err := spanMsg.field(buf, off, base)
		if err != nil {
			return err
		}
		switch num {
		case 1:
			s.TraceID = [16]byte{} // the last occurrence wins, even if empty
			copy(s.TraceID[:], v)
		case 2:
			s.SpanID = [8]byte{}
			copy(s.SpanID[:], v)
		case 3:
			s.TraceState = v
		case 4:
			s.HasParent = len(v) == 8 && !allZero(v)
		case 5:
			s.Name = v
		case 6:
			k, _ := protowire.ConsumeVarint(v)
			s.Kind = uint8(min(k, 255)) // an unknown kind stays unknown, not another kind mod 256
		case 7:
			s.Start = binary.LittleEndian.Uint64(v)
		case 8:
			s.End = binary.LittleEndian.Uint64(v)
		case 15:
			code, ok, err := scanStatus(v, base+next-len(v))
			if err != nil {
				return err
			}
			if ok { // repeated status messages merge: a later code wins
				s.Status = code
			}
		case 16:
			s.Flags = binary.LittleEndian.Uint32(v)
		}
		off = next
	}
	if b.SkipInvalid && !s.ValidIDs() {
		*s = Span{}
		b.Spans = b.Spans[:len(b.Spans)-1]
		b.Invalid++
	}
	return nil
}

// scanStatus returns the status code of a Status message and whether the
// message set one. Codes outside the OTLP enum read as UNSET.
func scanStatus(buf []byte, base int) (code uint8, set bool, err error) {
	for off := 0; off < len(buf); {
		num, _, v, next, err := statusMsg.field(buf, off, base)
		if err != nil {
			return 0, false, err
		}
		if num == 3 {
			c, _ := protowire.ConsumeVarint(v)
			// Enums are int32 on the wire: protobuf truncates wider values.
			code, set = StatusUnset, true
			if c := int32(c); c >= 0 && c <= int32(StatusError) {
				code = uint8(c)
			}
		}
		off = next
	}
	return code, set, nil
}

// first returns the encoding of a singular message field's first
// occurrence, which aliases the input; nil stands for an absent field, so an
// empty message becomes a non-nil empty slice.
func first(prev, v []byte) []byte {
	if prev != nil {
		return prev
	}
	if v == nil {
		return []byte{}
	}
	return v
}

// mergeAll returns the concatenation of the payloads of every field num of
// msg, which together take size bytes: protobuf merges the occurrences of a
// singular message field, which is what their concatenation decodes to. It
// copies each byte once, so that a request repeating a field a million
// times costs no more than one of that size.
func mergeAll(msg []byte, num protowire.Number, size int) []byte {
	out := make([]byte, 0, size)
	for off := 0; off < len(msg); {
		n, _, v, next, _ := readField(msg, off)
		if n == num {
			out = append(out, v...)
		}
		off = next
	}
	return out
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// ValidIDs reports whether s has a non-zero trace ID and span ID.
func (s *Span) ValidIDs() bool {
	return !allZero(s.TraceID[:]) && !allZero(s.SpanID[:])
}
