package otlpguard

import (
	"errors"
	"fmt"
)

// checkReference is Check as it was before its fast paths (commit 4ce0236):
// the byte-at-a-time walk FuzzCheckMatchesReference compares Check with.
// It walks the protobuf encoding of one export request of the given
// signal and returns an error wrapping ErrTooDeep when an AnyValue nests
// deeper than MaxDepth, or ErrMalformed when a field the walk must read is
// cut short or carries an invalid wire type. It reads each byte once, keeps
// its stack in a fixed array, and allocates nothing unless it fails.
func checkReference(sig Signal, b []byte) error {
	if int(sig) >= len(roots) {
		return fmt.Errorf("check %v request: unknown signal", sig)
	}
	root := roots[sig]
	var stack [maxFrames]frame
	sp, depth := 0, 0
	cur := frame{end: len(b), kind: root}
	pos := 0
	for {
		if pos >= cur.end {
			if sp == 0 {
				return nil
			}
			if cur.kind == kAnyValue {
				depth--
			}
			sp--
			cur = stack[sp]
			continue
		}
		tag, n := uvarintReference(b[pos:cur.end])
		// pdata reads the field number as an int32: a tag whose number does
		// not fit would otherwise reach a field the walk skipped.
		fieldNum := int32(tag >> 3) //nolint:gosec // truncated as pdata truncates it
		if n == 0 || fieldNum <= 0 {
			return malformed(sig, pos, "bad field tag")
		}
		pos += n
		field, wire := uint64(fieldNum), tag&7
		switch wire {
		case 0: // varint
			_, n = uvarintReference(b[pos:cur.end])
			if n == 0 {
				return malformed(sig, pos, "bad varint")
			}
			pos += n
		case 1: // fixed64
			pos += 8
		case 5: // fixed32
			pos += 4
		case 2: // length-delimited
			l, n := uvarintReference(b[pos:cur.end])
			if n == 0 || l > uint64(cur.end-pos-n) {
				return malformed(sig, pos, "bad length")
			}
			pos += n
			child := childKindReference(cur.kind, field)
			if child == kNone {
				pos += int(l)
				continue
			}
			if child == kAnyValue {
				depth++
				if depth > MaxDepth {
					return fmt.Errorf("check %v request: %w: an AnyValue at byte %d is nested more than %d levels deep",
						sig, ErrTooDeep, pos, MaxDepth)
				}
			}
			if sp == len(stack) { // cannot happen: depth bounds sp
				return fmt.Errorf("check %v request: %w: messages nested more than %d levels deep", sig, ErrTooDeep, maxFrames)
			}
			stack[sp] = cur
			sp++
			cur = frame{end: pos + int(l), kind: child}
		case 3: // start group: skipped as pdata skips it, without recursion
			var err error
			if pos, err = skipGroupReference(b[:cur.end], pos); err != nil {
				return malformed(sig, pos, err.Error())
			}
		default: // end group outside a group, or wire types 6 and 7
			return malformed(sig, pos, fmt.Sprintf("wire type %d", wire))
		}
		if pos > cur.end {
			return malformed(sig, cur.end, "field runs past the end of its message")
		}
	}
}

// skipGroup skips the fields of a group that started before pos, through
// its matching end-group tag, and returns the position after it.
func skipGroupReference(b []byte, pos int) (int, error) {
	for depth := 1; depth > 0; {
		tag, n := uvarintReference(b[pos:])
		if n == 0 {
			return pos, errors.New("bad tag in group")
		}
		pos += n
		switch tag & 7 {
		case 0:
			if _, n = uvarintReference(b[pos:]); n == 0 {
				return pos, errors.New("bad varint in group")
			}
			pos += n
		case 1:
			pos += 8
		case 2:
			l, n := uvarintReference(b[pos:])
			if n == 0 || l > uint64(len(b)-pos-n) {
				return pos, errors.New("bad length in group")
			}
			pos += n + int(l)
		case 3:
			depth++
		case 4:
			depth--
		case 5:
			pos += 4
		default:
			return pos, fmt.Errorf("wire type %d in group", tag&7)
		}
		if pos > len(b) {
			return len(b), errors.New("group runs past the end of its message")
		}
	}
	return pos, nil
}

// uvarint decodes a protobuf varint from the start of b and returns it and
// its length, or a length of 0 when b does not start with a valid varint.
// Like pdata's decoder, it takes up to 10 bytes and drops bits past 64.
func uvarintReference(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < len(b) && i < 10; i++ {
		c := b[i]
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return v, i + 1
		}
	}
	return 0, 0
}

// childKindReference returns the kind of field f of a message of kind k, kNone when
// the field cannot lead to an AnyValue.
func childKindReference(k kind, f uint64) kind {
	if f < maxSchemaField {
		return schema[k][f]
	}
	if f == deprecatedScope {
		switch k {
		case kResourceSpans:
			return kScopeSpans
		case kResourceMetrics:
			return kScopeMetrics
		case kResourceLogs:
			return kScopeLogs
		}
	}
	return kNone
}
