package otlpguard

import "fmt"

// checkReference is Check as it was before its fast paths (commit 4ce0236),
// with the rule for a key-value's missing value that came after:
// the field-by-field walk FuzzCheckMatchesReference compares Check with.
// It shares skipGroup, uvarint, childKind, tooDeep and malformed with Check, which
// the fast paths left as they were.
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
		tag, n := uvarint(b[pos:cur.end])
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
			_, n = uvarint(b[pos:cur.end])
			if n == 0 {
				return malformed(sig, pos, "bad varint")
			}
			pos += n
		case 1: // fixed64
			pos += 8
		case 5: // fixed32
			pos += 4
		case 2: // length-delimited
			l, n := uvarint(b[pos:cur.end])
			if n == 0 || l > uint64(cur.end-pos-n) {
				return malformed(sig, pos, "bad length")
			}
			pos += n
			child := childKind(cur.kind, field)
			if child == kNone {
				pos += int(l)
				continue
			}
			if child == kAnyValue {
				depth++
				if depth > MaxDepth {
					return tooDeep(sig, pos)
				}
			}
			// A key-value's value, present or not, is one level deeper.
			if child == kKeyValue && depth >= MaxDepth {
				return tooDeep(sig, pos)
			}
			if sp == len(stack) { // cannot happen: depth bounds sp
				return fmt.Errorf("check %v request: %w: messages nested more than %d levels deep", sig, ErrTooDeep, maxFrames)
			}
			stack[sp] = cur
			sp++
			cur = frame{end: pos + int(l), kind: child}
		case 3: // start group: skipped as pdata skips it, without recursion
			var err error
			if pos, err = skipGroup(b[:cur.end], pos); err != nil {
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
