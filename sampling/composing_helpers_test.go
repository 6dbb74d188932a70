package sampling_test

import (
	"sync/atomic"
	"testing"
	"time"

	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/sampling"
	"github.com/tailsift/tailsift/sampling/samplingtest"
)

const sec = int64(time.Second)

// t0 is an arbitrary decision time, Unix ns.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano()

// fixed is a policy with a fixed decision, like contrib's mockEvaluator.
type fixed sampling.Decision

func (f fixed) Evaluate(*sampling.Trace) sampling.Decision { return sampling.Decision(f) }

// counted counts its evaluations.
type counted struct {
	d sampling.Decision
	n atomic.Int64
}

func (c *counted) Evaluate(*sampling.Trace) sampling.Decision {
	c.n.Add(1)
	return c.d
}

var (
	sampled          = sampling.SampledAt(otelsampling.AlwaysSampleThreshold)
	notSampled       = sampling.Decision{}
	invertSampled    = sampling.Invert(true)
	invertNotSampled = sampling.Invert(false)
	dropped          = sampling.Drop()
)

// build validates and builds one policy outside an engine.
func build(t testing.TB, c sampling.PolicyConfig) sampling.Policy {
	t.Helper()
	p, _, err := sampling.BuildPolicy(&c)
	require.NoError(t, err)
	return p
}

// rateLimitingPolicy and bytesLimitingPolicy are contrib's limiters (mode
// strict), which the ported tests check.
func rateLimitingPolicy(name string, sps, burst int64) sampling.PolicyConfig {
	return sampling.NewPolicyConfig(name, "rate_limiting", &sampling.RateLimitingConfig{SpansPerSecond: sps, BurstCapacity: burst, Mode: sampling.LimitStrict})
}

func bytesLimitingPolicy(name string, bps, burst int64) sampling.PolicyConfig {
	return sampling.NewPolicyConfig(name, "bytes_limiting", &sampling.BytesLimitingConfig{BytesPerSecond: bps, BurstCapacity: burst, Mode: sampling.LimitStrict})
}

func ottlPolicy(name string, span, spanEvent []string) sampling.PolicyConfig {
	return sampling.NewPolicyConfig(name, "ottl_condition", &sampling.OTTLConditionConfig{SpanConditions: span, SpanEventConditions: spanEvent})
}

func andPolicy(name string, subs ...sampling.PolicyConfig) sampling.PolicyConfig {
	return sampling.NewPolicyConfig(name, "and", &sampling.AndConfig{SubPolicies: subs})
}

func notPolicy(name string, sub sampling.PolicyConfig) sampling.PolicyConfig {
	return sampling.NewPolicyConfig(name, "not", &sampling.NotConfig{SubPolicy: sub})
}

func dropPolicy(name string, subs ...sampling.PolicyConfig) sampling.PolicyConfig {
	return sampling.NewPolicyConfig(name, "drop", &sampling.DropConfig{SubPolicies: subs})
}

// spanSpec describes one span of traceOf: attributes, attributes of its one
// event ("test event"), status and times in ms after a base time.
type spanSpec struct {
	attrs      map[string]any
	eventAttrs map[string]any
	status     ptrace.StatusCode
	startMs    int64
	endMs      int64
}

// traceOf returns a trace with id and one span per spec, in one resource and
// scope; the first span is the root.
func traceOf(id [16]byte, specs ...spanSpec) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "test-service")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("test-scope")
	base := time.Date(2020, 1, 1, 12, 0, 0, 0, time.UTC)
	for i, s := range specs {
		sp := ss.Spans().AppendEmpty()
		sp.SetTraceID(id)
		sp.SetSpanID(pcommon.SpanID{byte(i + 1)})
		if i > 0 {
			sp.SetParentSpanID(pcommon.SpanID{1})
		}
		sp.SetName("span")
		sp.Status().SetCode(s.status)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(base.Add(time.Duration(s.startMs) * time.Millisecond)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(base.Add(time.Duration(s.endMs) * time.Millisecond)))
		if s.attrs != nil {
			_ = sp.Attributes().FromRaw(s.attrs)
		}
		ev := sp.Events().AppendEmpty()
		ev.SetName("test event")
		if s.eventAttrs != nil {
			_ = ev.Attributes().FromRaw(s.eventAttrs)
		}
	}
	return td
}

// decide summarizes td at now for an engine with the given policies and
// returns the engine's decision.
func decide(t testing.TB, e *sampling.Engine, td ptrace.Traces, now int64) sampling.Decision {
	t.Helper()
	return e.Decide(samplingtest.Summarize(t, e, td, now))
}

// evalOn evaluates a freshly built policy of cfg on td summarized at now as
// the buffer would for an engine holding cfg.
func evalOn(t testing.TB, cfg sampling.PolicyConfig, td ptrace.Traces, now int64) sampling.Decision {
	t.Helper()
	e := newEngine(t, cfg)
	return build(t, cfg).Evaluate(samplingtest.Summarize(t, e, td, now))
}
