// Package workload generates a realistic, reproducible OTLP trace workload
// cheaply: span bytes are encoded once per trace template, and every send only
// copies them and patches fixed-width fields (trace ID, timestamps, sequence
// number) at offsets recorded in the template.
//
// See cmd/tailsift-loadgen/README.md for the workload shape and the label and
// manifest contract.
package workload

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Shape of the simulated system.
const (
	NumServices    = 50 // services svc-00 .. svc-49
	OpsPerService  = 20 // operations (routes) op-00 .. op-19 per service
	EntryServices  = 5  // svc-00 .. svc-04 own the root spans (100 root routes)
	SpanAttrs      = 10 // span attributes per span, labels included
	ResourceAttrs  = 9  // resource attributes per service
	DefaultMaxSpan = 512
)

// Latency model. Root latency is log-normal with p50 50 ms and p99 1 s over
// all routes: each root route has its own median (log-normal around 50 ms with
// sigmaRoute) and each trace varies around its route's median (sigmaTrace), so
// that sigmaRoute^2 + sigmaTrace^2 = sigmaTotal^2.
var (
	sigmaTotal = math.Log(1000.0/50.0) / 2.3263478740408408 // z(0.99)
	sigmaRoute = 0.6
	sigmaTrace = math.Sqrt(sigmaTotal*sigmaTotal - sigmaRoute*sigmaRoute)
)

const (
	medianRoot     = 50 * time.Millisecond
	slowThreshold  = time.Second
	pLogNormalSlow = 0.01 // P(log-normal root >= 1 s) by construction (p99 = 1 s)
	minRootLatency = time.Millisecond
	minBatchDelay  = 200 * time.Millisecond
	maxBatchDelay  = 5 * time.Second
)

// The default class mix in percent (see Mix).
const (
	defaultSlowPct    = 1    // extra slow tail of 2-10 s, of the ordinary traces
	defaultAnomalyPct = 0.5  // per-route latency anomaly
	defaultHugePct    = 0.01 // one trace in 10 000
	defaultLatePct    = 0.6  // of eligible spans: ~0.5 % of all spans held back 10-30 s
)

// ServiceName returns "svc-07" for 7.
func ServiceName(svc int) string { return fmt.Sprintf("svc-%02d", svc) }

// RouteName returns "svc-07/op-03", the manifest's route of a root span.
func RouteName(svc, op int) string { return fmt.Sprintf("svc-%02d/op-%02d", svc, op) }

// model holds the per-run, seed-derived properties of the simulated system.
type model struct {
	// routeMedian is the normal (median) latency of every root route.
	routeMedian [EntryServices][OpsPerService]time.Duration
	// batchDelay is every service's SDK batching delay (0.2-5 s): a
	// service's batch is exported when it holds MaxSpans spans or when it
	// has been open this long.
	batchDelay [NumServices]time.Duration
	resource   [NumServices][]byte // encoded Resource field (tag, length, message)
	scope      []byte              // encoded InstrumentationScope field of ScopeSpans
	schemaURL  []byte              // encoded schema_url field of ResourceSpans
	// slowTailShare is the share of slow templates drawn from the extra
	// 2-10 s tail (the others come from the log-normal tail >= 1 s).
	slowTailShare float64
	pLateSpan     float64 // probability that an eligible span is late
	sdk           bool    // ShapeSDK (see shape.go)
}

func newModel(rng *rand.Rand, sdk bool) *model {
	m := &model{sdk: sdk}
	if sdk {
		newSDKModel(rng, m)
		return m
	}
	for s := range EntryServices {
		for o := range OpsPerService {
			m.routeMedian[s][o] = time.Duration(float64(medianRoot) * math.Exp(sigmaRoute*rng.NormFloat64()))
		}
	}
	for s := range NumServices {
		m.resource[s] = encodeResource(rng, s)
	}
	for s := range NumServices {
		m.batchDelay[s] = uniformDur(rng, minBatchDelay, maxBatchDelay)
	}
	m.scope = encodeScope()
	m.schemaURL = appendStringField(nil, 3, "https://opentelemetry.io/schemas/1.26.0")
	return m
}

// delay is service svc's batching delay, or linger when linger > 0.
func (m *model) delay(svc int, linger time.Duration) time.Duration {
	if linger > 0 {
		return linger
	}
	return m.batchDelay[svc]
}

// logNormal draws median*exp(sigma*Z).
func logNormal(rng *rand.Rand, median time.Duration, sigma float64) time.Duration {
	return time.Duration(float64(median) * math.Exp(sigma*rng.NormFloat64()))
}

func uniformDur(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rng.Int64N(int64(hi-lo)+1))
}
