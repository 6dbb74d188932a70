// Package wire reads and writes OTLP trace messages at the protobuf wire level.
//
// Scan walks an encoded TracesData or ExportTraceServiceRequest (both carry
// repeated ResourceSpans in field 1) and records, per span, what a sampling
// decision needs plus the location of the span's raw bytes. It builds no pdata
// and allocates nothing once the Batch has grown to the request's size.
package wire

import (
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
	TraceID    [16]byte
	SpanID     [8]byte
	HasParent  bool
	Status     uint8
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
}

// Reset empties the batch, keeping its capacity.
func (b *Batch) Reset() {
	clear(b.Spans)
	clear(b.Scopes)
	b.Spans = b.Spans[:0]
	b.Scopes = b.Scopes[:0]
}

// ErrMalformed is wrapped by every error Scan returns for bad input.
var ErrMalformed = errors.New("malformed OTLP traces message")

func malformed(what string, off int) error {
	return fmt.Errorf("%w: %s at byte %d", ErrMalformed, what, off)
}

// Scan appends the spans found in buf, an encoded TracesData or
// ExportTraceServiceRequest, to b. On error b holds what was read before it.
// Scan validates the framing of every message it walks into and the wire types
// of the fields it reads; it does not validate field contents it skips.
func Scan(buf []byte, b *Batch) error {
	off := 0
	for off < len(buf) {
		num, typ, n := protowire.ConsumeTag(buf[off:])
		if n < 0 {
			return malformed("bad tag", off)
		}
		off += n
		if num == 1 {
			if typ != protowire.BytesType {
				return malformed("wrong wire type for resource_spans", off)
			}
			v, m := protowire.ConsumeBytes(buf[off:])
			if m < 0 {
				return malformed("resource_spans length past end", off)
			}
			if err := scanResourceSpans(v, off+m-len(v), b); err != nil {
				return err
			}
			off += m
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, buf[off:])
		if m < 0 {
			return malformed("bad field", off)
		}
		off += m
	}
	return nil
}

func scanResourceSpans(buf []byte, base int, b *Batch) error {
	// The resource and schema_url may follow the scope_spans on the wire, so
	// find them first, then walk the scope_spans.
	var res, schema []byte
	off := 0
	for off < len(buf) {
		num, typ, n := protowire.ConsumeTag(buf[off:])
		if n < 0 {
			return malformed("bad tag in resource_spans", base+off)
		}
		off += n
		m := protowire.ConsumeFieldValue(num, typ, buf[off:])
		if m < 0 {
			return malformed("bad field in resource_spans", base+off)
		}
		switch {
		case num == 1 && typ == protowire.BytesType:
			v, _ := protowire.ConsumeBytes(buf[off:])
			res = merge(res, v)
		case num == 3 && typ == protowire.BytesType:
			schema, _ = protowire.ConsumeBytes(buf[off:])
		case (num == 1 || num == 2 || num == 3) && typ != protowire.BytesType:
			return malformed("wrong wire type in resource_spans", base+off)
		}
		off += m
	}
	off = 0
	for off < len(buf) {
		num, typ, n := protowire.ConsumeTag(buf[off:])
		off += n
		m := protowire.ConsumeFieldValue(num, typ, buf[off:])
		if num == 2 {
			v, _ := protowire.ConsumeBytes(buf[off:])
			if err := scanScopeSpans(v, base+off+m-len(v), res, schema, b); err != nil {
				return err
			}
		}
		off += m
	}
	return nil
}

func scanScopeSpans(buf []byte, base int, res, resSchema []byte, b *Batch) error {
	sc := Scope{Resource: res, ResourceSchemaURL: resSchema}
	off := 0
	for off < len(buf) {
		num, typ, n := protowire.ConsumeTag(buf[off:])
		if n < 0 {
			return malformed("bad tag in scope_spans", base+off)
		}
		off += n
		m := protowire.ConsumeFieldValue(num, typ, buf[off:])
		if m < 0 {
			return malformed("bad field in scope_spans", base+off)
		}
		switch {
		case num == 1 && typ == protowire.BytesType:
			v, _ := protowire.ConsumeBytes(buf[off:])
			sc.Scope = merge(sc.Scope, v)
		case num == 3 && typ == protowire.BytesType:
			sc.ScopeSchemaURL, _ = protowire.ConsumeBytes(buf[off:])
		case (num == 1 || num == 2 || num == 3) && typ != protowire.BytesType:
			return malformed("wrong wire type in scope_spans", base+off)
		}
		off += m
	}
	idx := int32(len(b.Scopes))
	b.Scopes = append(b.Scopes, sc)
	added := false
	off = 0
	for off < len(buf) {
		num, typ, n := protowire.ConsumeTag(buf[off:])
		off += n
		m := protowire.ConsumeFieldValue(num, typ, buf[off:])
		if num == 2 {
			v, _ := protowire.ConsumeBytes(buf[off:])
			if err := scanSpan(v, base+off+m-len(v), idx, b); err != nil {
				return err
			}
			added = true
		}
		off += m
	}
	if !added {
		// A scope with no spans carries nothing to buffer.
		b.Scopes = b.Scopes[:idx]
	}
	return nil
}

func scanSpan(buf []byte, base int, scope int32, b *Batch) error {
	b.Spans = append(b.Spans, Span{Raw: buf, Scope: scope})
	s := &b.Spans[len(b.Spans)-1]
	off := 0
	for off < len(buf) {
		num, typ, n := protowire.ConsumeTag(buf[off:])
		if n < 0 {
			return malformed("bad tag in span", base+off)
		}
		off += n
		switch num {
		case 1, 2, 3, 4, 5, 15:
			if typ != protowire.BytesType {
				return malformed(fmt.Sprintf("wrong wire type for span field %d", num), base+off)
			}
			v, m := protowire.ConsumeBytes(buf[off:])
			if m < 0 {
				return malformed(fmt.Sprintf("span field %d length past end", num), base+off)
			}
			switch num {
			case 1:
				if len(v) != 0 && len(v) != 16 {
					return malformed("trace_id is not 16 bytes", base+off)
				}
				s.TraceID = [16]byte{} // the last occurrence wins, even if empty
				copy(s.TraceID[:], v)
			case 2:
				if len(v) != 0 && len(v) != 8 {
					return malformed("span_id is not 8 bytes", base+off)
				}
				s.SpanID = [8]byte{}
				copy(s.SpanID[:], v)
			case 3:
				s.TraceState = v
			case 4:
				if len(v) != 0 && len(v) != 8 {
					return malformed("parent_span_id is not 8 bytes", base+off)
				}
				s.HasParent = len(v) == 8 && !allZero(v)
			case 5:
				s.Name = v
			case 15:
				code, ok, err := scanStatus(v, base+off+m-len(v))
				if err != nil {
					return err
				}
				if ok { // repeated status messages merge: a later code wins
					s.Status = code
				}
			}
			off += m
		case 7, 8:
			if typ != protowire.Fixed64Type {
				return malformed(fmt.Sprintf("wrong wire type for span field %d", num), base+off)
			}
			v, m := protowire.ConsumeFixed64(buf[off:])
			if m < 0 {
				return malformed("truncated timestamp", base+off)
			}
			if num == 7 {
				s.Start = v
			} else {
				s.End = v
			}
			off += m
		case 16:
			if typ != protowire.Fixed32Type {
				return malformed("wrong wire type for span flags", base+off)
			}
			v, m := protowire.ConsumeFixed32(buf[off:])
			if m < 0 {
				return malformed("truncated span flags", base+off)
			}
			s.Flags = v
			off += m
		default:
			m := protowire.ConsumeFieldValue(num, typ, buf[off:])
			if m < 0 {
				return malformed(fmt.Sprintf("bad span field %d", num), base+off)
			}
			off += m
		}
	}
	return nil
}

// scanStatus returns the status code of a Status message and whether the
// message set one. Codes outside the OTLP enum read as UNSET.
func scanStatus(buf []byte, base int) (code uint8, set bool, err error) {
	off := 0
	for off < len(buf) {
		num, typ, n := protowire.ConsumeTag(buf[off:])
		if n < 0 {
			return 0, false, malformed("bad tag in status", base+off)
		}
		off += n
		if num == 3 {
			if typ != protowire.VarintType {
				return 0, false, malformed("wrong wire type for status code", base+off)
			}
			v, m := protowire.ConsumeVarint(buf[off:])
			if m < 0 {
				return 0, false, malformed("truncated status code", base+off)
			}
			// Enums are int32 on the wire: protobuf truncates wider values.
			code, set = StatusUnset, true
			if c := int32(v); c >= 0 && c <= int32(StatusError) {
				code = uint8(c)
			}
			off += m
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, buf[off:])
		if m < 0 {
			return 0, false, malformed("bad field in status", base+off)
		}
		off += m
	}
	return code, set, nil
}

// merge returns the encoding of a singular message field seen again: protobuf
// merges the occurrences, which is what their concatenation decodes to. The
// first occurrence aliases the input; only a repeat allocates.
func merge(prev, v []byte) []byte {
	if prev == nil {
		if v == nil {
			return []byte{}
		}
		return v
	}
	out := make([]byte, 0, len(prev)+len(v))
	return append(append(out, prev...), v...)
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
