package cluster

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/router/routertest"
)

func encode(t testing.TB, td ptrace.Traces) []byte {
	t.Helper()
	b, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	require.NoError(t, err)
	return b
}

func TestControlRoundTrip(t *testing.T) {
	var w routertest.Workload
	spans := encode(t, w.Batch(3, 2))
	tests := []struct {
		name string
		c    Control
	}{
		{name: "forwarded", c: Control{Forwarded: true}},
		{name: "relayed", c: Control{Forwarded: true, Relayed: true}},
		{name: "handed over", c: Control{Forwarded: true, HandedOver: true}},
		{name: "handed over and relayed", c: Control{Forwarded: true, Relayed: true, HandedOver: true}},
		{name: "decisions", c: Control{Decisions: Decisions{
			Kept:    []Kept{{ID: [16]byte{1, 2, 3}, Threshold: 0}, {ID: [16]byte{9}, Threshold: 1<<56 - 1}},
			Dropped: []uint64{7, 1 << 63},
		}}},
		{name: "decisions with marks", c: Control{Forwarded: true, Decisions: Decisions{
			Kept: []Kept{
				{ID: [16]byte{1}, Threshold: 1 << 55, RV: 1<<56 - 1, HasRV: true},
				{ID: [16]byte{2}, Threshold: 3, RV: 0, HasRV: true},
				{ID: [16]byte{3}, Supplement: 1},
				{ID: [16]byte{4}, Supplement: 2},
				{ID: [16]byte{5}, Threshold: 9},
			},
			Dropped: []uint64{7},
		}}},
		{name: "demand", c: Control{Demand: &Demand{From: "10.0.0.5:4317", PerSecond: 123.5}}},
		{name: "demand and decisions", c: Control{Forwarded: true, Demand: &Demand{From: "gw:1"}, Decisions: Decisions{Dropped: []uint64{3}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := append(AppendControl(nil, &tt.c), spans...)
			got, rest, ok, err := SplitControl(buf)
			require.NoError(t, err)
			require.True(t, ok)
			assert.Equal(t, tt.c, got)
			assert.Equal(t, spans, rest)

			// pdata decodes a request with a control: the otlp receiver passes
			// it on to the processor, which strips it.
			td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(buf)
			require.NoError(t, err)
			assert.Equal(t, 6, td.SpanCount())
			again := encode(t, td)
			got2, rest2, ok, err := SplitControl(again)
			require.NoError(t, err)
			require.True(t, ok)
			assert.Equal(t, tt.c, got2)
			assert.Len(t, rest2, len(spans))
		})
	}
}

func TestSplitControlNotAControl(t *testing.T) {
	var w routertest.Workload
	plain := encode(t, w.Batch(2, 2))
	// A resource with the key among other attributes, or with spans, is an
	// ordinary resource.
	withSpans := ptrace.NewTraces()
	rs := withSpans.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutEmptyBytes(ControlKey).FromRaw([]byte{controlVersion, 0, 0, 0})
	rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty().SetName("x")
	twoAttrs := ptrace.NewTraces()
	attrs := twoAttrs.ResourceSpans().AppendEmpty().Resource().Attributes()
	attrs.PutEmptyBytes(ControlKey).FromRaw([]byte{controlVersion, 0, 0, 0})
	attrs.PutStr("service.name", "x")
	for name, buf := range map[string][]byte{
		"plain": plain, "empty": nil, "with spans": encode(t, withSpans), "two attributes": encode(t, twoAttrs),
		"garbage": {0xff, 0xff, 0xff},
	} {
		t.Run(name, func(t *testing.T) {
			_, rest, ok, err := SplitControl(buf)
			require.NoError(t, err)
			assert.False(t, ok)
			assert.Equal(t, buf, rest)
		})
	}
}

func TestSplitControlMalformed(t *testing.T) {
	tests := []struct {
		name    string
		payload []byte
	}{
		{name: "short", payload: []byte{controlVersion}},
		{name: "version", payload: []byte{9, 0, 0, 0}},
		{name: "flags", payload: []byte{controlVersion, 0x80, 0, 0}},
		{name: "relayed without forwarded", payload: []byte{controlVersion, flagRelayed, 0, 0}},
		{name: "handed over without forwarded", payload: []byte{controlVersion, flagHandedOver, 0, 0}},
		{name: "kept count beyond the payload", payload: []byte{controlVersion, 0, 5, 0}},
		{name: "huge kept count", payload: []byte{controlVersion, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{name: "dropped count", payload: []byte{controlVersion, 0, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8}},
		{name: "trailing", payload: []byte{controlVersion, 0, 0, 0, 1}},
		{name: "demand sender beyond the payload", payload: []byte{controlVersion, flagDemand, 9, 'a', 0, 0}},
		{name: "demand sender too long", payload: append([]byte{controlVersion, flagDemand, 0x80, 0x02}, make([]byte, 256+8+2)...)},
		{name: "negative demand", payload: []byte{controlVersion, flagDemand, 1, 'a', 0, 0, 0, 0, 0, 0, 0xf0, 0xbf, 0, 0}},
		{name: "NaN demand", payload: []byte{controlVersion, flagDemand, 0, 1, 0, 0, 0, 0, 0, 0xf8, 0x7f, 0, 0}},
		{name: "threshold", payload: append([]byte{controlVersion, 0, 1}, append(make([]byte, 16), 0, 0, 0, 0, 0, 0, 0, 1, 0)...)},
		{name: "kept without its mark", payload: append([]byte{controlVersion, flagMarks, 1}, append(make([]byte, 16+8), 0)...)},
		{name: "mark past its bits", payload: markedPayload(1 << 59)},
		{name: "unknown supplement", payload: markedPayload(3 << markSupplementShift)},
		{name: "randomness without its flag", payload: markedPayload(5)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			td := ptrace.NewTraces()
			td.ResourceSpans().AppendEmpty().Resource().Attributes().PutEmptyBytes(ControlKey).FromRaw(tt.payload)
			_, _, ok, err := SplitControl(encode(t, td))
			assert.True(t, ok)
			require.ErrorIs(t, err, errControl)
		})
	}
}

// markedPayload is a control payload of one kept decision with mark word w.
func markedPayload(w uint64) []byte {
	p := append([]byte{controlVersion, flagMarks, 1}, make([]byte, 16+8)...)
	p = binary.LittleEndian.AppendUint64(p, w)
	return append(p, 0)
}

// TestControlAsOlderGatewaysWrite: decisions as a gateway before the kept
// decisions' marks writes them (no flagMarks, 24 bytes a kept decision)
// decode to kept decisions without marks; and decisions without marks are
// written that way, so that older gateways read them.
func TestControlAsOlderGatewaysWrite(t *testing.T) {
	p := []byte{controlVersion, flagForwarded, 1}
	p = append(p, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6)
	p = binary.LittleEndian.AppendUint64(p, 1<<55)
	p = append(p, 1)
	p = binary.LittleEndian.AppendUint64(p, 42)
	td := ptrace.NewTraces()
	td.ResourceSpans().AppendEmpty().Resource().Attributes().PutEmptyBytes(ControlKey).FromRaw(p)
	buf := encode(t, td)
	c, _, ok, err := SplitControl(buf)
	require.NoError(t, err)
	require.True(t, ok)
	want := Control{Forwarded: true, Decisions: Decisions{
		Kept:    []Kept{{ID: [16]byte{9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6}, Threshold: 1 << 55}},
		Dropped: []uint64{42},
	}}
	assert.Equal(t, want, c)
	assert.Equal(t, p, controlBytes(AppendControl(nil, &want)), "unmarked decisions are written as older gateways read them")
}

// FuzzSplitControl: no input panics; what decodes encodes back the same.
func FuzzSplitControl(f *testing.F) {
	f.Add(AppendControl(nil, &Control{Forwarded: true}))
	f.Add(AppendControl(nil, &Control{Forwarded: true, Relayed: true}))
	f.Add(AppendControl(nil, &Control{Forwarded: true, Relayed: true, HandedOver: true}))
	f.Add(AppendControl(nil, &Control{Decisions: Decisions{Kept: []Kept{{ID: [16]byte{1}, Threshold: 5}}, Dropped: []uint64{3}}}))
	f.Add(AppendControl(nil, &Control{Demand: &Demand{From: "a:1", PerSecond: 2}}))
	f.Add(AppendControl(nil, &Control{Forwarded: true, Decisions: Decisions{Kept: []Kept{
		{ID: [16]byte{1}, Threshold: 5, RV: 77, HasRV: true}, {ID: [16]byte{2}, Supplement: 1}, {ID: [16]byte{3}},
	}}}))
	f.Add([]byte{0x0a, 0x02, 0x0a, 0x00})
	// Hostile mark words: every bit set, supplement 3, rv bits without
	// markRV, and a kept count past the bytes with marks.
	marked := AppendControl(nil, &Control{Decisions: Decisions{Kept: []Kept{{ID: [16]byte{9}, Threshold: 1, RV: 1<<56 - 1, HasRV: true, Supplement: 2}}}})
	for _, w := range []uint64{^uint64(0), 3 << markSupplementShift, 1} {
		bad := append([]byte(nil), marked...)
		binary.LittleEndian.PutUint64(bad[len(bad)-1-markSize:], w)
		f.Add(bad)
	}
	f.Add(marked[:len(marked)-4])
	f.Fuzz(func(t *testing.T, buf []byte) {
		c, _, ok, err := SplitControl(buf)
		if !ok || err != nil {
			return
		}
		again, _, ok2, err2 := SplitControl(AppendControl(nil, &c))
		if !ok2 || err2 != nil {
			t.Fatalf("re-encoded control does not decode: %v", err2)
		}
		assert.Equal(t, c, again)
	})
}
