package store

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// frameKinds returns the kinds of the records of the blocks of segment
// file path, in order.
func frameKinds(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	r := openStore(t, t.TempDir(), nil)
	defer func() { require.NoError(t, r.Close()) }()
	var kinds []byte
	for len(data) > 0 {
		b, raw, err := r.codec.readBlock(data, nil)
		require.NoError(t, err)
		for off := 0; off < len(raw); off += frameHeader + int(binary.LittleEndian.Uint32(raw[off:])) {
			kinds = append(kinds, raw[off+frameHeader])
		}
		data = data[blockHeader+b.compLen:]
	}
	return kinds
}

// TestDecisionRVRecovered: a decision records the rv a trace was kept on
// when a policy derived it (Decision.RV), and reads it back after a
// restart, so that the trace's late spans carry it then too. A batch
// with an rv is a kind 7 record; a batch without one stays kind 5, which
// versions before kind 7 read. A later decision without an rv clears it.
func TestDecisionRVRecovered(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	ids := [][16]byte{traceID(1), traceID(2), traceID(3)}
	withRV := []Decision{
		{Keep: true, Threshold: 1 << 55, RV: 1<<56 - 1, HasRV: true, Policy: "salted", Reason: "quiet"},
		{Keep: true, Threshold: 3, RV: 0, HasRV: true, Policy: "not", Reason: "max_wait"},
		{Policy: "baseline", Reason: "quiet"},
	}
	require.True(t, s.AppendDecisions(ids, withRV))
	require.True(t, s.AppendDecisions([][16]byte{traceID(4)}, []Decision{{Keep: true, Policy: "errors", Reason: "quiet"}}))
	require.True(t, s.AppendDecision(traceID(5), Decision{Keep: true, Threshold: 9, RV: 0x1234, HasRV: true, Policy: "salted", Reason: "quiet"}))
	require.NoError(t, s.Close())
	assert.Equal(t, []byte{kindDecisionsRV, kindDecisions, kindDecisionsRV}, frameKinds(t, filepath.Join(dir, segName(1))),
		"kind 7 only where a decision has an rv")

	s = openStore(t, dir, nil)
	got := map[[16]byte]Decision{}
	for _, d := range s.Claim().Decided {
		got[d.ID] = d.Decision
	}
	want := map[[16]byte]Decision{
		ids[0]: withRV[0], ids[1]: withRV[1], ids[2]: withRV[2],
		traceID(4): {Keep: true, Policy: "errors", Reason: "quiet"},
		traceID(5): {Keep: true, Threshold: 9, RV: 0x1234, HasRV: true, Policy: "salted", Reason: "quiet"},
	}
	assert.Equal(t, want, got)
	tr, err := s.Trace(ids[0])
	require.NoError(t, err)
	assert.Equal(t, withRV[0], tr.Decision)

	// A later decision without an rv (a retroactive keep) replaces it.
	require.True(t, s.AppendDecision(ids[1], Decision{Keep: true, Policy: "retroactive", Reason: "retroactive"}))
	require.NoError(t, s.Close())
	s = openStore(t, dir, nil)
	defer func() { require.NoError(t, s.Close()) }()
	tr, err = s.Trace(ids[1])
	require.NoError(t, err)
	assert.Equal(t, Decision{Keep: true, Policy: "retroactive", Reason: "retroactive"}, tr.Decision)
	s.mu.RLock()
	defer s.mu.RUnlock()
	assert.Len(t, s.idx.rvs, 2, "the index holds the rvs of traces 1 and 5")
}

// TestIndexForgetsRV: the index's side map of rvs holds an entry only
// while its trace is held: an evicted trace's rv goes with it, and the
// entry that takes its place has none.
func TestIndexForgetsRV(t *testing.T) {
	x := newIndex()
	var ids [][16]byte
	for i := range 10 {
		ids = append(ids, testID(i))
	}
	x.apply(&Record{Kind: KindSpans, IDs: ids}, ref{seg: 1})
	for i, id := range ids {
		x.apply(&Record{Kind: KindDecision, IDs: [][16]byte{id}, Decision: Decision{Keep: true, RV: uint64(i), HasRV: i%2 == 0}}, ref{seg: 1})
	}
	require.Len(t, x.rvs, 5)
	for i, id := range ids {
		e, ok := x.get(id)
		require.True(t, ok)
		d := x.decision(e)
		assert.Equal(t, i%2 == 0, d.HasRV, "trace %d", i)
		if d.HasRV {
			assert.Equal(t, uint64(i), d.RV, "trace %d", i)
		}
	}
	x.evict(1)
	assert.Zero(t, x.len())
	assert.Empty(t, x.rvs, "the evicted traces' rvs are gone")
	x.apply(&Record{Kind: KindDecision, IDs: [][16]byte{testID(99)}, Decision: Decision{Keep: true}}, ref{seg: 2})
	e, ok := x.get(testID(99))
	require.True(t, ok)
	assert.False(t, x.decision(e).HasRV, "a reused entry has no rv")
}

// TestParseDecisionsRVMalformed: a kind 7 record's rv past 56 bits is a
// malformed record.
func TestParseDecisionsRVMalformed(t *testing.T) {
	body, _ := decisionsBody(nil, [][16]byte{{1}}, []Decision{{Keep: true, Policy: "p"}}, nil, true)
	body = body[:len(body)-1]                  // the rv's uvarint: 0
	body = binary.AppendUvarint(body, 1<<56+1) // past 56 bits
	rec := appendFrame(nil, kindDecisionsRV, 1, 1, body)
	n, err := ParseRecords(rec, func(*Record) error { return nil })
	assert.Zero(t, n)
	require.ErrorContains(t, err, "bad decision")
}
