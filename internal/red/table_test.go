package red

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/wire"
)

// request is one span per name under service svc, each of trace 1.
func request(t *testing.T, svc string, names ...string) []byte {
	t.Helper()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", svc)
	for i, n := range names {
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetName(n)
		sp.SetTraceID([16]byte{1})
		sp.SetSpanID([8]byte{byte(i + 1)})
		sp.SetStartTimestamp(1_000_000)
		sp.SetEndTimestamp(4_000_000) // 3ms
	}
	buf, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	require.NoError(t, err)
	return buf
}

func observe(t *testing.T, table *Table, req []byte) {
	t.Helper()
	var b wire.Batch
	require.NoError(t, wire.Scan(req, &b))
	table.Observe(&b)
}

// calls returns the calls per series key (span.name, or "overflow").
func calls(md pmetric.Metrics) map[string]int64 {
	out := make(map[string]int64)
	for _, rm := range md.ResourceMetrics().All() {
		for _, m := range rm.ScopeMetrics().At(0).Metrics().All() {
			if m.Name() != MetricCalls {
				continue
			}
			for _, dp := range m.Sum().DataPoints().All() {
				k := "overflow"
				if v, ok := dp.Attributes().Get(keySpanName); ok {
					k = v.Str()
				}
				out[k] += dp.IntValue()
			}
		}
	}
	return out
}

func TestOverflowSeries(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxSeries = 2
	table := NewTable(cfg, 0)
	observe(t, table, request(t, "svc", "a", "b", "c", "a", "d"))
	got := calls(table.Flush(1))
	assert.Equal(t, map[string]int64{"a": 2, "b": 1, "overflow": 2}, got)
	md := table.Flush(2)
	var overflowMarked bool
	for _, rm := range md.ResourceMetrics().All() {
		for _, dp := range rm.ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints().All() {
			if v, ok := dp.Attributes().Get(keyOverflow); ok && v.Bool() {
				overflowMarked = true
			}
		}
	}
	assert.True(t, overflowMarked, "the overflow series carries otel.metric.overflow=true")
}

// Kept sets an exemplar only on the series of the kept spans, and a flush
// writes it once; KeptBatch does the same from the kept spans' bytes (a
// buffer's wire output).
func TestExemplarsOfKeptSpansOnly(t *testing.T) {
	for _, mode := range []string{"pdata", "wire"} {
		t.Run(mode, func(t *testing.T) {
			table := NewTable(DefaultConfig(), 0)
			observe(t, table, request(t, "svc", "kept", "dropped"))
			td := ptrace.NewTraces()
			rs := td.ResourceSpans().AppendEmpty()
			rs.Resource().Attributes().PutStr("service.name", "svc")
			sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
			sp.SetName("kept")
			sp.SetTraceID([16]byte{9})
			sp.SetSpanID([8]byte{9})
			sp.SetStartTimestamp(1_000_000)
			sp.SetEndTimestamp(4_000_000)
			if mode == "pdata" {
				table.Kept(td)
			} else {
				buf, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
				require.NoError(t, err)
				var b wire.Batch
				require.NoError(t, wire.Scan(buf, &b))
				table.KeptBatch(&b)
			}

			exemplars := func(md pmetric.Metrics) map[string][]pcommon.TraceID {
				out := make(map[string][]pcommon.TraceID)
				for _, m := range md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().All() {
					if m.Name() != MetricDuration {
						continue
					}
					for _, dp := range m.Histogram().DataPoints().All() {
						name, _ := dp.Attributes().Get(keySpanName)
						for _, ex := range dp.Exemplars().All() {
							out[name.Str()] = append(out[name.Str()], ex.TraceID())
							assert.Equal(t, pcommon.SpanID{9}, ex.SpanID())
							assert.InDelta(t, 3.0, ex.DoubleValue(), 1e-9)
						}
					}
				}
				return out
			}
			assert.Equal(t, map[string][]pcommon.TraceID{"kept": {[16]byte{9}}}, exemplars(table.Flush(1)))
			assert.Empty(t, exemplars(table.Flush(2)), "an exemplar is written once")
		})
	}
}

func TestServiceName(t *testing.T) {
	tests := []struct {
		name  string
		attrs func(pcommon.Map)
		want  string
		found bool
	}{
		{"string", func(m pcommon.Map) { m.PutStr("host.name", "h"); m.PutStr("service.name", "cart") }, "cart", true},
		{"absent", func(m pcommon.Map) { m.PutStr("host.name", "h") }, "", false},
		{"not a string", func(m pcommon.Map) { m.PutInt("service.name", 3) }, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			td := ptrace.NewTraces()
			rs := td.ResourceSpans().AppendEmpty()
			tt.attrs(rs.Resource().Attributes())
			rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty().SetTraceID([16]byte{1})
			buf, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
			require.NoError(t, err)
			var b wire.Batch
			require.NoError(t, wire.Scan(buf, &b))
			name, found := serviceName(b.Scopes[0].Resource)
			assert.Equal(t, tt.found, found)
			assert.Equal(t, tt.want, string(name))
		})
	}
}
