package wire

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
)

// Hand-made encodings pdata accepts but no SDK writes, split every way:
// the pieces hold each span once, under the resource and scope pdata
// decodes for it (checkSplit compares with pdata), and each is the size
// Split says.

func lenF(num protowire.Number, v ...[]byte) []byte {
	var body []byte
	for _, b := range v {
		body = append(body, b...)
	}
	return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), body)
}

func varintF(num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), v)
}

func strF(num protowire.Number, s string) []byte { return lenF(num, []byte(s)) }

// rawSpan is a span message body with IDs from n and a name.
func rawSpan(n byte, name string) []byte {
	return append(append(append(
		strF(1, string([]byte{n, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})),
		strF(2, string([]byte{n, 2, 3, 4, 5, 6, 7, 8}))...),
		strF(5, name)...),
		varintF(6, 2)...)
}

func kv(key, value string) []byte { return lenF(1, strF(1, key), lenF(2, strF(1, value))) }

func TestSplitOddEncodings(t *testing.T) {
	resource := func(svc string) []byte { return lenF(1, kv("service.name", svc)) } // field 1 of ResourceSpans
	scope := func(name string) []byte { return lenF(1, strF(1, name), strF(2, "1.0")) }
	span := func(n byte) []byte { return lenF(2, rawSpan(n, "op")) }
	unknownVarint := varintF(99, 7)
	unknownBytes := strF(98, "future")
	entityRef := lenF(3, strF(2, "service"), strF(3, "service.name"))

	reqs := map[string][]byte{
		"resource and schema after the scopes, unknown fields": lenF(1,
			lenF(2, span(1), span(2), scope("a"), strF(3, "https://scope/1")),
			unknownVarint,
			lenF(2, scope("b"), span(3), unknownBytes, span(4)),
			resource("svc-1"),
			strF(3, "https://res/1"),
			unknownBytes,
		),
		"repeated resource and scope merge": lenF(1,
			lenF(1, kv("a", "1")),
			lenF(2, scope("x"), span(5), lenF(1, strF(2, "2.0")), span(6), strF(3, "https://s/first"), strF(3, "https://s/last")),
			lenF(1, kv("b", "2")),
			strF(3, "https://r/first"),
			strF(3, "https://r/last"),
		),
		"entity refs, empty resource and scope present": append(append(lenF(1,
			lenF(1, kv("service.name", "e"), entityRef),
			lenF(2, span(7), span(8)),
		), lenF(1,
			lenF(1), // an empty resource
			lenF(2, lenF(1), span(9)),
			lenF(2), // a scope without spans
		)...), lenF(1)...), // a resource without scopes
		"deprecated instrumentation_library_spans": lenF(1,
			resource("old"),
			lenF(1000, scope("lib"), span(10), span(11)),
			lenF(1000, span(12)),
		),
		"scope spans with field 1000 alongside": lenF(1,
			resource("mixed"),
			lenF(1000, scope("dropped"), span(13)),
			lenF(2, scope("kept"), span(14), span(15)),
		),
	}
	for name, buf := range reqs {
		t.Run(name, func(t *testing.T) {
			var b Batch
			require.NoError(t, Scan(buf, &b))
			require.NotEmpty(t, b.Spans)
			for _, fits := range []func(size, spans, groups int) bool{
				func(int, int, int) bool { return true },
				func(_, spans, _ int) bool { return spans <= 1 },
				func(_, spans, _ int) bool { return spans <= 2 },
				func(_, _, groups int) bool { return groups <= 1 },
				func(size, _, _ int) bool { return size <= 90 },
			} {
				checkSplit(t, buf, &b, fits)
			}
		})
	}
}
