package router

import (
	"maps"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/ring"
	"github.com/tailsift/tailsift/internal/router/routertest"
	"github.com/tailsift/tailsift/internal/wire"
)

func TestPartition(t *testing.T) {
	var w routertest.Workload
	buf, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(w.Batch(40, 5))
	require.NoError(t, err)
	want := keys(t, buf)
	r := ring.New([]string{"a:1", "b:1"})
	tests := []struct {
		name       string
		mine       func(h uint64) bool
		whole      bool // own is buf itself
		noOther    bool
		someOfEach bool
	}{
		{name: "all mine", mine: func(uint64) bool { return true }, whole: true, noOther: true},
		{name: "none mine", mine: func(uint64) bool { return false }},
		{name: "by ring", mine: func(h uint64) bool { return r.Owner(h) == 0 }, someOfEach: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			own, other, ownSpans, otherSpans, err := Partition(buf, tt.mine)
			require.NoError(t, err)
			assert.Equal(t, 200, ownSpans+otherSpans)
			if tt.whole {
				assert.Equal(t, &buf[0], &own[0])
			}
			if tt.noOther {
				assert.Nil(t, other)
			}
			got := map[spanKey]int{}
			for _, part := range [][]byte{own, other} {
				if part == nil {
					continue
				}
				maps.Copy(got, keys(t, part))
			}
			assert.Equal(t, want, got, "every span once, under its resource and scope")
			if tt.someOfEach {
				require.NotEmpty(t, own)
				require.NotEmpty(t, other)
				var b wire.Batch
				require.NoError(t, wire.Scan(other, &b))
				for _, sp := range b.Spans {
					assert.Equal(t, 1, r.Owner(ring.Hash(sp.TraceID)), "only others' traces in other")
				}
			}
		})
	}
	_, _, _, _, err = Partition([]byte{0xff}, func(uint64) bool { return true })
	require.Error(t, err)
}

func TestSplitPrefix(t *testing.T) {
	var w routertest.Workload
	buf, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(w.Batch(10, 2))
	require.NoError(t, err)
	prefix := []byte{0x0a, 0x00} // an empty ResourceSpans
	var s splitter
	parts, ok, err := s.split(buf, &targets{ring: ring.New([]string{"a:1", "b:1"}), prefix: prefix})
	require.NoError(t, err)
	require.True(t, ok)
	for _, p := range parts {
		assert.Equal(t, prefix, p.data[:2])
		td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(p.data)
		require.NoError(t, err)
		assert.Equal(t, p.spans, td.SpanCount())
	}
}
