package wire

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// Scan refuses everything pdata's generated unmarshal code
// (go.opentelemetry.io/collector/pdata/internal/generated_proto_*.go) would
// refuse, so that a request the fast path accepts can always be decoded for
// export. pdata checks, per message, the wire type of every field it knows,
// the length of trace and span IDs (0, 16 or 8 bytes) and the framing of
// unknown fields. Its handling of groups does not follow protobuf (it ends an
// unknown group at the group's first scalar field and then reads on as if
// the group were over), so Scan refuses groups anywhere: no OTLP sender
// writes them.

// readField reads the field that starts at buf[off:]. For a length-delimited
// field v is the payload; for the other wire types it is the encoded value.
// next is the offset after the field. A non-empty problem describes why the
// field is malformed.
func readField(buf []byte, off int) (num protowire.Number, typ protowire.Type, v []byte, next int, problem string) {
	if off < len(buf) && buf[off] < 0x80 { // a one-byte tag: field numbers up to 15
		num, typ = protowire.Number(buf[off]>>3), protowire.Type(buf[off]&7)
		if num == 0 {
			return 0, 0, nil, 0, "field number 0"
		}
		off++
	} else {
		var n int
		num, typ, n = protowire.ConsumeTag(buf[off:])
		if n < 0 {
			return 0, 0, nil, 0, "bad tag"
		}
		off += n
	}
	rest := buf[off:]
	switch typ {
	case protowire.BytesType:
		if len(rest) > 0 && rest[0] < 0x80 {
			l := int(rest[0])
			if l+1 > len(rest) {
				return num, typ, nil, 0, "length past end"
			}
			return num, typ, rest[1 : 1+l], off + 1 + l, ""
		}
		l, n := protowire.ConsumeVarint(rest)
		if n < 0 {
			return num, typ, nil, 0, "bad length"
		}
		if l > uint64(len(rest)-n) {
			return num, typ, nil, 0, "length past end"
		}
		return num, typ, rest[n : n+int(l)], off + n + int(l), ""
	case protowire.VarintType:
		_, n := protowire.ConsumeVarint(rest)
		if n < 0 {
			return num, typ, nil, 0, "bad varint"
		}
		return num, typ, rest[:n], off + n, ""
	case protowire.Fixed64Type:
		if len(rest) < 8 {
			return num, typ, nil, 0, "truncated fixed64"
		}
		return num, typ, rest[:8], off + 8, ""
	case protowire.Fixed32Type:
		if len(rest) < 4 {
			return num, typ, nil, 0, "truncated fixed32"
		}
		return num, typ, rest[:4], off + 4, ""
	}
	return num, typ, nil, 0, fmt.Sprintf("wire type %d (group or reserved)", typ)
}

// sub names the check a length-delimited field's payload gets.
type sub uint8

const (
	subNone sub = iota
	subTraceID
	subSpanID
	subKeyValue
	subEntityRef
	subEvent
	subLink
)

// rule is what pdata expects of one field number of a message.
type rule struct {
	known bool
	typ   protowire.Type
	sub   sub
}

func bytesRule(s sub) rule             { return rule{known: true, typ: protowire.BytesType, sub: s} }
func scalarRule(t protowire.Type) rule { return rule{known: true, typ: t} }

var (
	varintRule  = scalarRule(protowire.VarintType)
	fixed64Rule = scalarRule(protowire.Fixed64Type)
	fixed32Rule = scalarRule(protowire.Fixed32Type)
	stringRule  = bytesRule(subNone)
)

// schema lists the fields pdata knows of one message, by field number.
type schema struct {
	name   string
	fields []rule
}

func (s *schema) rule(num protowire.Number) rule {
	if num < protowire.Number(len(s.fields)) {
		return s.fields[num]
	}
	return rule{}
}

// The messages of opentelemetry/proto/{trace,resource,common}/v1 as pdata
// v1.67.0 decodes them. ResourceSpans and ScopeSpans are walked by Scan
// itself; their schemas only give the wire types.
var (
	resourceSpansMsg = schema{name: "resource_spans", fields: []rule{
		1: stringRule, 2: stringRule, 3: stringRule, deprecatedScopeSpans: stringRule,
	}}
	scopeSpansMsg = schema{name: "scope_spans", fields: []rule{1: stringRule, 2: stringRule, 3: stringRule}}
	spanMsg       = schema{name: "span", fields: []rule{
		1: bytesRule(subTraceID), 2: bytesRule(subSpanID), 3: stringRule, 4: bytesRule(subSpanID),
		5: stringRule, 6: varintRule, 7: fixed64Rule, 8: fixed64Rule, 9: bytesRule(subKeyValue),
		10: varintRule, 11: bytesRule(subEvent), 12: varintRule, 13: bytesRule(subLink),
		14: varintRule, 15: stringRule, 16: fixed32Rule,
	}}
	statusMsg   = schema{name: "status", fields: []rule{2: stringRule, 3: varintRule}}
	resourceMsg = schema{name: "resource", fields: []rule{
		1: bytesRule(subKeyValue), 2: varintRule, 3: bytesRule(subEntityRef),
	}}
	scopeMsg = schema{name: "scope", fields: []rule{
		1: stringRule, 2: stringRule, 3: bytesRule(subKeyValue), 4: varintRule,
	}}
	entityRefMsg = schema{name: "entity_ref", fields: []rule{1: stringRule, 2: stringRule, 3: stringRule, 4: stringRule}}
	eventMsg     = schema{name: "event", fields: []rule{
		1: fixed64Rule, 2: stringRule, 3: bytesRule(subKeyValue), 4: varintRule,
	}}
	linkMsg = schema{name: "link", fields: []rule{
		1: bytesRule(subTraceID), 2: bytesRule(subSpanID), 3: stringRule, 4: bytesRule(subKeyValue),
		5: varintRule, 6: fixed32Rule,
	}}
)

// field reads the field at buf[off:] of a message s, whose first byte is
// at base in the scanned input, and checks it against s: its wire type and,
// for the fields that have one, its payload. Payloads of subNone fields are
// left to the caller.
func (s *schema) field(buf []byte, off, base int) (num protowire.Number, typ protowire.Type, v []byte, next int, err error) {
	// Most fields have a one-byte tag (numbers below 16) and a short value:
	// read those inline, and leave the rest, and every fault, to readField.
	ok := false
	if off+1 < len(buf) && buf[off] >= 8 && buf[off] < 0x80 {
		num, typ = protowire.Number(buf[off]>>3), protowire.Type(buf[off]&7)
		switch typ {
		case protowire.BytesType:
			if l := int(buf[off+1]); l < 0x80 {
				next = off + 2 + l
				if ok = next <= len(buf); ok {
					v = buf[off+2 : next]
				}
			} else if off+2 < len(buf) && buf[off+2] < 0x80 { // a length of two bytes: spans
				next = off + 3 + (l&0x7f | int(buf[off+2])<<7)
				if ok = next <= len(buf); ok {
					v = buf[off+3 : next]
				}
			}
		case protowire.VarintType:
			if ok = buf[off+1] < 0x80; ok {
				v, next = buf[off+1:off+2], off+2
			}
		case protowire.Fixed64Type:
			if ok = off+9 <= len(buf); ok {
				v, next = buf[off+1:off+9], off+9
			}
		case protowire.Fixed32Type:
			if ok = off+5 <= len(buf); ok {
				v, next = buf[off+1:off+5], off+5
			}
		}
	}
	if !ok {
		var problem string
		num, typ, v, next, problem = readField(buf, off)
		if problem != "" {
			return 0, 0, nil, 0, malformed(fmt.Sprintf("%s in %s field %d", problem, s.name, num), base+off)
		}
	}
	r := s.rule(num)
	if !r.known {
		return num, typ, v, next, nil
	}
	if typ != r.typ {
		return 0, 0, nil, 0, malformed(fmt.Sprintf("wrong wire type %d for %s field %d", typ, s.name, num), base+off)
	}
	switch r.sub {
	case subNone:
	case subKeyValue: // the most frequent, without a call to checkSub
		err = checkKeyValue(v, base+next-len(v), 0)
	default:
		err = checkSub(r.sub, v, base+next-len(v))
	}
	if err != nil {
		return 0, 0, nil, 0, err
	}
	return num, typ, v, next, nil
}

// check walks a whole message of schema s.
func (s *schema) check(buf []byte, base int) error {
	for off := 0; off < len(buf); {
		_, _, _, next, err := s.field(buf, off, base)
		if err != nil {
			return err
		}
		off = next
	}
	return nil
}

func checkSub(k sub, v []byte, base int) error {
	switch k {
	case subTraceID:
		if len(v) != 0 && len(v) != 16 {
			return malformed("trace_id is not 16 bytes", base)
		}
	case subSpanID:
		if len(v) != 0 && len(v) != 8 {
			return malformed("span_id is not 8 bytes", base)
		}
	case subKeyValue:
		return checkKeyValue(v, base, 0)
	case subEntityRef:
		return entityRefMsg.check(v, base)
	case subEvent:
		return eventMsg.check(v, base)
	case subLink:
		return linkMsg.check(v, base)
	}
	return nil
}
