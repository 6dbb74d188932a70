package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tailsift/tailsift/internal/store/storetest"
	"github.com/tailsift/tailsift/internal/workload"
)

// colRoundTrip transforms raw and back, and returns the columnar form.
func colRoundTrip(t testing.TB, raw []byte) []byte {
	t.Helper()
	var e colEnc
	enc := e.encode(nil, raw)
	out, err := colDecode([]byte("prefix"), enc, len(raw))
	require.NoError(t, err)
	require.True(t, bytes.Equal(out[len("prefix"):], raw), "round trip of %d bytes", len(raw))
	return enc
}

// colStreams splits a columnar form into S and the rest.
func colStreams(enc []byte) (s, t, v, i []byte) {
	ls := binary.LittleEndian.Uint32(enc)
	lt := binary.LittleEndian.Uint32(enc[4:])
	lv := binary.LittleEndian.Uint32(enc[8:])
	enc = enc[colHeader:]
	return enc[:ls], enc[ls : ls+lt], enc[ls+lt : ls+lt+lv], enc[ls+lt+lv:]
}

// workloadBlock frames the first n requests of a recorded workload of
// shape, and a decisions record behind each, as the writer does.
func workloadBlock(t testing.TB, shape string, n int) ([]byte, int) {
	t.Helper()
	rec, err := workload.Record(workload.Config{Seed: 3, Rate: 5000, Duration: time.Second, ErrorPct: 1, Shape: shape}, time.Unix(1_700_000_000, 0))
	require.NoError(t, err)
	var raw []byte
	spans := 0
	for k, req := range rec.Requests[:n] {
		start := len(raw)
		raw = appendSpansFrame(raw, int64(k), req)
		sealFrame(raw[start:], uint64(2*k+1))
		body, _ := decisionsBody(nil, [][16]byte{{byte(k)}}, []Decision{{Keep: true, Policy: "errors", Reason: "quiet"}}, nil, false)
		raw = appendFrame(raw, kindDecisions, uint64(2*k+2), int64(k), body)
		spans += rec.Spans[k]
	}
	return raw, spans
}

// TestColumnarWorkload: the workload's requests round-trip, every one
// transformed: S keeps about 55-65 % of the bytes, and each span's trace ID
// took one byte of it and its IDs and times went to the other streams.
func TestColumnarWorkload(t *testing.T) {
	for _, shape := range []string{workload.ShapeBench, workload.ShapeSDK} {
		raw, spans := workloadBlock(t, shape, 6)
		var e colEnc
		e.encode(nil, raw)
		assert.Equal(t, spans, e.spans, shape)
		s, tt, v, i := colStreams(colRoundTrip(t, raw))
		assert.Less(t, len(s), len(raw)*7/10, shape)
		assert.GreaterOrEqual(t, len(i), spans*16, shape) // span and parent IDs at least
		assert.GreaterOrEqual(t, len(tt), spans*2, shape)
		assert.Greater(t, len(v), spans*10, shape)
	}
}

// TestColumnarOddInput: requests the transform does not expect round-trip
// too; those not well formed along its path are kept verbatim (flag 0).
// pbField is a protobuf field: tag, the length of a bytes field, payload.
func pbField(num protowire.Number, typ protowire.Type, payload ...byte) []byte {
	b := protowire.AppendTag(nil, num, typ)
	if typ == protowire.BytesType {
		b = protowire.AppendVarint(b, uint64(len(payload)))
	}
	return append(b, payload...)
}

func pbJoin(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

var (
	pbTime    = binary.LittleEndian.AppendUint64(nil, 1_700_000_000_123_456_789)
	pbTraceID = bytes.Repeat([]byte{7}, 16)
)

// pbSpan is a small span: trace and span ID, name, start time, one
// attribute, and extra fields.
func pbSpan(extra ...[]byte) []byte {
	kv := pbField(9, protowire.BytesType, pbJoin(pbField(1, protowire.BytesType, []byte("k")...),
		pbField(2, protowire.BytesType, pbField(1, protowire.BytesType, []byte("v")...)...))...)
	return pbJoin(append([][]byte{pbField(1, protowire.BytesType, pbTraceID...), pbField(2, protowire.BytesType, 1, 2, 3, 4, 5, 6, 7, 8),
		pbField(5, protowire.BytesType, []byte("name")...), pbField(7, protowire.Fixed64Type, pbTime...), kv}, extra...)...)
}

// pbRequest wraps spans (each encoded) in a ScopeSpans, ResourceSpans
// and request.
func pbRequest(spans ...[]byte) []byte {
	var ss []byte
	for _, sp := range spans {
		ss = append(ss, pbField(2, protowire.BytesType, sp...)...)
	}
	rs := pbField(2, protowire.BytesType, ss...)
	return pbField(1, protowire.BytesType, rs...)
}

func TestColumnarOddInput(t *testing.T) {
	field, join, fixed64, tid, span, wrap := pbField, pbJoin, pbTime, pbTraceID, pbSpan, pbRequest
	nonMinimal := []byte{0x8a, 0x00, 0x90, 0x00} // field 1 bytes, tag and length in two bytes each
	nonMinimal = append(nonMinimal, tid...)
	cases := []struct {
		name        string
		req         []byte
		transformed bool
	}{
		{"well formed", wrap(span()), true},
		{"empty request", nil, true},
		{"unknown fields everywhere", join(wrap(span(field(99, protowire.VarintType, 5), field(100, protowire.Fixed32Type, 1, 2, 3, 4),
			field(101, protowire.Fixed64Type, fixed64...), field(9, protowire.BytesType, join(field(3, protowire.BytesType, 1), field(2, protowire.BytesType, field(3, protowire.VarintType, 0x96, 0x01)...), field(2, protowire.BytesType, field(4, protowire.Fixed64Type, fixed64...)...))...))),
			field(7, protowire.VarintType, 1)), true},
		{"odd ID lengths", wrap(join(field(1, protowire.BytesType, 1, 2, 3), field(2, protowire.BytesType, 9), field(4, protowire.BytesType))), true},
		{"non-minimal varints", wrap(join(nonMinimal, field(8, protowire.Fixed64Type, fixed64...))), true},
		{"two spans, one trace", wrap(span(), span()), true},
		{"a span with fields repeated", wrap(join(span(), span())), true},
		{"bytes where a message is expected", field(1, protowire.BytesType, 0xff, 0xff), false},
		{"truncated span", wrap(span())[:20], false},
		{"group", wrap(append(span(), field(12, protowire.StartGroupType)...)), false},
		{"field 0", wrap(append(span(), 0, 0)), false},
		{"varint overflow", wrap(append(span(), 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)), false},
		{"attribute not a message", wrap(join(field(9, protowire.BytesType, 0xff))), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			raw := appendSpansFrame(nil, 5, c.req)
			sealFrame(raw, 1)
			raw = appendFrame(raw, KindDelivered, 2, 6, deliveredBody(nil, [][16]byte{{1}}))
			raw = appendFrame(raw, kindDeliveredMark, 3, 6, deliveredMarkBody(nil, 1, [][16]byte{{1}}))
			s, _, _, _ := colStreams(colRoundTrip(t, raw))
			flag := s[frameHeader+payloadHeader]
			assert.Equal(t, c.transformed, flag == 1)
			// A record cut anywhere, and bytes that are no records.
			for _, n := range []int{1, 8, frameHeader + payloadHeader, len(raw) / 2, len(raw) - 1} {
				colRoundTrip(t, raw[:n])
			}
			colRoundTrip(t, append(bytes.Repeat([]byte{0xff}, 30), raw...))
		})
	}
}

// TestColumnarDecodeRejects: a columnar form that does not rebuild
// exactly rawLen bytes of records is an error, not a panic.
func TestColumnarDecodeRejects(t *testing.T) {
	raw, _ := workloadBlock(t, workload.ShapeSDK, 2)
	var e colEnc
	enc := e.encode(nil, raw)
	for _, bad := range []struct {
		src    []byte
		rawLen int
	}{
		{enc, len(raw) - 1}, {enc, len(raw) + 1}, {enc[:len(enc)-1], len(raw)}, {append(enc[:len(enc):len(enc)], 0), len(raw)},
		{enc[:colHeader-1], len(raw)}, {nil, 0},
	} {
		_, err := colDecode(nil, bad.src, bad.rawLen)
		require.ErrorIs(t, err, errColumnar)
	}
	for k := colHeader; k < len(enc); k += 97 {
		mut := bytes.Clone(enc)
		mut[k] ^= 0x5a
		out, err := colDecode(nil, mut, len(raw))
		if err == nil {
			assert.Len(t, out, len(raw))
		}
	}
}

// FuzzColumnarRoundTrip: any bytes round-trip through the transform, and
// the inverse never panics on any input.
func FuzzColumnarRoundTrip(f *testing.F) {
	// Small seeds (a large one makes the fuzzer's minimizing stall).
	raw := appendSpansFrame(nil, 1, pbRequest(pbSpan(pbField(8, protowire.Fixed64Type, pbTime...)), pbSpan(pbField(4, protowire.BytesType, 8, 7, 6, 5, 4, 3, 2, 1))))
	sealFrame(raw, 1)
	body, _ := decisionsBody(nil, [][16]byte{{1}}, []Decision{{Keep: true, Policy: "errors", Reason: "quiet"}}, nil, false)
	raw = appendFrame(raw, kindDecisions, 2, 3, body)
	f.Add(raw)
	f.Add(raw[:len(raw)/3])
	var e colEnc
	f.Add(e.encode(nil, raw))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		colRoundTrip(t, raw)
		// The fuzz input read as a columnar form.
		out, err := colDecode(nil, raw, len(raw))
		if err == nil && len(out) != len(raw) {
			t.Fatalf("decoded %d bytes, want %d", len(out), len(raw))
		}
	})
}

// TestS2ColStore: a store writing s2col writes TSB3 blocks, smaller than
// s2's on the workload's requests; a directory holding both kinds reads
// back whole, by a store writing either, every request's bytes as they
// were appended.
func TestS2ColStore(t *testing.T) {
	// At 20 000 spans/s, 80 spans a request: s2col writes about 12 %
	// fewer bytes than s2 (at 5 000 spans/s, 29 spans a request, 7 %).
	w := storetest.Record(t, 20_000, time.Second)
	half := len(w.Requests) / 2
	sizes := map[string]int64{}
	for _, comp := range []string{CompressionS2, CompressionS2Col} {
		s := openStore(t, t.TempDir(), func(o *Options) { o.Compression = comp })
		for k := range w.Requests[:half] {
			require.True(t, s.AppendSpans(w.IDs[k], w.Requests[k]))
			require.NoError(t, s.Sync(context.Background())) // one request per block
		}
		sizes[comp] = s.Stats().BlockBytes.Load()
		require.NoError(t, s.Close())
	}
	assert.Less(t, float64(sizes[CompressionS2Col]), 0.92*float64(sizes[CompressionS2]), "s2col against s2 bytes")

	dir := t.TempDir()
	for i, comp := range []string{CompressionS2, CompressionS2Col} {
		s := openStore(t, dir, func(o *Options) { o.Compression = comp })
		for k := i * half; k < (i+1)*half; k++ {
			require.True(t, s.AppendSpans(w.IDs[k], w.Requests[k]))
		}
		require.NoError(t, s.Close())
	}
	segs, err := filepath.Glob(filepath.Join(dir, "seg-*.tsl"))
	require.NoError(t, err)
	c, err := newCodec(CompressionZstd)
	require.NoError(t, err)
	defer c.close()
	kinds := map[blockKind]int{}
	var got [][]byte
	for _, p := range segs {
		data, err := os.ReadFile(p)
		require.NoError(t, err)
		for len(data) > 0 {
			b, raw, err := c.readBlock(data, nil)
			require.NoError(t, err)
			kinds[b.kind]++
			_, err = ParseRecords(raw, func(r *Record) error {
				if r.Kind == KindSpans {
					got = append(got, bytes.Clone(r.Request))
				}
				return nil
			})
			require.NoError(t, err)
			data = data[blockHeader+b.compLen:]
		}
	}
	assert.Positive(t, kinds[blockS2])
	assert.Positive(t, kinds[blockS2Col])
	assert.Zero(t, kinds[blockZstd])
	require.Equal(t, w.Requests[:2*half], got)

	for _, comp := range []string{CompressionZstd, CompressionS2Col} {
		s := openStore(t, dir, func(o *Options) { o.Compression = comp })
		assert.Zero(t, s.Stats().CorruptSegments.Load())
		for _, k := range []int{0, half - 1, half, 2*half - 1} {
			for _, id := range w.IDs[k] {
				tr, err := s.Trace(id)
				require.NoError(t, err)
				assert.Positive(t, spansOf(t, tr))
			}
		}
		require.NoError(t, s.Close())
	}
}
