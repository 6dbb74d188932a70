package wire

import "testing"

func TestForEachResourceSpans(t *testing.T) {
	sc := Scope{Resource: []byte{0x0a, 0x00}, Scope: []byte{0x0a, 0x01, 'x'}}
	span := []byte{0x2a, 0x01, 'a'} // name "a"
	var buf []byte
	buf = AppendResourceSpans(buf, &sc, append(append([]byte{}, span...), span...), []int{3, 6})
	buf = AppendResourceSpans(buf, &sc, span, []int{3})
	var counts []int
	total := 0
	ForEachResourceSpans(buf, func(rs []byte, spans int) {
		counts = append(counts, spans)
		total += len(rs)
		var b Batch
		if err := Scan(rs, &b); err != nil || len(b.Spans) != spans {
			t.Errorf("entry does not scan as a TracesData of %d spans: %v, %d", spans, err, len(b.Spans))
		}
	})
	if len(counts) != 2 || counts[0] != 2 || counts[1] != 1 || total != len(buf) {
		t.Fatalf("counts %v, covered %d of %d bytes", counts, total, len(buf))
	}
	// Truncated input stops the walk without panicking.
	n := 0
	ForEachResourceSpans(buf[:len(buf)-1], func([]byte, int) { n++ })
	if n != 1 {
		t.Fatalf("truncated: %d entries, want 1", n)
	}
}
