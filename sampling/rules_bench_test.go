package sampling_test

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/sampling"
	"github.com/tailsift/tailsift/sampling/samplingtest"
)

// BenchmarkRulesDecide measures a decision in rule mode on a decoded trace
// of 10 spans: the contrib README's shape (errors, a service rule, a
// catch-all), the trace decided by each rule in turn, against the same
// decisions as policies (status_code, ottl_condition, probabilistic), which
// evaluate every policy. The OTTL conditions dominate: a rule evaluates
// them on each span until one holds.
//
//	go test -run '^$' -bench BenchmarkRulesDecide -count 6 ./sampling/ | benchstat -col /mode -
func BenchmarkRulesDecide(b *testing.B) {
	specs := make([]spanSpec, 10)
	for i := range specs {
		specs[i] = spanSpec{attrs: map[string]any{"http.route": "/api/items", "http.status_code": 200}}
	}
	other := serviceTrace(traceID(1<<56-1), "cart", specs...)
	checkout := serviceTrace(traceID(1<<56-1), "checkout", specs...)
	specs[9].status = ptrace.StatusCodeError
	errs := serviceTrace(traceID(1<<56-1), "cart", specs...)

	rules := []sampling.RuleConfig{
		alwaysRule("errors", errCond),
		rule("checkout", []string{checkoutCond}, probPolicy("", 10)),
		rule("default", nil, probPolicy("", 1)),
	}
	policies := []sampling.PolicyConfig{
		statusPolicy("errors", "ERROR"),
		ottlPolicy("checkout", []string{checkoutCond}, nil),
		probPolicy("default", 1),
	}
	for _, tc := range []struct {
		name string
		td   ptrace.Traces
	}{{"errors", errs}, {"checkout", checkout}, {"default", other}} {
		for _, mode := range []string{"rules", "policies"} {
			b.Run("trace="+tc.name+"/mode="+mode, func(b *testing.B) {
				var e *sampling.Engine
				if mode == "rules" {
					e = ruleEngine(b, rules...)
				} else {
					e = newEngine(b, policies...)
				}
				tr := samplingtest.Summarize(b, e, tc.td, t0)
				b.ReportAllocs()
				for b.Loop() {
					e.Decide(tr)
				}
			})
		}
	}
}
