package tracebuf

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// TestRescueWindowOnlyWithoutStore: rescue.window is the store-less
// fallback; with storage the store keeps late errors without the memory,
// and a config that sets both is refused, naming the key.
func TestRescueWindowOnlyWithoutStore(t *testing.T) {
	tests := []struct {
		name string
		conf map[string]any
		err  string
	}{
		{name: "store alone", conf: map[string]any{"storage": "tailsift"}},
		{name: "window alone", conf: map[string]any{"rescue": map[string]any{"window": "30s"}}},
		{
			name: "both",
			conf: map[string]any{"storage": "tailsift", "rescue": map[string]any{"window": "30s"}},
			err:  "rescue::window: not used with storage (tailsift)",
		},
		{
			name: "store with the window off",
			conf: map[string]any{"storage": "tailsift", "rescue": map[string]any{"window": "0s", "max_bytes": "1MiB"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			require.NoError(t, confmap.NewFromStringMap(tt.conf).Unmarshal(&cfg))
			err := confmap.Validate(&cfg)
			if tt.err == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.err)
		})
	}
}

// TestStoreHoldsNothingInMemory: with a store the shards hold no dropped
// trace (rescue.window is 0), so a dropped trace's records are freed at its
// decision; its late ERROR span still keeps it, from the store.
func TestStoreHoldsNothingInMemory(t *testing.T) {
	b, _, out, clk := newStoreBuffer(t)
	dropTraces(t, b, clk, 3)
	for _, s := range b.shards {
		assert.Nil(t, s.held.byID, "no in-memory hold")
		assert.Zero(t, s.held.bytes)
	}
	require.NoError(t, b.Ingest(t.Context(), encode(t, []uint64{3}, 3, ptrace.StatusCodeError)))
	assert.Equal(t, map[[16]byte]int{tid(3): 3}, spanCounts(out.next(t)))
}
