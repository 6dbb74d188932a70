package tailsiftextension

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/extension/tailsiftextension/internal/metadata"
	"github.com/tailsift/tailsift/internal/tracebuf"
)

// TestRetentionShorterThanMaxWaitRefused: a store that evicts spans before
// the buffer may still be waiting for their trace's decision cannot replay
// that trace after a crash, so a buffer whose completion::max_wait is
// longer than the extension's retention does not start, and says which
// keys to change.
func TestRetentionShorterThanMaxWaitRefused(t *testing.T) {
	ext, _ := startExtension(t, func(c *Config) { c.Retention = 10 * time.Second })
	id := component.NewID(metadata.Type)
	host := extHost{map[component.ID]component.Component{id: ext}}

	cfg := tracebuf.DefaultConfig()
	cfg.Shards = 1
	cfg.Storage = &id
	cfg.Completion.MaxWait = 30 * time.Second
	buf, err := tracebuf.New(cfg, func(context.Context, ptrace.Traces) error { return nil }, tracebuf.Settings{})
	require.NoError(t, err)
	err = buf.StartWithStorage(context.Background(), host)
	require.Error(t, err)
	assert.ErrorContains(t, err, "completion::max_wait")
	assert.ErrorContains(t, err, "retention")
	assert.NoError(t, buf.ShutdownWithStorage(context.Background()))

	// Equal is enough: the store evicts a segment only once its newest
	// record is older than retention.
	cfg.Completion.MaxWait = 10 * time.Second
	cfg.Completion.Quiet = time.Second
	buf, err = tracebuf.New(cfg, func(context.Context, ptrace.Traces) error { return nil }, tracebuf.Settings{})
	require.NoError(t, err)
	require.NoError(t, buf.StartWithStorage(context.Background(), host))
	assert.NoError(t, buf.ShutdownWithStorage(context.Background()))
}
