// Package otlpguard bounds how deeply AnyValues nest in an OTLP export
// request before anything decodes it.
//
// pdata decodes an AnyValue (and its kvlist_value and array_value) by
// recursion with no depth limit, so a request of nested AnyValues a few
// bytes per level deep overflows the goroutine stack, which is a fatal error
// that takes the whole collector down, not a panic a handler can recover.
// [Check] walks the protobuf bytes of a request once, iteratively, following
// the OTLP schema along every path that reaches an AnyValue (attributes of
// resources, scopes, spans, span events and links, data points, exemplars,
// metric metadata, log records and their bodies, the profiles dictionary),
// and refuses a request whose AnyValues nest deeper than [MaxDepth].
// [CheckJSON] bounds the nesting of an OTLP/JSON request the same way.
package otlpguard // import "github.com/tailsift/tailsift/internal/otlpguard"

import (
	"errors"
	"fmt"
)

// MaxDepth is the deepest AnyValue nesting a request may hold: an attribute
// value is at depth 1, a value inside its kvlist_value or array_value at
// depth 2, and so on. Real telemetry rarely nests more than a handful of
// levels; 128 levels of pdata's decoder use well under 1 MiB of stack.
const MaxDepth = 128

// ErrTooDeep is the error of a request whose AnyValues nest deeper than
// MaxDepth; the error Check returns wraps it.
var ErrTooDeep = errors.New("AnyValue nested deeper than the limit")

// ErrMalformed is the error of a request that is not valid protobuf where
// the walk needs to read it; the error Check returns wraps it. pdata would
// refuse such a request too.
var ErrMalformed = errors.New("malformed protobuf")

// Signal says which export request a body holds.
type Signal uint8

// The signals, one per OTLP export service.
const (
	Traces Signal = iota
	Metrics
	Logs
	Profiles
)

func (s Signal) String() string {
	switch s {
	case Traces:
		return "traces"
	case Metrics:
		return "metrics"
	case Logs:
		return "logs"
	case Profiles:
		return "profiles"
	}
	return fmt.Sprintf("Signal(%d)", uint8(s))
}

// frame is a message the walk is inside of: its kind and where it ends.
type frame struct {
	end  int
	kind kind
}

// maxFrames bounds the walk's stack: the deepest chain of messages above the
// first AnyValue (request, resource, scope, metric, data container, data
// point, exemplar, key-value: 8) plus three frames (AnyValue, kvlist or
// array, key-value) per allowed level, with room to spare.
const maxFrames = 12 + 3*(MaxDepth+1)

// Check walks the protobuf encoding of one export request of the given
// signal and returns an error wrapping ErrTooDeep when an AnyValue nests
// deeper than MaxDepth, or ErrMalformed when a field the walk must read is
// cut short or carries an invalid wire type. It reads each byte at most
// once, keeps its stack in a fixed array, and allocates nothing unless it
// fails.
//
// Its verdicts are those of the plain field-by-field walk (checkReference
// in the tests, which fuzz one against the other); the fast paths only
// shortcut what that walk would do: one- and two-byte tags and one-byte
// lengths read in place, and a key-value or AnyValue that holds a single
// scalar value skipped whole once its bytes are known to be well formed
// and its depth allowed.
func Check(sig Signal, b []byte) error {
	if int(sig) >= len(roots) {
		return fmt.Errorf("check %v request: unknown signal", sig)
	}
	var stack [maxFrames]frame
	sp, depth := 0, 0
	k, pos, end := roots[sig], 0, len(b)
	for {
		if pos >= end {
			if sp == 0 {
				return nil
			}
			if k == kAnyValue {
				depth--
			}
			sp--
			end, k = stack[sp].end, stack[sp].kind
			continue
		}
		// end <= len(b) always: it is len(b) or the end of a field whose
		// length was checked against its parent's end.
		var field, wire uint64
		if c := b[pos]; c < 0x80 && c >= 8 { // fields 1-15
			field, wire = uint64(c>>3), uint64(c&7)
			pos++
		} else if pos+1 < end && c >= 0x80 && b[pos+1] < 0x80 { // fields 16-2047
			field, wire = uint64(c&0x7f)>>3|uint64(b[pos+1])<<4, uint64(c&7)
			if field == 0 {
				return malformed(sig, pos, "bad field tag")
			}
			pos += 2
		} else {
			tag, n := uvarint(b[pos:end])
			// pdata reads the field number as an int32: a tag whose number
			// does not fit would otherwise reach a field the walk skipped.
			fieldNum := int32(tag >> 3) //nolint:gosec // truncated as pdata truncates it
			if n == 0 || fieldNum <= 0 {
				return malformed(sig, pos, "bad field tag")
			}
			pos += n
			field, wire = uint64(fieldNum), tag&7
		}
		if wire != 2 {
			switch wire {
			case 0: // varint
				n := varintLen(b, pos, end)
				if n == 0 {
					return malformed(sig, pos, "bad varint")
				}
				pos += n
			case 1: // fixed64
				if pos += 8; pos > end {
					return malformed(sig, end, "field runs past the end of its message")
				}
			case 5: // fixed32
				if pos += 4; pos > end {
					return malformed(sig, end, "field runs past the end of its message")
				}
			case 3: // start group: skipped as pdata skips it, without recursion
				var err error
				if pos, err = skipGroup(b[:end], pos); err != nil {
					return malformed(sig, pos, err.Error())
				}
			default: // end group outside a group, or wire types 6 and 7
				return malformed(sig, pos, fmt.Sprintf("wire type %d", wire))
			}
			continue // a varint or a group ends inside the message
		}
		// A length-delimited field, the most common.
		var l uint64
		if pos < end && b[pos] < 0x80 {
			l = uint64(b[pos])
			if l > uint64(end-pos-1) {
				return malformed(sig, pos, "bad length")
			}
			pos++
		} else if pos+1 < end && b[pos+1] < 0x80 { // a span's length, most often
			l = uint64(b[pos]&0x7f) | uint64(b[pos+1])<<7
			if l > uint64(end-pos-2) {
				return malformed(sig, pos, "bad length")
			}
			pos += 2
		} else {
			var n int
			l, n = uvarint(b[pos:end])
			if n == 0 || l > uint64(end-pos-n) {
				return malformed(sig, pos, "bad length")
			}
			pos += n
		}
		child := childKind(k, field)
		switch child {
		case kNone:
			pos += int(l)
			continue
		case kKeyValue:
			// A key-value's value is one level deeper than the key-value,
			// with or without a value field: pdata gives it an empty value.
			if depth >= MaxDepth {
				return tooDeep(sig, pos)
			}
			if scalarKeyValue(b, pos, pos+int(l)) {
				pos += int(l)
				continue
			}
		case kAnyValue:
			depth++
			if depth > MaxDepth {
				return tooDeep(sig, pos)
			}
			if scalarAnyValue(b, pos, pos+int(l)) {
				depth--
				pos += int(l)
				continue
			}
		}
		if sp == len(stack) { // cannot happen: depth bounds sp
			return fmt.Errorf("check %v request: %w: messages nested more than %d levels deep", sig, ErrTooDeep, maxFrames)
		}
		stack[sp] = frame{end: end, kind: k}
		sp++
		k, end = child, pos+int(l)
	}
}

// scalarKeyValue reports whether b[pos:end] is a KeyValue (or
// KeyValueAndUnit) whose fields are a key (field 1) and then a value
// (field 2) that scalarAnyValue accepts, with one-byte tags and lengths
// and nothing else: a KeyValue the walk would read without finding an
// error or an AnyValue deeper than the value itself.
func scalarKeyValue(b []byte, pos, end int) bool {
	if end-pos < 4 || b[pos] != 0x0a || b[pos+1] >= 0x80 { // key: field 1, length-delimited
		return false
	}
	v := pos + 2 + int(b[pos+1])
	if end-v < 2 || b[v] != 0x12 || b[v+1] >= 0x80 || int(b[v+1]) != end-v-2 { // value: field 2, to the end
		return false
	}
	if v += 2; end-v >= 2 && b[v] == 0x0a && b[v+1] < 0x80 && int(b[v+1]) == end-v-2 { // the common string_value
		return true
	}
	return scalarAnyValue(b, v, end)
}

// scalarAnyValue reports whether b[pos:end] is an AnyValue that holds one
// scalar value (string, bool, int, double or bytes) and nothing else, or
// nothing at all: an AnyValue the walk would read without finding an
// error or a nested value.
func scalarAnyValue(b []byte, pos, end int) bool {
	if pos == end {
		return true
	}
	switch b[pos] {
	case 0x0a, 0x3a: // string_value, bytes_value
		if end-pos >= 2 && b[pos+1] < 0x80 {
			return int(b[pos+1]) == end-pos-2
		}
		l, n := uvarint(b[pos+1 : end])
		return n > 0 && l == uint64(end-pos-1-n)
	case 0x10, 0x18: // bool_value, int_value
		n := varintLen(b, pos+1, end)
		return n > 0 && pos+1+n == end
	case 0x21: // double_value
		return end-pos == 9
	}
	return false
}

// varintLen returns the length of the varint that starts at b[pos], or 0
// when b[pos:end] does not start with a valid one (uvarint's rules).
func varintLen(b []byte, pos, end int) int {
	if pos < end && b[pos] < 0x80 {
		return 1
	}
	_, n := uvarint(b[pos:end])
	return n
}

// tooDeep is the error of a value at byte pos deeper than MaxDepth.
func tooDeep(sig Signal, pos int) error {
	return fmt.Errorf("check %v request: %w: an AnyValue at byte %d is nested more than %d levels deep",
		sig, ErrTooDeep, pos, MaxDepth)
}

func malformed(sig Signal, pos int, what string) error {
	return fmt.Errorf("check %v request: %w at byte %d: %s", sig, ErrMalformed, pos, what)
}

// skipGroup skips the fields of a group that started before pos, through
// its matching end-group tag, and returns the position after it.
func skipGroup(b []byte, pos int) (int, error) {
	for depth := 1; depth > 0; {
		tag, n := uvarint(b[pos:])
		if n == 0 {
			return pos, errors.New("bad tag in group")
		}
		pos += n
		switch tag & 7 {
		case 0:
			if _, n = uvarint(b[pos:]); n == 0 {
				return pos, errors.New("bad varint in group")
			}
			pos += n
		case 1:
			pos += 8
		case 2:
			l, n := uvarint(b[pos:])
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
func uvarint(b []byte) (uint64, int) {
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
