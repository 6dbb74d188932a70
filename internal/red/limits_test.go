package red

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/clock/clocktest"
	"github.com/tailsift/tailsift/internal/store"
	"github.com/tailsift/tailsift/internal/tracebuf"
	"github.com/tailsift/tailsift/internal/wire"
	"github.com/tailsift/tailsift/sampling"
)

func redRequest(t *testing.T, svc string, spans ...func(ptrace.Span)) []byte {
	t.Helper()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", svc)
	ss := rs.ScopeSpans().AppendEmpty()
	for i, f := range spans {
		sp := ss.Spans().AppendEmpty()
		sp.SetName("op")
		sp.SetTraceID([16]byte{1})
		sp.SetSpanID([8]byte{byte(i + 1)})
		sp.SetStartTimestamp(1_000_000)
		sp.SetEndTimestamp(4_000_000)
		f(sp)
	}
	buf, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	require.NoError(t, err)
	return buf
}

func callsAttrSets(md pmetric.Metrics) map[string]int {
	out := map[string]int{}
	for _, rm := range md.ResourceMetrics().All() {
		for _, m := range rm.ScopeMetrics().At(0).Metrics().All() {
			if m.Name() != MetricCalls {
				continue
			}
			for _, dp := range m.Sum().DataPoints().All() {
				k := ""
				for kk, v := range dp.Attributes().All() {
					k += kk + "=" + v.AsString() + ";"
				}
				out[k]++
			}
		}
	}
	return out
}

// TestUnknownSpanKinds: kinds OTLP does not define (6 and up) made a
// series each, all written with the same attributes (SPAN_KIND_UNSPECIFIED):
// several cumulative streams of one identity. They are one series now; and
// kind 258, which the scan read as 2 (SERVER, the varint cut to a byte),
// is unknown too.
func TestUnknownSpanKinds(t *testing.T) {
	tab := NewTable(Config{Interval: 1, MaxSeries: 1000, BucketsMs: DefaultBucketsMs}, 1)
	var spans []func(ptrace.Span)
	for _, k := range []int32{0, 6, 7, 100, 127, 258} {
		spans = append(spans, func(sp ptrace.Span) { sp.SetKind(ptrace.SpanKind(k)) })
	}
	var b wire.Batch
	require.NoError(t, wire.Scan(redRequest(t, "svc", spans...), &b))
	tab.Observe(&b)
	sets := callsAttrSets(tab.Flush(2))
	require.Len(t, sets, 1, "%v", sets)
	for k, n := range sets {
		require.Equal(t, 1, n)
		require.Contains(t, k, "span.kind=SPAN_KIND_UNSPECIFIED")
	}
}

// TestSeriesKeysDoNotCollide: the series key joined service and name with
// a 0xff byte, which names may hold: service "a\xffb" with name "c" and
// service "a" with name "b\xffc" were one series.
func TestSeriesKeysDoNotCollide(t *testing.T) {
	tab := NewTable(Config{Interval: 1, MaxSeries: 1000, BucketsMs: DefaultBucketsMs}, 1)
	for _, p := range [][2]string{{"a\xffb", "c"}, {"a", "b\xffc"}} {
		var b wire.Batch
		name := p[1]
		require.NoError(t, wire.Scan(redRequest(t, p[0], func(sp ptrace.Span) { sp.SetName(name) }), &b))
		tab.Observe(&b)
	}
	require.Len(t, tab.list, 3, "the overflow series and two")
}

// TestReplayNotCountedAgain: after a restart, Replay takes the stored
// undecided spans in again through Ingest, which called the Accepted hook
// (the receiver's RED Observe) for them although the previous process had
// counted them: each span counted twice. Replayed spans are not counted.
func TestReplayNotCountedAgain(t *testing.T) {
	ctx := context.Background()
	cfg := errorsOnlyConfig()
	emit := func(context.Context, ptrace.Traces) error { return nil }
	open := func(dir string) *store.Store {
		st, err := store.Open(store.Options{Dir: dir, Retention: time.Hour, MaxBytes: 1 << 30})
		require.NoError(t, err)
		t.Cleanup(func() { _ = st.Close() })
		return st
	}
	dir := t.TempDir()
	st := open(dir)
	first := NewTable(DefaultConfig(), 1)
	b, err := tracebuf.New(cfg, emit, tracebuf.Settings{Clock: clocktest.NewFake(time.Unix(0, 0)), Accepted: first.Observe})
	require.NoError(t, err)
	b.AttachStore(st)
	b.Start()
	require.NoError(t, b.Ingest(ctx, redRequest(t, "svc", func(ptrace.Span) {}, func(ptrace.Span) {})))
	require.NoError(t, b.Sync(ctx))
	require.NoError(t, st.Sync(ctx))
	// kill -9 image
	image := t.TempDir()
	des, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, de := range des {
		data, err := os.ReadFile(filepath.Join(dir, de.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(image, de.Name()), data, 0o640))
	}
	before := callsTotal(first.Flush(2))
	_ = b.Shutdown(ctx)
	b.CloseStore()

	second := NewTable(DefaultConfig(), 3)
	b2, err := tracebuf.New(cfg, emit, tracebuf.Settings{Clock: clocktest.NewFake(time.Unix(100, 0)), Accepted: second.Observe})
	require.NoError(t, err)
	b2.AttachStore(open(image))
	b2.Start()
	n, err := b2.Replay(ctx)
	require.NoError(t, err)
	after := callsTotal(second.Flush(4))
	_ = b2.Shutdown(ctx)
	b2.CloseStore()
	require.Equal(t, 2, n, "replayed")
	require.Equal(t, int64(2), before)
	require.Zero(t, after, "counted again after the restart")
}

// TestIngestAgainNotCounted: spans a gateway takes in again (a handover
// from another gateway, traces given back after a failed handover) were
// counted where they were first buffered; IngestAgain buffers them without
// the Accepted hook, IngestOwned with it.
func TestIngestAgainNotCounted(t *testing.T) {
	ctx := context.Background()
	cfg := errorsOnlyConfig()
	tab := NewTable(DefaultConfig(), 1)
	b, err := tracebuf.New(cfg, func(context.Context, ptrace.Traces) error { return nil },
		tracebuf.Settings{Clock: clocktest.NewFake(time.Unix(0, 0)), Accepted: tab.Observe})
	require.NoError(t, err)
	b.Start()
	defer func() { _ = b.Shutdown(ctx) }()
	n, err := b.IngestAgain(ctx, redRequest(t, "svc", func(ptrace.Span) {}, func(ptrace.Span) {}), nil)
	require.NoError(t, err)
	require.Equal(t, 2, n, "buffered")
	require.Zero(t, callsTotal(tab.Flush(2)), "counted again")
	_, err = b.IngestOwned(ctx, redRequest(t, "svc", func(sp ptrace.Span) { sp.SetSpanID([8]byte{9}) }), nil)
	require.NoError(t, err)
	require.Equal(t, int64(1), callsTotal(tab.Flush(3)))
}

func callsTotal(md pmetric.Metrics) int64 {
	var n int64
	for _, rm := range md.ResourceMetrics().All() {
		for _, m := range rm.ScopeMetrics().At(0).Metrics().All() {
			if m.Name() == MetricCalls {
				for _, dp := range m.Sum().DataPoints().All() {
					n += dp.IntValue()
				}
			}
		}
	}
	return n
}

// TestSeriesNamesAreCapped: series hold their service and span names for
// the process's life, and names come from untrusted spans: 100 span names
// of 256 KiB held 51 MiB. Names are cut to maxNameBytes (at a UTF-8
// boundary), so that a series holds at most that.
func TestSeriesNamesAreCapped(t *testing.T) {
	tab := NewTable(DefaultConfig(), 1)
	for i := range 100 {
		name := string(rune('A'+i%26)) + string(rune('A'+i/26)) + strings.Repeat("é", 128<<10)
		var b wire.Batch
		require.NoError(t, wire.Scan(redRequest(t, "svc", func(sp ptrace.Span) { sp.SetName(name) }), &b))
		tab.Observe(&b)
	}
	require.Len(t, tab.list, 101)
	for _, s := range tab.list[1:] {
		require.LessOrEqual(t, len(s.name), maxNameBytes)
		require.True(t, utf8.ValidString(s.name), "cut at a rune boundary")
	}
}

// errorsOnlyConfig is a one-shard buffer that keeps the error traces.
func errorsOnlyConfig() tracebuf.Config {
	return tracebuf.Config{
		Shards:        1,
		Completion:    tracebuf.CompletionConfig{Quiet: time.Second, MaxWait: 10 * time.Second, MaxSpans: 100},
		Buffer:        tracebuf.BufferConfig{MaxBytes: 64 << 20, MaxQueuedBytes: 16 << 20},
		DecisionCache: tracebuf.DecisionCacheConfig{KeptMaxBytes: 64 << 10, DroppedMaxEntries: 1000},
		Output:        tracebuf.OutputConfig{BatchTimeout: 50 * time.Millisecond, BatchMaxSpans: 8192, ShutdownTimeout: 10 * time.Second},
		Policies: []sampling.PolicyConfig{
			sampling.NewPolicyConfig("errors", "status_code", &sampling.StatusCodeConfig{StatusCodes: []string{"ERROR"}}),
		},
	}
}
