package workload

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// Workload shapes (Config.Shape).
//
// ShapeBench is the benchmark's own workload: about 12 spans per trace over
// 3-8 services, 10 attributes per span, 9 per resource, and a trace's spans
// flushed in a few groups that may mix services (an agent or gateway
// re-batching), so a request holds several ResourceSpans.
//
// ShapeSDK mimics what services instrumented with the OpenTelemetry Go SDK
// send directly (BatchSpanProcessor + otlptracegrpc, no compression): about
// 16 spans per trace over 2-6 services, 4 attributes per span (the two labels,
// http.request.method, http.route), the SDK's default resource (service.name
// and the three telemetry.sdk.* attributes) and one instrumentation scope.
// Every service exports its own spans: a request is one service's batch, one
// ResourceSpans with spans of many traces, flushed when it holds MaxSpans
// spans (512) or 5 s after it opened (the SDK's defaults), and a trace's
// spans are spread over requests from each of its services. There are no
// late spans: the SDK sends a span when it ends.
const (
	ShapeBench = "bench"
	ShapeSDK   = "sdk"
)

// Attribute counts of ShapeSDK.
const (
	SDKSpanAttrs     = 4
	SDKResourceAttrs = 4
)

const (
	sdkBatchTimeout   = 5 * time.Second // sdktrace.BatchSpanProcessor's default
	sdkMinSpans       = 8
	sdkSpanMeanExtra  = 8.7 // with the flooring and truncation: mean about 16
	sdkScopeName      = "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	sdkSchemaURL      = "https://opentelemetry.io/schemas/1.43.0" // sdk/resource's semconv
	sdkTelemetryVer   = "1.47.0"
	sdkMaxTraceSvcs   = 6
	sdkMinTraceSvcs   = 2
	sdkSpanCountLimit = 50
)

// newSDKModel fills m for ShapeSDK: the same route latencies as the bench
// shape, the SDK's default resource and batch timeout.
func newSDKModel(rng *rand.Rand, m *model) {
	for s := range EntryServices {
		for o := range OpsPerService {
			m.routeMedian[s][o] = time.Duration(float64(medianRoot) * math.Exp(sigmaRoute*rng.NormFloat64()))
		}
	}
	for s := range NumServices {
		var r []byte
		r = appendKVString(r, 1, "service.name", ServiceName(s))
		r = appendKVString(r, 1, "telemetry.sdk.language", "go")
		r = appendKVString(r, 1, "telemetry.sdk.name", "opentelemetry")
		r = appendKVString(r, 1, "telemetry.sdk.version", sdkTelemetryVer)
		m.resource[s] = appendBytesField(nil, fRSResource, r)
		m.batchDelay[s] = sdkBatchTimeout
	}
	var sc []byte
	sc = appendStringField(sc, 1, sdkScopeName)
	m.scope = appendBytesField(nil, fSSScope, sc)
	m.schemaURL = appendStringField(nil, 3, sdkSchemaURL)
}

// sdkSpanCount maps u in [0, 1) to sdkMinSpans + floor(Exp(sdkSpanMeanExtra))
// truncated to [sdkMinSpans, 50].
func sdkSpanCount(u float64) int {
	limit := float64(sdkSpanCountLimit - sdkMinSpans + 1)
	x := -sdkSpanMeanExtra * math.Log1p(-u*(1-math.Exp(-limit/sdkSpanMeanExtra)))
	return min(sdkMinSpans+int(x), sdkSpanCountLimit)
}

// sdkTraceServices is the number of services of a ShapeSDK trace of n spans.
func sdkTraceServices(rng *rand.Rand, n int) int {
	return min(sdkMinTraceSvcs+rng.IntN(sdkMaxTraceSvcs-sdkMinTraceSvcs+1), n)
}

// sdkGroups cuts a ShapeSDK trace into one group per service: the spans a
// service's SDK exports, ready when the last of them ends (a span joins the
// batch when it ends; the batch of a service is flushed after at most the
// batch timeout, so the whole group travels together unless the batch
// fills). The root's service's group is last: the root ends last.
func sdkGroups(m *model, sp []tspan, linger time.Duration) []tgroup {
	rootSvc := sp[0].svc
	var groups []tgroup
	idx := map[int]int{}
	for i := range sp {
		s := sp[i].svc
		if s == rootSvc {
			continue
		}
		gi, ok := idx[s]
		if !ok {
			gi = len(groups)
			idx[s] = gi
			groups = append(groups, tgroup{lane: s})
		}
		groups[gi].spans = append(groups[gi].spans, i)
		groups[gi].ready = max(groups[gi].ready, sp[i].end)
	}
	root := tgroup{lane: rootSvc}
	for i := range sp {
		if sp[i].svc == rootSvc {
			root.spans = append(root.spans, i)
			root.ready = max(root.ready, sp[i].end)
		}
	}
	slices.SortStableFunc(groups, func(a, b tgroup) int { return cmp.Compare(a.ready, b.ready) })
	groups = append(groups, root)
	for c := range groups {
		groups[c].latest = groups[c].ready + int64(m.delay(groups[c].lane, linger))
		for _, i := range groups[c].spans {
			sp[i].group = c
		}
	}
	return groups
}
