package sampling_test

import (
	"testing"

	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"github.com/stretchr/testify/assert"

	"github.com/tailsift/tailsift/sampling"
)

func TestMarkerMark(t *testing.T) {
	tests := []struct {
		name     string
		th       string // the marker's tvalue
		existing string
		want     string
	}{
		{"empty", "c", "", "ot=th:c"},
		{"empty, always", "0", "", "ot=th:0"},
		{"other vendors kept, ot first", "c", "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7", "ot=th:c,congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"},
		{"existing stricter th kept", "8", "ot=th:c", "ot=th:c"},
		{"existing stricter th kept verbatim", "0", "a=1,ot=th:f;rv:0123456789abcd,b=2", "a=1,ot=th:f;rv:0123456789abcd,b=2"},
		{"existing equal th kept", "c", "ot=th:c,x=y", "ot=th:c,x=y"},
		{"existing looser th replaced", "c", "ot=th:8", "ot=th:c"},
		{"existing always th replaced", "8", "ot=th:0", "ot=th:8"},
		{"looser th replaced, rv kept", "c", "ot=rv:0123456789abcd;th:8", "ot=rv:0123456789abcd;th:c"},
		{"rv kept, th added", "c", "ot=rv:0123456789abcd", "ot=rv:0123456789abcd;th:c"},
		{"ot sub-keys kept", "c", "ot=th:4;p:8;foo:bar", "ot=th:c;p:8;foo:bar"},
		{"ot moves to the front", "c", "a=1,ot=th:4,b=2", "ot=th:c,a=1,b=2"},
		{"unparsable replaced", "c", "not a tracestate", "ot=th:c"},
		{"unparsable ot replaced", "c", "a=1,ot=th:zz", "ot=th:c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := sampling.NewMarker(th(t, tt.th))
			assert.Equal(t, th(t, tt.th), m.Threshold())
			assert.Equal(t, tt.want, m.Mark([]byte(tt.existing)))
			assert.Equal(t, tt.want, m.Mark([]byte(tt.want)), "marking is idempotent")
		})
	}
	// A nil existing tracestate is the same as empty.
	assert.Equal(t, "ot=th:8", sampling.NewMarker(th(t, "8")).Mark(nil))
	// 10 % has a long tvalue.
	p10 := probTh(t, 0.1)
	assert.Equal(t, "ot=th:"+p10.TValue()+",k=v", sampling.NewMarker(p10).Mark([]byte("k=v")))
}

func TestSetIdentity(t *testing.T) {
	id := traceID(0x123456789abcde)
	idRnd := otelsampling.TraceIDToRandomness(id)
	rv, _ := otelsampling.RValueToRandomness("fedcba98765432")
	tests := []struct {
		name       string
		tracestate string
		rnd        otelsampling.Randomness
		hasHead    bool
		head       string
	}{
		{"none", "", idRnd, false, ""},
		{"other vendor", "congo=t61rcWkgMzE", idRnd, false, ""},
		{"key ending in ot", "foot=bar", idRnd, false, ""},
		{"th", "ot=th:8", idRnd, true, "8"},
		{"th always", "ot=th:0", idRnd, true, "0"},
		{"rv", "ot=rv:fedcba98765432", rv, false, ""},
		{"rv and th among vendors", "a=b,ot=rv:fedcba98765432;th:c;x:1,c=d", rv, true, "c"},
		{"unparsable th", "ot=th:xyz", idRnd, false, ""},
		{"unparsable rv drops th too", "ot=th:8;rv:short", idRnd, false, ""},
		{"unparsable tracestate", "ot=th:8,,=,", idRnd, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Start from a trace that had a head threshold, to check reuse.
			tr := sampling.Trace{SpanCount: 3, StatusMask: 1, Start: 1, End: 2}
			tr.SetIdentity(traceID(1), []byte("ot=th:4;rv:00000000000001"))
			tr.SetIdentity(id, []byte(tt.tracestate))
			assert.Equal(t, id, tr.ID)
			assert.Equal(t, tt.rnd, tr.Randomness)
			assert.Equal(t, tt.hasHead, tr.HasHead)
			if tt.hasHead {
				assert.Equal(t, th(t, tt.head), tr.HeadThreshold)
			}
			assert.Equal(t, 3, tr.SpanCount, "other fields are left alone")
			assert.Equal(t, uint8(1), tr.StatusMask)
		})
	}
}

func TestSupplementMarker(t *testing.T) {
	tests := []struct {
		name     string
		why      sampling.Supplement
		existing string
		want     string
	}{
		{"empty", sampling.SupplementRescue, "", "tailsift=rescue"},
		{"retro", sampling.SupplementRetro, "", "tailsift=retro"},
		{"th erased, rv kept", sampling.SupplementRescue, "ot=th:8;rv:0123456789abcd", "tailsift=rescue,ot=rv:0123456789abcd"},
		{"th alone erased", sampling.SupplementRescue, "ot=th:0", "tailsift=rescue"},
		{"other ot sub-keys kept", sampling.SupplementRetro, "ot=th:c;foo:bar", "tailsift=retro,ot=foo:bar"},
		{"other vendors kept", sampling.SupplementRescue, "a=1,ot=th:c,b=2", "tailsift=rescue,a=1,b=2"},
		{"an earlier tailsift entry replaced", sampling.SupplementRetro, "tailsift=rescue,ot=th:c", "tailsift=retro"},
		{"unparsable replaced", sampling.SupplementRescue, "not a tracestate", "tailsift=rescue"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := sampling.NewSupplementMarker(tt.why)
			got := m.Mark([]byte(tt.existing))
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.want, m.Mark([]byte(got)), "marking is idempotent")
			assert.Zero(t, sampling.AdjustedCount(got), "a supplement counts 0")
		})
	}
}

func TestAdjustedCount(t *testing.T) {
	tests := []struct {
		tracestate string
		want       float64
	}{
		{"ot=th:0", 1},
		{"ot=th:8", 2},
		{"a=1,ot=rv:0123456789abcd;th:c", 4},
		{"ot=rv:0123456789abcd", 0},
		{"", 0},
		{"tailsift=rescue", 0},
		{"ot=th:zz", 0},
	}
	for _, tt := range tests {
		assert.InDelta(t, tt.want, sampling.AdjustedCount(tt.tracestate), 1e-9, tt.tracestate)
	}
}
