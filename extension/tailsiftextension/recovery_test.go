package tailsiftextension

import (
	"context"
	"encoding/binary"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tailsift/tailsift/extension/tailsiftextension/internal/metadata"
	"github.com/tailsift/tailsift/internal/store"
)

func heapAfterGC() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestUnclaimedRecoveryReleased: the store keeps what it held at Open
// (about 80 B a trace) for the first component that claims it; when none
// did (no pipeline's component names the storage any more), it was held
// for as long as the collector ran. The collector tells the extension once
// every pipeline started (Ready): the recovery is released then, and the
// release logged with its counts.
func TestUnclaimedRecoveryReleased(t *testing.T) {
	dir := t.TempDir()
	const traces = 200_000
	st, err := store.Open(store.Options{Dir: dir, Retention: time.Hour, MaxBytes: 1 << 30})
	require.NoError(t, err)
	const batch = 1000
	for b := range traces / batch {
		// The store reads them until they are written: new slices each time.
		ids, decs := make([][16]byte, batch), make([]store.Decision, batch)
		for i := range ids {
			ids[i][0] = 0xd1
			binary.BigEndian.PutUint64(ids[i][8:], uint64(b*batch+i+1))
			decs[i] = store.Decision{Policy: "p", Reason: "quiet"}
		}
		require.True(t, st.AppendDecisions(ids, decs))
		require.NoError(t, st.Sync(context.Background()))
	}
	require.NoError(t, st.Close())

	core, logs := observer.New(zapcore.WarnLevel)
	set := extensiontest.NewNopSettings(metadata.Type)
	set.Logger = zap.New(core)
	cfg := createDefaultConfig().(*Config)
	cfg.ServerConfig.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.Directory = dir
	ext, err := newExtension(set, cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { assert.NoError(t, ext.Shutdown(context.Background())) })

	// The collector calls Ready once every pipeline started: a component
	// that resumes from the store has claimed the recovery by then.
	pw, watches := any(ext).(interface{ Ready() error })
	if watches {
		require.NoError(t, pw.Ready())
	}
	before := heapAfterGC()
	rec := ext.Store().Claim()
	claimed := len(rec.Undecided) + len(rec.Decided)
	rec = nil //nolint:wastedassign // let the recovery go
	after := heapAfterGC()
	held := int64(before) - int64(after)
	t.Logf("recovery of %d traces held after Ready: %d traces, %d bytes (%.1f B/trace)", traces, claimed, held, float64(held)/traces)
	assert.True(t, watches, "the extension watches the pipelines start (Ready)")
	assert.Zero(t, claimed, "nothing left to claim after Ready")
	assert.Less(t, held, int64(traces)*10, "the recovery is not held past Ready")
	released := logs.FilterMessage("tailsift extension: no component resumed from the store; its recovery released").All()
	if assert.Len(t, released, 1) {
		assert.Equal(t, int64(traces), released[0].ContextMap()["decided_traces"])
		assert.Equal(t, int64(0), released[0].ContextMap()["undecided_traces"])
	}
}
