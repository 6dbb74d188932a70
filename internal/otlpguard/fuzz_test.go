package otlpguard_test

import (
	"errors"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/collector/pdata/testdata"

	"github.com/tailsift/tailsift/internal/otlpguard"
	"github.com/tailsift/tailsift/internal/otlpguard/otlpguardtest"
)

// FuzzCheck compares Check with pdata's decoder on arbitrary bytes: when
// Check accepts a request that pdata decodes, no AnyValue in it is deeper
// than MaxDepth; when Check refuses one as too deep and pdata decodes it,
// some AnyValue is. Neither may panic.
//
//	go test -run='^$' -fuzz='^FuzzCheck$' -fuzztime=30s ./internal/otlpguard/
func FuzzCheck(f *testing.F) {
	for _, sp := range signalPaths[:3] {
		for _, p := range sp.paths {
			f.Add(uint8(sp.sig), otlpguardtest.Request(p, otlpguardtest.NestedAnyValue(otlpguard.MaxDepth)))
			f.Add(uint8(sp.sig), otlpguardtest.Request(p, otlpguardtest.NestedAnyValue(otlpguard.MaxDepth+1)))
		}
	}
	for sig, marshal := range map[otlpguard.Signal]func() ([]byte, error){
		otlpguard.Traces:  ptraceotlp.NewExportRequestFromTraces(testdata.GenerateTraces(2)).MarshalProto,
		otlpguard.Metrics: pmetricotlp.NewExportRequestFromMetrics(testdata.GenerateMetricsAllTypes()).MarshalProto,
		otlpguard.Logs:    plogotlp.NewExportRequestFromLogs(testdata.GenerateLogs(2)).MarshalProto,
	} {
		b, err := marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(sig), b)
	}
	f.Fuzz(func(t *testing.T, sigByte uint8, b []byte) {
		sig := otlpguard.Signal(sigByte % 3)
		err := otlpguard.Check(sig, b)
		_ = otlpguard.CheckJSON(sig, b)
		if err != nil && !errors.Is(err, otlpguard.ErrTooDeep) && !errors.Is(err, otlpguard.ErrMalformed) {
			t.Fatalf("Check: unexpected error %v", err)
		}
		if errors.Is(err, otlpguard.ErrMalformed) {
			return
		}
		depth, ok := decodedDepth(sig, b)
		if !ok {
			return
		}
		if err == nil && depth > otlpguard.MaxDepth {
			t.Fatalf("Check accepted a request pdata decodes %d levels deep", depth)
		}
		if err != nil && depth <= otlpguard.MaxDepth {
			t.Fatalf("Check refused as too deep (%v) a request pdata decodes %d levels deep", err, depth)
		}
	})
}

// decodedDepth decodes b with pdata and returns its deepest AnyValue's
// depth, or ok false when pdata refuses b.
func decodedDepth(sig otlpguard.Signal, b []byte) (depth int, ok bool) {
	switch sig {
	case otlpguard.Traces:
		req := ptraceotlp.NewExportRequest()
		if req.UnmarshalProto(b) != nil {
			return 0, false
		}
		return otlpguardtest.TracesDepth(req.Traces()), true
	case otlpguard.Metrics:
		req := pmetricotlp.NewExportRequest()
		if req.UnmarshalProto(b) != nil {
			return 0, false
		}
		return otlpguardtest.MetricsDepth(req.Metrics()), true
	default:
		req := plogotlp.NewExportRequest()
		if req.UnmarshalProto(b) != nil {
			return 0, false
		}
		return otlpguardtest.LogsDepth(req.Logs()), true
	}
}
