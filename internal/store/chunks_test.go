package store

import (
	"context"
	"encoding/binary"
	"errors"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// spanKeys returns each span of td as its ID and attribute bytes.
func spanKeys(td ptrace.Traces) []string {
	var out []string
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				id := sp.SpanID()
				pad, _ := sp.Attributes().Get("pad")
				out = append(out, string(id[:])+string(pad.Bytes().AsRaw()))
			}
		}
	}
	return out
}

// TestTraceChunks: a stored trace comes back in requests of at most
// maxBytes, its spans in the order recorded, each once (a request stored
// twice is left out the second time), and a chunk that f refuses is not
// counted as passed on: read again with the same set, it comes again, and
// nothing else.
func TestTraceChunks(t *testing.T) {
	s := openStore(t, t.TempDir(), nil)
	defer func() { require.NoError(t, s.Close()) }()
	const requests, perTrace = 10, 100
	var dup []byte
	for r := range requests {
		req, ids := request(t, []int{1, 2}, perTrace, 100)
		require.True(t, s.AppendSpans(ids, req))
		if r == 3 {
			dup = req
		}
	}
	_, ids := request(t, []int{1, 2}, 0, 0)
	require.True(t, s.AppendSpans(ids, dup), "a client's retry")
	require.NoError(t, s.Sync(context.Background()))

	whole, err := s.Trace(traceID(1))
	require.NoError(t, err)
	require.Equal(t, (requests+1)*perTrace, whole.Spans)
	var u ptrace.ProtoUnmarshaler
	td, err := u.UnmarshalTraces(whole.Request)
	require.NoError(t, err)
	all := spanKeys(td)
	once := all[:requests*perTrace] // the duplicate request came last

	for _, maxBytes := range []int{1, 5000, 64 << 10, len(whole.Request)} {
		var got []string
		calls := 0
		n, err := s.TraceChunks(traceID(1), maxBytes, SpanSet{}, func(req []byte, spans int) error {
			calls++
			td, err := u.UnmarshalTraces(req)
			require.NoError(t, err)
			require.Equal(t, spans, td.SpanCount())
			if spans > 1 {
				assert.LessOrEqual(t, len(req), maxBytes, "only a span alone may be over maxBytes")
			}
			got = append(got, spanKeys(td)...)
			return nil
		})
		require.NoError(t, err)
		assert.Equal(t, len(once), n, "maxBytes %d", maxBytes)
		assert.Equal(t, once, got, "maxBytes %d: every span once, in order", maxBytes)
		t.Logf("maxBytes %d: %d calls", maxBytes, calls)
	}

	// Without a set, every stored span.
	n, err := s.TraceChunks(traceID(1), 64<<10, nil, func([]byte, int) error { return nil })
	require.NoError(t, err)
	assert.Equal(t, len(all), n)

	// A refused chunk is not marked seen.
	seen := SpanSet{}
	refused := errors.New("refused")
	var first []string
	calls := 0
	n, err = s.TraceChunks(traceID(1), 16<<10, seen, func(req []byte, _ int) error {
		calls++
		if calls == 2 {
			return refused
		}
		td, err := u.UnmarshalTraces(req)
		require.NoError(t, err)
		first = spanKeys(td)
		return nil
	})
	require.ErrorIs(t, err, refused)
	assert.Equal(t, len(first), n)
	assert.Len(t, seen, len(first))
	var rest []string
	n, err = s.TraceChunks(traceID(1), 16<<10, seen, func(req []byte, _ int) error {
		td, err := u.UnmarshalTraces(req)
		require.NoError(t, err)
		rest = append(rest, spanKeys(td)...)
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, len(once)-len(first), n)
	assert.Equal(t, once, append(first, rest...))

	info, err := s.TraceInfo(traceID(1))
	require.NoError(t, err)
	assert.False(t, info.Decided)
	_, err = s.TraceInfo(traceID(9))
	require.ErrorIs(t, err, ErrNotFound)
}

// TestSpanSetBytesPerSpan measures what SpanSet's comment and the
// extension's docs state: 40-60 bytes of heap a span (16 of key, the
// map's control bytes and the room a growing table leaves).
func TestSpanSetBytesPerSpan(t *testing.T) {
	const n = 128_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := SpanSet{}
	raw := []byte("span")
	for i := range n {
		var id [8]byte
		binary.LittleEndian.PutUint64(id[:], uint64(i))
		s.Add(id, raw)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	runtime.KeepAlive(s)
	t.Logf("SpanSet: %.1f bytes of heap a span over %d spans", per, n)
	assert.Less(t, per, 80.0, "a leftover allocation elsewhere adds to it; the figure is the log line")
	assert.Greater(t, per, 16.0)
}
