package otlpguard_test

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/collector/pdata/testdata"

	"github.com/tailsift/tailsift/internal/otlpguard"
)

// BenchmarkCheck measures the walk over pdata's generated requests of each
// signal, next to pdata's own decoding of the same bytes (the work the
// guard adds to and the work it precedes), and reports ns/byte.
//
//	go test -run='^$' -bench=BenchmarkCheck -benchmem -count=6 ./internal/otlpguard/ | tee new.txt
//	benchstat old.txt new.txt
func BenchmarkCheck(b *testing.B) {
	traces, err := ptraceotlp.NewExportRequestFromTraces(testdata.GenerateTraces(1000)).MarshalProto()
	if err != nil {
		b.Fatal(err)
	}
	metrics, err := pmetricotlp.NewExportRequestFromMetrics(testdata.GenerateMetrics(1000)).MarshalProto()
	if err != nil {
		b.Fatal(err)
	}
	logs, err := plogotlp.NewExportRequestFromLogs(testdata.GenerateLogs(1000)).MarshalProto()
	if err != nil {
		b.Fatal(err)
	}
	cases := []struct {
		name   string
		sig    otlpguard.Signal
		body   []byte
		decode func([]byte) error
	}{
		{"traces", otlpguard.Traces, traces, func(p []byte) error { return ptraceotlp.NewExportRequest().UnmarshalProto(p) }},
		{"metrics", otlpguard.Metrics, metrics, func(p []byte) error { return pmetricotlp.NewExportRequest().UnmarshalProto(p) }},
		{"logs", otlpguard.Logs, logs, func(p []byte) error { return plogotlp.NewExportRequest().UnmarshalProto(p) }},
	}
	for _, tc := range cases {
		b.Run("signal="+tc.name+"/op=check", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.body)))
			for b.Loop() {
				if err := otlpguard.Check(tc.sig, tc.body); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(tc.body)), "ns/byte")
		})
		b.Run("signal="+tc.name+"/op=pdata_decode", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.body)))
			for b.Loop() {
				if err := tc.decode(tc.body); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(tc.body)), "ns/byte")
		})
	}
}
