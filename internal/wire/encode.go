package wire

import (
	"google.golang.org/protobuf/encoding/protowire"
)

// AppendSpan appends the body of the span message raw to dst with its
// trace_state (field 3) replaced by ts; an empty ts removes it. raw must be a
// span Scan accepted.
func AppendSpan(dst, raw []byte, ts string) []byte {
	off := 0
	for off < len(raw) {
		num, typ, n := protowire.ConsumeTag(raw[off:])
		m := protowire.ConsumeFieldValue(num, typ, raw[off+n:])
		if num != 3 {
			dst = append(dst, raw[off:off+n+m]...)
		}
		off += n + m
	}
	if len(ts) > 0 {
		dst = protowire.AppendTag(dst, 3, protowire.BytesType)
		dst = protowire.AppendString(dst, ts)
	}
	return dst
}

// AppendSpanAttrs is AppendSpan that also appends attrs, Span.attributes
// entries (field 9, as AppendStringAttr makes them), to the span, in place
// of the span's own attributes with the same keys: a span that already
// carries one of them (annotated by an earlier tier, or kept again) ends
// with each key once.
func AppendSpanAttrs(dst, raw []byte, ts string, attrs []byte) []byte {
	off := 0
	for off < len(raw) {
		num, typ, n := protowire.ConsumeTag(raw[off:])
		m := protowire.ConsumeFieldValue(num, typ, raw[off+n:])
		field := raw[off : off+n+m]
		off += n + m
		if num == 3 || (num == 9 && typ == protowire.BytesType && hasAttr(attrs, attrKey(field[n:]))) {
			continue
		}
		dst = append(dst, field...)
	}
	if len(ts) > 0 {
		dst = protowire.AppendTag(dst, 3, protowire.BytesType)
		dst = protowire.AppendString(dst, ts)
	}
	return append(dst, attrs...)
}

// attrKey returns the key of an encoded attributes entry (a length-prefixed
// KeyValue), or nil.
func attrKey(entry []byte) []byte {
	kv, n := protowire.ConsumeBytes(entry)
	if n < 0 {
		return nil
	}
	var key []byte
	forEachBytesField(kv, 1, func(v []byte) { key = v })
	return key
}

// hasAttr reports whether attrs, attributes entries, has one with key.
func hasAttr(attrs, key []byte) bool {
	found := false
	forEachBytesField(attrs, 9, func(kv []byte) {
		forEachBytesField(kv, 1, func(k []byte) { found = found || string(k) == string(key) })
	})
	return found
}

// PeekSpan returns the span ID and trace state of the span message raw,
// which must be a span Scan accepted.
func PeekSpan(raw []byte) (id [8]byte, ts []byte) {
	off := 0
	for off < len(raw) {
		num, typ, n := protowire.ConsumeTag(raw[off:])
		off += n
		if typ == protowire.BytesType && (num == 2 || num == 3) {
			v, m := protowire.ConsumeBytes(raw[off:])
			if num == 2 {
				id = [8]byte{} // the last occurrence wins, even if empty, as in Scan
				copy(id[:], v)
			} else {
				ts = v
			}
			off += m
			continue
		}
		off += protowire.ConsumeFieldValue(num, typ, raw[off:])
	}
	return id, ts
}

// AppendResourceSpans appends one TracesData.resource_spans field (number 1)
// to dst, holding one ScopeSpans with the given framing and span bodies.
// Span i is spans[ends[i-1]:ends[i]] (ends[-1] being 0).
func AppendResourceSpans(dst []byte, sc *Scope, spans []byte, ends []int) []byte {
	spansSize := 0
	prev := 0
	for _, e := range ends {
		spansSize += fieldSize(2, e-prev)
		prev = e
	}
	dst = appendResourceSpansHead(dst, sc, spansSize)
	prev = 0
	for _, e := range ends {
		dst = appendField(dst, 2, spans[prev:e])
		prev = e
	}
	return appendResourceSpansTail(dst, sc)
}

// appendResourceSpansHead appends what comes before the span fields of
// one resource_spans field holding one ScopeSpans under sc, whose span
// fields (tag, length, body each) take spanFields bytes: the two messages'
// tags and lengths, the resource and the scope.
func appendResourceSpansHead(dst []byte, sc *Scope, spanFields int) []byte {
	scopeSpansSize, rsSize := resourceSpansSizes(sc, spanFields)
	dst = protowire.AppendTag(dst, 1, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(rsSize))
	if sc.Resource != nil {
		dst = appendField(dst, 1, sc.Resource)
	}
	dst = protowire.AppendTag(dst, 2, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(scopeSpansSize))
	if sc.Scope != nil {
		dst = appendField(dst, 1, sc.Scope)
	}
	return dst
}

// appendResourceSpansTail appends what follows the span fields: the
// scope's schema URL (closing the ScopeSpans), then the resource's.
func appendResourceSpansTail(dst []byte, sc *Scope) []byte {
	if len(sc.ScopeSchemaURL) > 0 {
		dst = appendField(dst, 3, sc.ScopeSchemaURL)
	}
	if len(sc.ResourceSchemaURL) > 0 {
		dst = appendField(dst, 3, sc.ResourceSchemaURL)
	}
	return dst
}

// ResourceSpansSize is the size of the resource_spans field (tag, length,
// body) AppendResourceSpans writes for spans under sc whose span fields
// (tag, length, body each) take spanFields bytes.
func ResourceSpansSize(sc *Scope, spanFields int) int {
	_, rs := resourceSpansSizes(sc, spanFields)
	return fieldSize(1, rs)
}

// resourceSpansSizes gives the bodies' sizes of the scope_spans and the
// resource_spans messages AppendResourceSpans writes for spans under sc
// whose span fields take spanFields bytes.
func resourceSpansSizes(sc *Scope, spanFields int) (scopeSpans, resourceSpans int) {
	scopeSpans = spanFields
	if sc.Scope != nil {
		scopeSpans += fieldSize(1, len(sc.Scope))
	}
	if len(sc.ScopeSchemaURL) > 0 {
		scopeSpans += fieldSize(3, len(sc.ScopeSchemaURL))
	}
	resourceSpans = fieldSize(2, scopeSpans)
	if sc.Resource != nil {
		resourceSpans += fieldSize(1, len(sc.Resource))
	}
	if len(sc.ResourceSchemaURL) > 0 {
		resourceSpans += fieldSize(3, len(sc.ResourceSchemaURL))
	}
	return scopeSpans, resourceSpans
}

func fieldSize(num protowire.Number, n int) int {
	return protowire.SizeTag(num) + protowire.SizeBytes(n)
}

func appendField(dst []byte, num protowire.Number, v []byte) []byte {
	dst = protowire.AppendTag(dst, num, protowire.BytesType)
	return protowire.AppendBytes(dst, v)
}

// ForEachResourceSpans calls f with each resource_spans field (tag and
// length included, so that f's rs is itself an encoded TracesData) of buf,
// an encoded TracesData written by AppendResourceSpans, and the number of
// spans it holds. It stops at the first malformed byte.
func ForEachResourceSpans(buf []byte, f func(rs []byte, spans int)) {
	for len(buf) > 0 {
		num, typ, n := protowire.ConsumeTag(buf)
		if n < 0 {
			return
		}
		m := protowire.ConsumeFieldValue(num, typ, buf[n:])
		if m < 0 {
			return
		}
		field := buf[:n+m]
		buf = buf[n+m:]
		if num != 1 || typ != protowire.BytesType {
			continue
		}
		body, _ := protowire.ConsumeBytes(field[n:])
		f(field, countSpans(body))
	}
}

// countSpans counts the spans of an encoded ResourceSpans.
func countSpans(rs []byte) int {
	spans := 0
	forEachBytesField(rs, 2, func(ss []byte) {
		forEachBytesField(ss, 2, func([]byte) { spans++ })
	})
	return spans
}

// forEachBytesField calls f with each length-delimited field num of msg.
func forEachBytesField(msg []byte, num protowire.Number, f func([]byte)) {
	for len(msg) > 0 {
		n, typ, l := protowire.ConsumeTag(msg)
		if l < 0 {
			return
		}
		msg = msg[l:]
		if n == num && typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(msg)
			if m < 0 {
				return
			}
			f(v)
			msg = msg[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(n, typ, msg)
		if m < 0 {
			return
		}
		msg = msg[m:]
	}
}

// IsRoot reports whether the span message raw has no parent: its last
// parent_span_id is absent, empty or all zero, as Scan reads it.
func IsRoot(raw []byte) bool {
	root := true
	forEachBytesField(raw, 4, func(v []byte) {
		root = len(v) != 8 || allZero(v)
	})
	return root
}

// AppendStringAttr appends a Span.attributes entry (field 9) holding the
// string attribute key=value to dst.
func AppendStringAttr(dst []byte, key, value string) []byte {
	av := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), value)
	return appendKeyValue(dst, key, av)
}

// AppendIntAttr appends a Span.attributes entry (field 9) holding the int
// attribute key=value to dst.
func AppendIntAttr(dst []byte, key string, value int64) []byte {
	av := protowire.AppendVarint(protowire.AppendTag(nil, 3, protowire.VarintType), uint64(value))
	return appendKeyValue(dst, key, av)
}

func appendKeyValue(dst []byte, key string, anyValue []byte) []byte {
	kv := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), key)
	kv = appendField(kv, 2, anyValue)
	return appendField(dst, 9, kv)
}
