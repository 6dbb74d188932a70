package tracebuf

import (
	"context"
	"encoding/binary"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// annotatedSpan is one span of trace 1 for annotatedRequest: span n, a root
// when n is 1, with ERROR status if failed, carrying sampling.rule=upstream
// if upstream (as an earlier tier annotates it).
type annotatedSpan struct {
	n                uint64
	failed, upstream bool
}

func annotatedRequest(t *testing.T, spans ...annotatedSpan) []byte {
	td := ptrace.NewTraces()
	ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	for _, a := range spans {
		sp := ss.AppendEmpty()
		sp.SetTraceID(tid(1))
		sp.SetSpanID(spanID(a.n))
		if a.n != 1 {
			sp.SetParentSpanID(spanID(1))
		}
		if a.failed {
			sp.Status().SetCode(ptrace.StatusCodeError)
		}
		if a.upstream {
			sp.Attributes().PutStr("sampling.rule", "upstream")
			sp.Attributes().PutInt("SampleRate", 7)
		}
	}
	var m ptrace.ProtoMarshaler
	buf, err := m.MarshalTraces(td)
	require.NoError(t, err)
	return buf
}

// ruleLog records, for each span handed on, every sampling.rule and
// SampleRate entry it carries, duplicates included.
type ruleLog struct {
	mu    sync.Mutex
	rules map[uint64][]string
	rates map[uint64][]int64
}

func (l *ruleLog) emit(_ context.Context, td ptrace.Traces) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				id := sp.SpanID()
				n := binary.BigEndian.Uint64(id[:])
				if _, ok := l.rules[n]; !ok {
					l.rules[n] = nil // handed on, with no rule so far
				}
				for k, v := range sp.Attributes().All() {
					switch k {
					case "sampling.rule":
						l.rules[n] = append(l.rules[n], v.Str())
					case "SampleRate":
						l.rates[n] = append(l.rates[n], v.Int())
					}
				}
			}
		}
	}
	return nil
}

// output.annotate_roots puts sampling.rule and SampleRate on a kept trace's
// root even when the root arrives after the decision, and a span that
// already carries them ends with each once, naming this decision;
// annotate_spans puts them on every span, late ones included. (A late root
// once went out without them, and an annotated span got them twice.)
func TestAnnotateKeptSpans(t *testing.T) {
	up := func(n uint64) annotatedSpan { return annotatedSpan{n: n, upstream: true} }
	failed := annotatedSpan{n: 2, failed: true}
	var none []string
	for _, tc := range []struct {
		name          string
		roots, spans  bool
		onArrival     bool // the error decides the trace before its root
		requests      [][]annotatedSpan
		rules         map[uint64][]string
		wantRootRates []int64
	}{
		{"root in the decision, already annotated", true, false, false,
			[][]annotatedSpan{{up(1), failed}, {{n: 3}}},
			map[uint64][]string{1: {"errors"}, 2: none, 3: none}, []int64{1}},
		{"late root", true, false, true,
			[][]annotatedSpan{{failed}, {up(1), {n: 3}}},
			map[uint64][]string{1: {"errors"}, 2: none, 3: none}, []int64{1}},
		{"every span, late ones included", false, true, true,
			[][]annotatedSpan{{failed}, {up(1), {n: 3}}},
			map[uint64][]string{1: {"errors"}, 2: {"errors"}, 3: {"errors"}}, []int64{1}},
		{"off", false, false, true,
			[][]annotatedSpan{{failed}, {up(1), {n: 3}}},
			map[uint64][]string{1: {"upstream"}, 2: none, 3: none}, []int64{7}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			cfg := testBufferConfig()
			cfg.Completion.MaxSpans = 100
			cfg.Output.AnnotateRoots, cfg.Output.AnnotateSpans = tc.roots, tc.spans
			cfg.Policies = arrivalPolicies(tc.onArrival)
			out := &ruleLog{rules: map[uint64][]string{}, rates: map[uint64][]int64{}}
			b, clk := startBuffer(t, cfg, out.emit, nil)
			for _, req := range tc.requests {
				require.NoError(t, b.Ingest(ctx, annotatedRequest(t, req...)))
				require.NoError(t, b.Sync(ctx))
			}
			clk.Advance(cfg.Completion.Quiet)
			require.NoError(t, b.Sync(ctx))
			clk.Advance(cfg.Output.BatchTimeout)
			require.NoError(t, b.Sync(ctx))
			out.mu.Lock()
			defer out.mu.Unlock()
			assert.Equal(t, tc.rules, out.rules)
			assert.Equal(t, tc.wantRootRates, out.rates[1])
		})
	}
}
