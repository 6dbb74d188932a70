package tailsiftreceiver

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/tailsift/tailsift/internal/clock/clocktest"
	"github.com/tailsift/tailsift/internal/selfmetrics"
	"github.com/tailsift/tailsift/internal/tracebuf"
	"github.com/tailsift/tailsift/processor/tailsiftprocessor"
	"github.com/tailsift/tailsift/receiver/tailsiftreceiver/internal/metadata"
	"github.com/tailsift/tailsift/sampling"
)

// Transports a workload request goes over to the receiver.
const (
	viaGRPC = iota
	viaHTTPProto
	viaHTTPJSON
)

type wlRequest struct {
	td        ptrace.Traces
	transport int
}

// wlStep advances the clock, then sends its requests in order.
type wlStep struct {
	advance  time.Duration
	requests []wlRequest
}

type wlSpan struct {
	trace, span, parent uint64
	status              ptrace.StatusCode
	dur                 time.Duration
	ts                  string
	svc                 int
	pad                 int
}

// workload builds a seeded random workload over about a minute: fast, error,
// slow, rootless, head-sampled and oversized traces, spans spread over
// several requests and transports, late spans after their trace's
// decision, and a burst of large rootless traces that exceeds the memory
// budget. Times are on a 100 ms grid.
func workload(seed uint64, traces int) []wlStep {
	rnd := rand.New(rand.NewPCG(seed, seed^0x5eed))
	const tick = 100 * time.Millisecond
	byTick := map[int][]wlSpan{}
	for i := range traces {
		n := seed<<32 | uint64(i+1)
		start := rnd.IntN(300)
		kind := rnd.IntN(100)
		nspans := 1 + rnd.IntN(8)
		hasRoot := true
		late := rnd.IntN(10) == 0
		pad := rnd.IntN(64)
		var status ptrace.StatusCode
		dur := time.Duration(1+rnd.IntN(90)) * time.Millisecond
		ts := ""
		switch {
		case i >= traces/3 && i < traces/3+traces/8:
			// the memory burst: large, rootless, all at about the same time
			hasRoot, nspans, pad, start = false, 20, 600+rnd.IntN(400), 150+rnd.IntN(5)
		case kind < 10:
			status = ptrace.StatusCodeError
		case kind < 18:
			dur = 1500 * time.Millisecond
		case kind < 24:
			nspans = 30 + rnd.IntN(15) // over max_spans
		case kind < 32:
			hasRoot = false
		case kind < 36:
			ts = "ot=th:8"
		case kind < 40:
			ts = "vendor=v" + fmt.Sprint(rnd.IntN(9))
		}
		for s := 1; s <= nspans; s++ {
			if s == 1 && !hasRoot {
				continue
			}
			sp := wlSpan{trace: n, span: uint64(s), dur: dur, svc: rnd.IntN(3), pad: pad}
			if s > 1 {
				sp.parent = uint64(1 + rnd.IntN(s-1))
			} else {
				sp.ts = ts
			}
			if status == ptrace.StatusCodeError && s == nspans {
				sp.status = status
			}
			at := start + rnd.IntN(15)
			if late && s == nspans && s > 1 {
				at = start + 350 + rnd.IntN(50) // after max_wait
			}
			byTick[at] = append(byTick[at], sp)
		}
	}
	ticks := make([]int, 0, len(byTick))
	for k := range byTick {
		ticks = append(ticks, k)
	}
	sort.Ints(ticks)
	var steps []wlStep
	prev := 0
	for _, k := range ticks {
		spans := byTick[k]
		rnd.Shuffle(len(spans), func(i, j int) { spans[i], spans[j] = spans[j], spans[i] })
		step := wlStep{advance: time.Duration(k-prev) * tick}
		prev = k
		for len(spans) > 0 {
			m := min(len(spans), 1+rnd.IntN(40))
			step.requests = append(step.requests, wlRequest{td: buildTraces(spans[:m]), transport: rnd.IntN(3)})
			spans = spans[m:]
		}
		steps = append(steps, step)
	}
	// Let everything reach its completion rule.
	steps = append(steps, wlStep{advance: 40 * time.Second})
	return steps
}

func buildTraces(spans []wlSpan) ptrace.Traces {
	td := ptrace.NewTraces()
	var ss [3]ptrace.SpanSlice
	for _, w := range spans {
		if ss[w.svc] == (ptrace.SpanSlice{}) {
			rs := td.ResourceSpans().AppendEmpty()
			rs.Resource().Attributes().PutStr("service.name", fmt.Sprintf("svc-%d", w.svc))
			sc := rs.ScopeSpans().AppendEmpty()
			sc.Scope().SetName("lib")
			sc.Scope().SetVersion("1.0")
			ss[w.svc] = sc.Spans()
		}
		sp := ss[w.svc].AppendEmpty()
		sp.SetTraceID(traceID(w.trace))
		sp.SetSpanID(spanID(w.trace, w.span))
		if w.parent != 0 {
			sp.SetParentSpanID(spanID(w.trace, w.parent))
		}
		sp.SetName(fmt.Sprintf("op-%d", w.span%4))
		sp.SetKind(ptrace.SpanKindServer)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(t0))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(t0.Add(w.dur)))
		sp.Status().SetCode(w.status)
		sp.TraceState().FromRaw(w.ts)
		sp.Attributes().PutInt("span.no", int64(w.span))
		sp.Attributes().PutStr("pad", strings.Repeat("p", w.pad))
		sp.Events().AppendEmpty().SetName("event")
	}
	return td
}

func equivalenceConfig() *Config {
	cfg := testConfig()
	cfg.Completion.MaxSpans = 25
	cfg.Buffer.MaxBytes = 1 << 20 // 512 KiB a shard: the burst goes over it
	// Late spans come 35–40 s after their trace's first span, up to about
	// 35 s after its decision: a late ERROR span rescues its held trace.
	cfg.Rescue = tracebuf.RescueConfig{Window: time.Minute, MaxBytes: 4 << 20}
	cfg.Policies = append(cfg.Policies,
		sampling.NewPolicyConfig("baseline", "probabilistic", &sampling.ProbabilisticConfig{SamplingPercentage: 20}),
		// Span predicates on resource and span attributes, which the
		// processor evaluates on pdata it re-encodes and the receiver on
		// the request's own bytes.
		sampling.NewPolicyConfig("svc-2-mid", "and", &sampling.AndConfig{SubPolicies: []sampling.PolicyConfig{
			sampling.NewPolicyConfig("svc-2", "string_attribute", &sampling.StringAttributeConfig{Key: "service.name", Values: []string{"^svc-2$"}, EnabledRegexMatching: true}),
			sampling.NewPolicyConfig("mid", "numeric_attribute", &sampling.NumericAttributeConfig{Key: "span.no", MinValue: 12, MaxValue: 13}),
		}}),
		sampling.NewPolicyConfig("deep", "numeric_attribute", &sampling.NumericAttributeConfig{Key: "span.no", MinValue: 20, MaxValue: 21}))
	return cfg
}

// send delivers one request to the receiver over its transport.
func (g *rig) send(req wlRequest) {
	g.t.Helper()
	switch req.transport {
	case viaGRPC:
		g.sendGRPC(req.td)
	case viaHTTPProto:
		resp, body := g.httpExport(marshal(g.t, req.td), pbContentType)
		require.Equal(g.t, http.StatusOK, resp.StatusCode, string(body))
	case viaHTTPJSON:
		js, err := ptraceotlp.NewExportRequestFromTraces(req.td).MarshalJSON()
		require.NoError(g.t, err)
		resp, body := g.httpExport(js, jsonContentType)
		require.Equal(g.t, http.StatusOK, resp.StatusCode, string(body))
	}
}

// processorPath is the tailsift processor's ConsumeTraces on a buffer of
// the same configuration with a fake clock: the processor offers no clock
// injection outside its package, so this repeats its two steps (encode the
// pdata, Ingest) on the same buffer and self-metrics observer.
type processorPath struct {
	buf  *tracebuf.Buffer
	clk  *clocktest.Fake
	sink *consumertest.TracesSink
	tel  *componenttest.Telemetry
	tb   *metadata.TelemetryBuilder
}

func newProcessorPath(t *testing.T, cfg *Config) *processorPath {
	p := &processorPath{clk: clocktest.NewFake(t0), sink: new(consumertest.TracesSink), tel: componenttest.NewTelemetry()}
	tb, err := metadata.NewTelemetryBuilder(p.tel.NewTelemetrySettings())
	require.NoError(t, err)
	p.tb = tb
	obs := selfmetrics.NewObserver(instruments(tb))
	p.buf, err = tracebuf.New(cfg.bufferConfig, p.sink.ConsumeTraces, tracebuf.Settings{Observer: obs, Clock: p.clk})
	require.NoError(t, err)
	p.buf.Start()
	t.Cleanup(func() {
		assert.NoError(t, p.buf.Shutdown(context.Background()))
		tb.Shutdown()
		assert.NoError(t, p.tel.Shutdown(context.Background()))
	})
	return p
}

// consume is tailsiftProcessor.ConsumeTraces.
func (p *processorPath) consume(t *testing.T, td ptrace.Traces) {
	var m ptrace.ProtoMarshaler
	buf, err := m.MarshalTraces(td)
	require.NoError(t, err)
	require.NoError(t, p.buf.Ingest(context.Background(), buf))
}

// metricSnapshot reads every int sum and every histogram's count and sum
// of the metrics whose names start with prefix, keyed by name (without the
// prefix) and attributes.
func metricSnapshot(t *testing.T, tel *componenttest.Telemetry, prefix string, histSums bool) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, name := range []string{
		"spans_received", "spans_refused", "traces_decided", "spans_decided", "early_decisions",
		"late_spans", "export_failures", "buffered_bytes", "buffered_traces", "decision_latency", "decision_lag",
		"rescue_held_bytes", "rescue_held_traces", "traces_rescued", "traces_probed",
	} {
		m, err := tel.GetMetric(prefix + name)
		if err != nil {
			continue
		}
		switch d := m.Data.(type) {
		case metricdata.Sum[int64]:
			for _, dp := range d.DataPoints {
				out[name+"{"+dp.Attributes.Encoded(attribute.DefaultEncoder())+"}"] = float64(dp.Value)
			}
		case metricdata.Histogram[float64]:
			for _, dp := range d.DataPoints {
				out[name+".count"] = float64(dp.Count)
				if histSums {
					out[name+".sum"] = dp.Sum
				}
			}
		}
	}
	return out
}

// TestEquivalenceWithProcessorFakeClock feeds seeded random workloads to the
// receiver, over real gRPC and HTTP servers, and to the processor's path,
// with both clocks advanced alike, and requires the same decisions, the
// same self-metrics and the same kept spans at every step.
func TestEquivalenceWithProcessorFakeClock(t *testing.T) {
	seeds := []uint64{1, 2, 3}
	if testing.Short() {
		seeds = seeds[:1]
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			cfg := equivalenceConfig()
			g := newRig(t, cfg, nil)
			p := newProcessorPath(t, cfg)
			var u ptrace.ProtoUnmarshaler
			for i, step := range workload(seed, 1200) {
				g.advance(step.advance)
				p.clk.Advance(step.advance)
				require.NoError(t, p.buf.Sync(context.Background()))
				for _, req := range step.requests {
					raw := marshal(t, req.td)
					g.send(req)
					td, err := u.UnmarshalTraces(raw)
					require.NoError(t, err)
					p.consume(t, td)
				}
				require.NoError(t, g.r.buf.Sync(context.Background()))
				require.NoError(t, p.buf.Sync(context.Background()))
				require.Equal(t, p.sink.SpanCount(), g.sink.SpanCount(), "kept span counts differ after step %d", i)
				if i%25 == 0 {
					require.Equal(t, keptSet(p.sink.AllTraces()), keptSet(g.sink.AllTraces()), "kept spans differ after step %d", i)
				}
			}
			require.Equal(t, keptSet(p.sink.AllTraces()), keptSet(g.sink.AllTraces()))
			// A shard reports buffered bytes and traces just after it answers
			// a Sync; a second Sync waits for that report.
			require.NoError(t, g.r.buf.Sync(context.Background()))
			require.NoError(t, p.buf.Sync(context.Background()))
			want := metricSnapshot(t, p.tel, "otelcol_receiver_tailsift_", true)
			got := metricSnapshot(t, g.tel, "otelcol_receiver_tailsift_", true)
			assert.Equal(t, want, got)

			// The workload covers what it is meant to.
			for _, k := range []string{
				"early_decisions{reason=max_spans}", "early_decisions{reason=memory}",
				"late_spans{decision=keep}", "late_spans{decision=drop}",
				"traces_decided{decision=keep,policy=errors}", "traces_decided{decision=keep,policy=slow}",
				"traces_decided{decision=keep,policy=baseline}", "traces_decided{decision=drop,policy=}",
				"traces_rescued{policy=errors}",
			} {
				assert.Positive(t, got[k], k)
			}
			assert.Zero(t, got["buffered_traces{}"])
			assert.Positive(t, got["rescue_held_traces{}"], "the rescue window is still open for the last traces")
			t.Logf("kept %d spans; %v", g.sink.SpanCount(), got)
		})
	}
}

// TestEquivalenceWithProcessorComponent runs the actual tailsift processor
// component, through its factory and ConsumeTraces, next to the receiver on
// the real clock. Timed completion rules are pushed out of reach, so that
// decisions come from max_spans, the memory budget, late spans and the
// shutdown flush only, which do not depend on time.
func TestEquivalenceWithProcessorComponent(t *testing.T) {
	cfg := equivalenceConfig()
	cfg.Completion.Quiet = time.Hour
	cfg.Completion.MaxWait = 2 * time.Hour

	rset := receivertest.NewNopSettings(metadata.Type)
	rtel := componenttest.NewTelemetry()
	rset.TelemetrySettings = rtel.NewTelemetrySettings()
	rsink := new(consumertest.TracesSink)
	rc, err := NewFactory().CreateTraces(context.Background(), rset, cfg, rsink)
	require.NoError(t, err)
	require.NoError(t, rc.Start(context.Background(), componenttest.NewNopHost()))
	g := newClientRig(t, rc.(*tailsiftReceiver))

	pf := tailsiftprocessor.NewFactory()
	pset := processortest.NewNopSettings(pf.Type())
	ptel := componenttest.NewTelemetry()
	pset.TelemetrySettings = ptel.NewTelemetrySettings()
	psink := new(consumertest.TracesSink)
	pcfg := pf.CreateDefaultConfig().(*tailsiftprocessor.Config)
	*pcfg = cfg.bufferConfig // the same struct: the block moves as it is
	pc, err := pf.CreateTraces(context.Background(), pset, pcfg, psink)
	require.NoError(t, err)
	require.NoError(t, pc.Start(context.Background(), componenttest.NewNopHost()))

	var u ptrace.ProtoUnmarshaler
	for _, step := range workload(7, 1500) {
		for _, req := range step.requests {
			raw := marshal(t, req.td)
			g.send(req)
			td, err := u.UnmarshalTraces(raw)
			require.NoError(t, err)
			require.NoError(t, pc.ConsumeTraces(context.Background(), td))
		}
	}
	g.close()
	require.NoError(t, rc.Shutdown(context.Background()))
	require.NoError(t, pc.Shutdown(context.Background()))

	require.Equal(t, keptSet(psink.AllTraces()), keptSet(rsink.AllTraces()))
	want := metricSnapshot(t, ptel, "otelcol_processor_tailsift_", false)
	got := metricSnapshot(t, rtel, "otelcol_receiver_tailsift_", false)
	assert.Equal(t, want, got)
	for _, k := range []string{
		"early_decisions{reason=max_spans}", "early_decisions{reason=memory}", "early_decisions{reason=shutdown}",
		"late_spans{decision=keep}",
		// No late span is dropped here: the traces dropped early for memory
		// are not remembered (their later spans are decided afresh), and the
		// "deep" policy keeps every trace that reaches max_spans.
	} {
		assert.Positive(t, got[k], k)
	}
	t.Logf("kept %d spans; %v", rsink.SpanCount(), got)
	require.NoError(t, rtel.Shutdown(context.Background()))
	require.NoError(t, ptel.Shutdown(context.Background()))
}
