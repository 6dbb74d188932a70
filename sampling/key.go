package sampling

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"

	"github.com/cespare/xxhash/v2"
)

// KeyFields is the list of root-span fields a keyed policy (adaptive,
// dynamic) groups traces by. Each entry is one of
//   - "name": the span name,
//   - "kind": the span kind,
//   - "status": the span's status code,
//   - "resource.<attribute>": a resource attribute, e.g. resource.service.name,
//   - "span.<attribute>" or a bare "<attribute>": a span attribute, e.g. http.route.
//
// A field absent from the span counts as an empty value.
type KeyFields []string

// DefaultKeyFields is the root service plus the root span name.
var DefaultKeyFields = KeyFields{"resource.service.name", "name"}

// Validate checks each field.
func (k KeyFields) Validate() error {
	if len(k) == 0 {
		return fmt.Errorf("must list at least one field")
	}
	for i, f := range k {
		if _, err := parseKeyField(f); err != nil {
			return fmt.Errorf("%d: %w", i, err)
		}
	}
	return nil
}

type keyFieldKind uint8

const (
	keyName keyFieldKind = iota
	keyKind
	keyStatus
	keyResource
	keySpan
)

type keyField struct {
	kind keyFieldKind
	attr string
}

func parseKeyField(f string) (keyField, error) {
	switch {
	case f == "":
		return keyField{}, fmt.Errorf("empty field")
	case f == "name":
		return keyField{kind: keyName}, nil
	case f == "kind":
		return keyField{kind: keyKind}, nil
	case f == "status":
		return keyField{kind: keyStatus}, nil
	case strings.HasPrefix(f, "resource."):
		if len(f) == len("resource.") {
			return keyField{}, fmt.Errorf("%q names no attribute", f)
		}
		return keyField{kind: keyResource, attr: f[len("resource."):]}, nil
	case strings.HasPrefix(f, "span."):
		if len(f) == len("span.") {
			return keyField{}, fmt.Errorf("%q names no attribute", f)
		}
		return keyField{kind: keySpan, attr: f[len("span."):]}, nil
	}
	return keyField{kind: keySpan, attr: f}, nil
}

// Hasher returns the key function of k, for builder.Key: an xxhash of the
// fields' values, each tagged with its type and length so that distinct
// value lists cannot collide by concatenation. It allocates nothing.
func (k KeyFields) Hasher() (func(v *SpanView) uint64, error) {
	fields, err := k.parse()
	if err != nil {
		return nil, err
	}
	return func(v *SpanView) uint64 {
		var d xxhash.Digest
		d.Reset()
		var scratch [10]byte
		for _, f := range fields {
			var val Value
			switch f.kind {
			case keyName:
				val = Value{Kind: KindString, Bytes: v.Name}
			case keyKind:
				val = Value{Kind: KindInt, Int: int64(spanKind(v.Span))}
			case keyStatus:
				val = Value{Kind: KindInt, Int: int64(v.Status)}
			case keyResource:
				val, _ = v.ResourceAttr(f.attr)
			case keySpan:
				val, _ = v.SpanAttr(f.attr)
			}
			scratch[0] = byte(val.Kind)
			switch val.Kind {
			case KindBool:
				if val.Bool {
					scratch[1] = 1
				} else {
					scratch[1] = 0
				}
				_, _ = d.Write(scratch[:2])
			case KindInt:
				binary.LittleEndian.PutUint64(scratch[1:], uint64(val.Int))
				_, _ = d.Write(scratch[:9])
			case KindDouble:
				binary.LittleEndian.PutUint64(scratch[1:], math.Float64bits(val.Double))
				_, _ = d.Write(scratch[:9])
			default:
				binary.LittleEndian.PutUint32(scratch[1:], uint32(len(val.Bytes)))
				_, _ = d.Write(scratch[:5])
				_, _ = d.Write(val.Bytes)
			}
		}
		return d.Sum64()
	}, nil
}

// spanKind reads Span.kind (field 6) from an encoded span; 0 when absent.
func spanKind(span []byte) uint64 {
	v, ok := findVarint(span, 6)
	if !ok {
		return 0
	}
	return v
}

// Labeler returns a function that renders a root span's values of k, joined
// by " / ", as the status page names routes. It allocates the string.
func (k KeyFields) Labeler() (func(v *SpanView) string, error) {
	fields, err := k.parse()
	if err != nil {
		return nil, err
	}
	return labeler(fields), nil
}

// parse parses each field, the error naming its index.
func (k KeyFields) parse() ([]keyField, error) {
	fields := make([]keyField, len(k))
	for i, f := range k {
		kf, err := parseKeyField(f)
		if err != nil {
			return nil, fmt.Errorf("%d: %w", i, err)
		}
		fields[i] = kf
	}
	return fields, nil
}
