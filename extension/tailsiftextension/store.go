package tailsiftextension

import (
	"context"
	"fmt"
	"sync"

	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/tailsift/tailsift/extension/tailsiftextension/internal/metadata"
	"github.com/tailsift/tailsift/internal/store"
)

var _ store.Host = (*Extension)(nil)

// keepers are the components attached to the extension's store.
type keepers struct {
	mu   sync.Mutex
	list []*store.Keeper
}

// Store implements store.Host.
func (e *Extension) Store() *store.Store { return e.st.Load() }

// Attach implements store.Host.
func (e *Extension) Attach(k store.Keeper) func() {
	p := &k
	e.keepers.mu.Lock()
	e.keepers.list = append(e.keepers.list, p)
	e.keepers.mu.Unlock()
	return func() {
		e.keepers.mu.Lock()
		defer e.keepers.mu.Unlock()
		for i, q := range e.keepers.list {
			if q == p {
				e.keepers.list = append(e.keepers.list[:i], e.keepers.list[i+1:]...)
				return
			}
		}
	}
}

// Ready is called by the collector once every pipeline started
// (extensioncapabilities.PipelineWatcher). The components that resume from
// the store claimed its recovery as they started; when none did (none
// names this extension in its storage key any more, or none of those is in
// a pipeline), the recovery, about 80 bytes a trace, is released here
// rather than held for as long as the collector runs.
func (e *Extension) Ready() error {
	st := e.Store()
	if st == nil {
		return nil
	}
	if undecided, decided := st.ReleaseRecovery(); undecided+decided > 0 {
		e.set.Logger.Warn("tailsift extension: no component resumed from the store; its recovery released",
			zap.Int("undecided_traces", undecided), zap.Int("decided_traces", decided))
	}
	return nil
}

// NotReady implements extensioncapabilities.PipelineWatcher.
func (e *Extension) NotReady() error { return nil }

// keeper is the first attached component, or nil.
func (e *Extension) keeper() store.Keeper {
	e.keepers.mu.Lock()
	defer e.keepers.mu.Unlock()
	if len(e.keepers.list) == 0 {
		return nil
	}
	return *e.keepers.list[0]
}

// openStore opens the store of the configured directory; its errors name
// the directory key.
func (e *Extension) openStore() error {
	st, err := store.Open(store.Options{
		Dir:         e.cfg.Directory,
		Retention:   e.cfg.Retention,
		MaxBytes:    int64(e.cfg.MaxBytes),
		Compression: e.cfg.Compression,
		Logger:      e.set.Logger,
	})
	if err != nil {
		return fmt.Errorf("tailsift extension: directory %q: %w", e.cfg.Directory, err)
	}
	e.st.Store(st)
	return nil
}

// registerMetrics reports the store's counters.
func registerMetrics(tb *metadata.TelemetryBuilder, st *store.Store) error {
	s := st.Stats()
	obs := func(f func() int64) metric.Int64Callback {
		return func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(f())
			return nil
		}
	}
	regs := []struct {
		reg func(metric.Int64Callback) error
		f   func() int64
	}{
		{tb.RegisterExtensionTailsiftStoreDiskBytesCallback, s.DiskBytes.Load},
		{tb.RegisterExtensionTailsiftStoreTracesCallback, s.Traces.Load},
		{tb.RegisterExtensionTailsiftStoreRecordsDroppedCallback, s.Dropped.Load},
		{tb.RegisterExtensionTailsiftStoreEvictedBytesCallback, s.EvictedBytes.Load},
		{tb.RegisterExtensionTailsiftStoreCorruptSegmentsCallback, s.CorruptSegments.Load},
		{tb.RegisterExtensionTailsiftStoreWriteErrorsCallback, s.WriteErrors.Load},
		{tb.RegisterExtensionTailsiftStoreInputBytesCallback, s.BytesIn.Load},
		{tb.RegisterExtensionTailsiftStoreWrittenBytesCallback, func() int64 { return s.BlockBytes.Load() }},
	}
	for _, r := range regs {
		if err := r.reg(obs(r.f)); err != nil {
			return fmt.Errorf("register store metric: %w", err)
		}
	}
	return nil
}
