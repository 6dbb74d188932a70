package store

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// TestTraceMaxBoundsTheRead: TraceMax returns the trace's first spans, in
// the order they were recorded, within maxBytes, and counts the others.
func TestTraceMaxBoundsTheRead(t *testing.T) {
	s := openStore(t, t.TempDir(), nil)
	defer func() { require.NoError(t, s.Close()) }()
	const requests, perTrace = 10, 100
	for range requests {
		req, ids := request(t, []int{1, 2}, perTrace, 100)
		require.True(t, s.AppendSpans(ids, req))
	}
	require.NoError(t, s.Sync(context.Background()))

	whole, err := s.Trace(traceID(1))
	require.NoError(t, err)
	require.Equal(t, requests*perTrace, whole.Spans)
	require.Zero(t, whole.Omitted)

	for _, maxBytes := range []int{1, 200, 5000, len(whole.Request) / 3, len(whole.Request) - 1, len(whole.Request)} {
		tr, err := s.TraceMax(traceID(1), maxBytes)
		require.NoError(t, err)
		assert.LessOrEqual(t, len(tr.Request), maxBytes)
		assert.Equal(t, requests*perTrace, tr.Spans+tr.Omitted, "maxBytes %d", maxBytes)
		assert.Equal(t, tr.Spans, spansOf(t, tr), "maxBytes %d", maxBytes)
		assert.Equal(t, maxBytes == len(whole.Request), tr.Omitted == 0, "maxBytes %d", maxBytes)
		// A prefix of the whole trace's spans, in order.
		var u ptrace.ProtoUnmarshaler
		all, err := u.UnmarshalTraces(whole.Request)
		require.NoError(t, err)
		part, err := u.UnmarshalTraces(tr.Request)
		require.NoError(t, err)
		assert.Equal(t, spanIDs(all)[:tr.Spans], spanIDs(part), "maxBytes %d", maxBytes)
	}
}

func spanIDs(td ptrace.Traces) [][8]byte {
	ids := [][8]byte{}
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				ids = append(ids, sp.SpanID())
			}
		}
	}
	return ids
}
