package sampling_test

import (
	"testing"

	"github.com/tailsift/tailsift/sampling"
)

// BenchmarkObserveRootAdaptive measures what the buffer does on each
// arriving root span for an adaptive policy: its key hash and, for the
// status page, the route name check (one atomic load once the route is
// named).
//
//	go test -run '^$' -bench ObserveRootAdaptive -count 6 ./sampling/ | benchstat -
func BenchmarkObserveRootAdaptive(b *testing.B) {
	e, err := sampling.NewEngine([]sampling.PolicyConfig{sampling.NewPolicyConfig("anomalies", "adaptive", nil)})
	if err != nil {
		b.Fatal(err)
	}
	v := viewOf(b, oneSpan("checkout", "POST /api/v1/orders", map[string]any{"http.route": "/api/v1/orders"}))
	v.Root = true
	var tr sampling.Trace
	b.ReportAllocs()
	for b.Loop() {
		tr.KeySet = 0
		e.ObserveSpan(&tr, v)
	}
}
