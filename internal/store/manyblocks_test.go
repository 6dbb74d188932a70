package store

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// oneSpanRequest is a request with one span of trace id, span ID n.
func oneSpanRequest(t *testing.T, id [16]byte, n int) []byte {
	t.Helper()
	td := ptrace.NewTraces()
	sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID(pcommon.TraceID(id))
	sp.SetSpanID(pcommon.SpanID{9, byte(n >> 8), byte(n), 1, 2, 3, 4, 5})
	sp.SetName("step")
	buf, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	require.NoError(t, err)
	return buf
}

// TestTraceInManyBlocks: a trace whose spans arrive in 300 requests, each
// written in a block of its own (a low request rate), reads back whole,
// live (rescue, retrieval) and after a restart (Replay of an undecided
// trace). An entry used to hold at most 255 block refs, and such a trace
// read back without its newest spans.
func TestTraceInManyBlocks(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	id := traceID(77)
	const requests = 300
	for n := range requests {
		require.True(t, s.AppendSpans([][16]byte{id}, oneSpanRequest(t, id, n)))
		require.NoError(t, s.Sync(context.Background())) // one block per request
	}
	tr, err := s.Trace(id)
	require.NoError(t, err)
	require.NoError(t, s.Close())

	s2 := openStore(t, dir, nil)
	t.Cleanup(func() { _ = s2.Close() })
	rec := s2.Claim()
	require.Contains(t, rec.Undecided, id)
	tr2, err := s2.Trace(id)
	require.NoError(t, err)
	require.Equal(t, requests, tr.Spans, "live read lost spans")
	require.Equal(t, requests, tr2.Spans, "recovered read lost spans")
}
