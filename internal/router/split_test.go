package router

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exporterhelper/xexporterhelper"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/ring"
	"github.com/tailsift/tailsift/internal/router/routertest"
)

// spanKey is what must survive a split: the span and its framing.
type spanKey struct {
	span, service, scope string
}

func keys(t *testing.T, data []byte) map[spanKey]int {
	t.Helper()
	td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(data)
	require.NoError(t, err)
	out := map[spanKey]int{}
	for _, rs := range td.ResourceSpans().All() {
		svc, _ := rs.Resource().Attributes().Get("service.name")
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				out[spanKey{fmt.Sprintf("%x/%x", sp.TraceID(), sp.SpanID()), svc.Str(), ss.Scope().Name()}]++
			}
		}
	}
	return out
}

func TestSplit(t *testing.T) {
	var w routertest.Workload
	td := w.Batch(50, 7)
	buf, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	require.NoError(t, err)
	want := keys(t, buf)
	r := ring.New([]string{"a:1", "b:1", "c:1"})

	tests := []struct {
		name     string
		down     func(int) bool
		strict   bool
		ok       bool
		rerouted bool
	}{
		{name: "all up", ok: true},
		{name: "one down", down: func(m int) bool { return m == 1 }, ok: true, rerouted: true},
		{name: "all down falls back to the owners", down: func(int) bool { return true }, ok: true},
		{name: "all down, strict", down: func(int) bool { return true }, strict: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s splitter
			parts, ok, err := s.split(buf, &targets{ring: r, down: tt.down, strict: tt.strict})
			require.NoError(t, err)
			require.Equal(t, tt.ok, ok)
			if !ok {
				assert.Nil(t, parts)
				return
			}
			got := map[spanKey]int{}
			rerouted := 0
			for _, p := range parts {
				pk := keys(t, p.data)
				sum := 0
				for k, n := range pk {
					got[k] += n
					sum += n
				}
				assert.Equal(t, p.spans, sum, "part span count")
				rerouted += p.rerouted
				if tt.down != nil && !tt.strict && tt.rerouted {
					assert.False(t, tt.down(p.member), "spans sent to a down member")
				}
			}
			assert.Equal(t, want, got, "every span once, under its resource and scope")
			assert.Equal(t, tt.rerouted, rerouted > 0)
		})
	}
}

func TestSplitMalformed(t *testing.T) {
	var s splitter
	_, _, err := s.split([]byte{0x0a, 0x05, 0x01}, &targets{ring: ring.New([]string{"a:1"})})
	require.Error(t, err)
}

func TestMergeSplit(t *testing.T) {
	var w routertest.Workload
	// mk returns two requests of 12 and 10 spans, and the spans of both.
	mk := func(t *testing.T, pooled bool) (a, b *request, want map[spanKey]int) {
		t.Helper()
		enc := func(traces, spans int) *request {
			data, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(w.Batch(traces, spans))
			require.NoError(t, err)
			if pooled {
				data = append(getBuffer(len(data)), data...)
			}
			return &request{bufs: [][]byte{data}, spans: traces * spans, pooled: pooled}
		}
		a, b = enc(3, 4), enc(2, 5)
		want = keys(t, a.bytes())
		for k, n := range keys(t, b.bytes()) {
			want[k] += n
		}
		return a, b, want
	}
	collect := func(t *testing.T, reqs []xexporterhelper.Request) (map[spanKey]int, []int) {
		t.Helper()
		got := map[spanKey]int{}
		var sizes []int
		for _, r := range reqs {
			sizes = append(sizes, r.ItemsCount())
			for k, c := range keys(t, r.(*request).bytes()) {
				got[k] += c
			}
		}
		return got, sizes
	}
	ctx := context.Background()
	tests := []struct {
		name    string
		maxSize int
		pooled  bool
		sizes   []int
	}{
		{name: "merge, no limit", maxSize: 0, sizes: []int{22}},
		{name: "merge pooled requests", maxSize: 0, pooled: true, sizes: []int{22}},
		{name: "merge within the limit", maxSize: 22, sizes: []int{22}},
		{name: "over the limit: both as they are", maxSize: 15, sizes: []int{12, 10}},
		{name: "each over the limit: re-encoded", maxSize: 5, sizes: []int{5, 5, 5, 5, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b, want := mk(t, tt.pooled)
			out, err := a.MergeSplit(ctx, tt.maxSize, exporterhelper.RequestSizerTypeItems, b)
			require.NoError(t, err)
			got, sizes := collect(t, out)
			assert.Equal(t, tt.sizes, sizes)
			assert.Equal(t, want, got, "every span once, under its resource and scope")
		})
	}

	t.Run("a batch grows by merges", func(t *testing.T) {
		batch := &request{}
		want := map[spanKey]int{}
		for range 20 {
			a, _, _ := mk(t, true)
			for k, n := range keys(t, a.bytes()) {
				want[k] += n
			}
			out, err := batch.MergeSplit(ctx, 0, exporterhelper.RequestSizerTypeItems, a)
			require.NoError(t, err)
			require.Len(t, out, 1)
			batch = out[0].(*request)
		}
		assert.Len(t, batch.bufs, 20, "merged without copying")
		got, sizes := collect(t, []xexporterhelper.Request{batch})
		assert.Equal(t, []int{240}, sizes)
		assert.Equal(t, want, got)
	})

	t.Run("one request over the limit", func(t *testing.T) {
		a, _, _ := mk(t, false)
		want := keys(t, a.bytes())
		out, err := a.MergeSplit(ctx, 5, exporterhelper.RequestSizerTypeItems, nil)
		require.NoError(t, err)
		got, sizes := collect(t, out)
		assert.Equal(t, []int{5, 5, 2}, sizes)
		assert.Equal(t, want, got)
	})

	a, _, _ := mk(t, false)
	_, err := a.MergeSplit(ctx, 5, exporterhelper.RequestSizerTypeBytes, nil)
	require.Error(t, err)
}

func TestQueueEncoding(t *testing.T) {
	var w routertest.Workload
	data, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(w.Batch(2, 3))
	require.NoError(t, err)
	b, err := queueEncoding{}.Marshal(context.Background(), &request{bufs: [][]byte{data}, spans: 6})
	require.NoError(t, err)
	_, r, err := queueEncoding{}.Unmarshal(b)
	require.NoError(t, err)
	assert.Equal(t, 6, r.ItemsCount())
}

func TestPartialSuccess(t *testing.T) {
	resp := routertest.PartialSuccessResponse(t, 7, "too old")
	rejected, msg := partialSuccess(resp)
	assert.Equal(t, int64(7), rejected)
	assert.Equal(t, "too old", msg)
	rejected, msg = partialSuccess(nil)
	assert.Zero(t, rejected)
	assert.Empty(t, msg)
}

// BenchmarkSplit is the routing itself, on wire bytes: scan a marshalled
// batch and build one request per member (3 members), per span.
//
//	go test -run '^$' -bench Split -count 6 ./internal/router/ | benchstat -
func BenchmarkSplit(b *testing.B) {
	var w routertest.Workload
	td := w.Batch(100, 10)
	buf, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	require.NoError(b, err)
	t := &targets{ring: ring.New([]string{"a:1", "b:1", "c:1"})}
	s := splitter{maxBytes: 7 << 19} // the exporter's default max_request_bytes
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	cpu0, cpuOK := processCPU()
	for b.Loop() {
		parts, _, err := s.split(buf, t)
		if err != nil {
			b.Fatal(err)
		}
		for _, p := range parts {
			putBuffer(p.data)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*td.SpanCount()), "ns/span")
	if cpu1, _ := processCPU(); cpuOK {
		b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/float64(b.N*td.SpanCount()), "cpu-ns/span")
	}
}
