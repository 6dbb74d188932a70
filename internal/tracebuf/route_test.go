package tracebuf

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/wire"
)

// TestRouteCarriesHashes: the hashes routing keeps for the shards are the
// ones they would compute themselves (the trace ID's, which also picks the
// owner shard, and the interner's group hash), so carrying them changes
// neither which shard owns a trace nor which group a span is interned in.
func TestRouteCarriesHashes(t *testing.T) {
	cfg := testBufferConfig()
	cfg.Shards = 3
	b, err := New(cfg, (&collector{}).emit, Settings{})
	require.NoError(t, err)
	traces := make([]uint64, 64)
	for i := range traces {
		traces[i] = uint64(i + 1)
	}
	buf := append(encode(t, traces, 1, ptrace.StatusCodeOk), encodePairs(t, []uint64{7, 8}, []uint64{2, 3})...)
	req := b.reqs.Get().(*request)
	defer req.drop()
	require.NoError(t, wire.Scan(buf, &req.batch))
	invalid, targets := b.route(req)
	require.Zero(t, invalid)
	assert.Equal(t, 3, targets)
	for sh, idx := range req.per {
		for _, i := range idx {
			sp := &req.batch.Spans[i]
			assert.Equal(t, hashID(&sp.TraceID), req.hashes[i], "span %d", i)
			assert.Equal(t, sh, b.shardOf(&sp.TraceID), "span %d", i)
		}
	}
	require.Len(t, req.groups, 2)
	in := newInterner()
	for k := range req.batch.Scopes {
		sc := &req.batch.Scopes[k]
		assert.Equal(t, in.hash(sc), req.groups[k], "scope %d", k)
		assert.Equal(t, in.lookup(sc), in.lookupHashed(sc, req.groups[k]), "scope %d", k)
	}
	assert.NotEqual(t, req.groups[0], req.groups[1], "two resources, two groups")
}
