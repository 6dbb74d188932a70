package wire

import (
	"errors"
	"fmt"
)

// MaxAnyValueDepth bounds how deeply AnyValues may nest: an attribute's
// value is at depth 1, a value inside its kvlist_value or array_value at
// depth 2, and so on. pdata decodes (and encodes, and copies) AnyValues by
// recursion without a limit, so a request of a few megabytes nested a few
// hundred thousand levels deep overflows the goroutine stack, which kills
// the process. 128 levels is far more than any instrumentation writes and
// costs pdata a few kilobytes of stack.
const MaxAnyValueDepth = 128

// ErrTooDeep is wrapped (with ErrMalformed) by the errors for AnyValues
// nested deeper than MaxAnyValueDepth.
var ErrTooDeep = errors.New("AnyValue nested too deeply")

var (
	keyValueMsg = schema{name: "key_value", fields: []rule{1: stringRule, 2: stringRule, 3: varintRule}}
	anyValueMsg = schema{name: "any_value", fields: []rule{
		1: stringRule, 2: varintRule, 3: varintRule, 4: fixed64Rule,
		5: stringRule, 6: stringRule, 7: stringRule, 8: varintRule,
	}}
	arrayValueMsg   = schema{name: "array_value", fields: []rule{1: stringRule}}
	keyValueListMsg = schema{name: "kvlist_value", fields: []rule{1: stringRule}}
)

// CheckAnyValue checks that b, an encoded AnyValue enclosed in depth other
// AnyValues (0 for an attribute's value), is one pdata decodes: every field
// pdata knows has its wire type, the framing is sound, there are no groups,
// and no AnyValue in it lies deeper than MaxAnyValueDepth. Its errors wrap
// ErrMalformed, and also ErrTooDeep when the nesting is the fault. It
// recurses at most MaxAnyValueDepth levels however deep the input nests.
func CheckAnyValue(b []byte, depth int) error {
	return checkAnyValue(b, 0, depth)
}

// checkKeyValue checks an encoded KeyValue whose value is enclosed in depth
// AnyValues, depth < MaxAnyValueDepth (checkList sees to it, an attribute's
// is 0); base is b's offset in the scanned input.
func checkKeyValue(b []byte, base, depth int) error {
	for off := 0; off < len(b); {
		// The common case, a key or value shorter than 128 bytes, inline.
		if off+1 < len(b) && b[off+1] < 0x80 {
			next := off + 2 + int(b[off+1])
			if next <= len(b) {
				switch b[off] {
				case 0x0a: // key
					off = next
					continue
				case 0x12: // value
					if v := b[off+2 : next]; !scalarValue(v) {
						if err := checkAnyValue(v, base+off+2, depth); err != nil {
							return err
						}
					}
					off = next
					continue
				}
			}
		}
		num, _, v, next, err := keyValueMsg.field(b, off, base)
		if err != nil {
			return err
		}
		if num == 2 {
			if err := checkAnyValue(v, base+next-len(v), depth); err != nil {
				return err
			}
		}
		off = next
	}
	return nil
}

// scalarValue reports whether v, an encoded AnyValue, is exactly one
// field of the kinds most attribute values are: a string shorter than 128
// bytes, an int or bool of at most two bytes, or a double. Such a value
// needs no further check.
func scalarValue(v []byte) bool {
	if len(v) < 2 {
		return false
	}
	switch v[0] {
	case 0x0a: // string_value
		return v[1] < 0x80 && int(v[1])+2 == len(v)
	case 0x10, 0x18: // bool_value, int_value
		return len(v) == 2 && v[1] < 0x80 || len(v) == 3 && v[1] >= 0x80 && v[2] < 0x80
	case 0x21: // double_value
		return len(v) == 9
	}
	return false
}

// tooDeep is the error of a value at byte base deeper than
// MaxAnyValueDepth.
func tooDeep(base int) error {
	return fmt.Errorf("%w: %w: deeper than %d levels at byte %d", ErrMalformed, ErrTooDeep, MaxAnyValueDepth, base)
}

func checkAnyValue(b []byte, base, depth int) error {
	if depth >= MaxAnyValueDepth {
		return tooDeep(base)
	}
	for off := 0; off < len(b); {
		// The common cases inline: a short string, a bool or int of one
		// byte, a double.
		if off+1 < len(b) {
			switch t := b[off]; {
			case t == 0x0a && b[off+1] < 0x80: // string_value
				if next := off + 2 + int(b[off+1]); next <= len(b) {
					off = next
					continue
				}
			case (t == 0x10 || t == 0x18) && b[off+1] < 0x80: // bool_value, int_value
				off += 2
				continue
			case (t == 0x10 || t == 0x18) && off+2 < len(b) && b[off+2] < 0x80: // of two bytes
				off += 3
				continue
			case t == 0x21 && off+9 <= len(b): // double_value
				off += 9
				continue
			}
		}
		num, _, v, next, err := anyValueMsg.field(b, off, base)
		if err != nil {
			return err
		}
		switch num {
		case 5:
			err = checkList(&arrayValueMsg, v, base+next-len(v), depth+1)
		case 6:
			err = checkList(&keyValueListMsg, v, base+next-len(v), depth+1)
		}
		if err != nil {
			return err
		}
		off = next
	}
	return nil
}

// checkList checks an ArrayValue or a KeyValueList, whose elements (field 1)
// hold values at the given depth.
func checkList(s *schema, b []byte, base, depth int) error {
	for off := 0; off < len(b); {
		num, _, v, next, err := s.field(b, off, base)
		if err != nil {
			return err
		}
		if num == 1 {
			vbase := base + next - len(v)
			switch {
			case s == &arrayValueMsg:
				err = checkAnyValue(v, vbase, depth)
			case depth >= MaxAnyValueDepth:
				// A key-value's value is one level deeper, with or
				// without a value field: pdata gives a key-value
				// without one an empty value.
				err = tooDeep(vbase)
			default:
				err = checkKeyValue(v, vbase, depth)
			}
			if err != nil {
				return err
			}
		}
		off = next
	}
	return nil
}
