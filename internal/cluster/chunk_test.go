package cluster

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/tailsift/tailsift/internal/ring"
)

// TestMarkedDecisionsWithinChunk: a request of kept decisions with their
// mark words (flagMarks, 8 bytes more each) stays within a handover chunk,
// as unmarked ones do: with the default bytes_per_second a chunk is
// 3.2 MiB, under the 4 MiB a peer's gRPC server takes by default.
func TestMarkedDecisionsWithinChunk(t *testing.T) {
	for _, marked := range []bool{false, true} {
		cfg := NewDefaultConfig()
		n := &Node{cfg: cfg, logger: zap.NewNop(), obs: NopObserver{}}
		chunk := n.chunk()
		var d Decisions
		for i := range 2 * chunk / keptSize {
			k := Kept{ID: [16]byte{byte(i), byte(i >> 8), byte(i >> 16), 1}, Threshold: 5}
			if marked {
				k.RV, k.HasRV = uint64(i), true
			}
			d.Kept = append(d.Kept, k)
		}
		var sizes []int
		send := func(_ context.Context, _ string, data []byte) error {
			sizes = append(sizes, len(data))
			return nil
		}
		rt := &routing{ring: ring.New([]string{"a:1"}), down: []bool{false}, refused: []bool{false}}
		refused, ok := n.sendDecisions(context.Background(), rt, &d, Control{Forwarded: true}, send, nil, nil)
		require.True(t, ok)
		require.Zero(t, refused.Len())
		require.NotEmpty(t, sizes)
		for _, s := range sizes {
			assert.LessOrEqual(t, s, chunk, "marked=%v: a decisions request of %d bytes, chunk %d", marked, s, chunk)
		}
	}
}
