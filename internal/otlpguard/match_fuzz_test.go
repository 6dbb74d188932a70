package otlpguard

import (
	"errors"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/collector/pdata/testdata"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tailsift/tailsift/internal/otlpguard/otlpguardtest"
	"github.com/tailsift/tailsift/internal/workload"
)

// FuzzCheckMatchesReference checks that Check gives the verdict of
// checkReference, the walk before its fast paths, on any input and signal:
// both accept, or both refuse with the same error (same sentinel, same
// message and byte position).
//
//	go test -run='^$' -fuzz='^FuzzCheckMatchesReference$' -fuzztime=3m ./internal/otlpguard/
func FuzzCheckMatchesReference(f *testing.F) {
	paths := [...][]otlpguardtest.Path{
		Traces:   otlpguardtest.TracesPaths,
		Metrics:  otlpguardtest.MetricsPaths,
		Logs:     otlpguardtest.LogsPaths,
		Profiles: otlpguardtest.ProfilesPaths,
	}
	for sig, ps := range paths {
		for _, p := range ps {
			// The leaf of an odd depth sits in an array, of an even one in a kvlist.
			for _, depth := range []int{0, 1, 2, MaxDepth - 1, MaxDepth, MaxDepth + 1, MaxDepth + 2} {
				f.Add(uint8(sig), otlpguardtest.Request(p, otlpguardtest.NestedAnyValue(depth)))
				f.Add(uint8(sig), otlpguardtest.Request(p, inArray(otlpguardtest.NestedAnyValue(depth))))
			}
			f.Add(uint8(sig), otlpguardtest.Request(p, scalarValues()))
			f.Add(uint8(sig), otlpguardtest.Request(p, longString(130)))
			// A string whose 2-byte length (133) runs one byte past the value,
			// while its first byte (0x85) is the number of bytes after it.
			f.Add(uint8(sig), otlpguardtest.Request(p, append([]byte{0x0a, 0x85, 0x01}, make([]byte, 132)...)))
		}
	}
	for sig, marshal := range map[Signal]func() ([]byte, error){
		Traces:   ptraceotlp.NewExportRequestFromTraces(testdata.GenerateTraces(2)).MarshalProto,
		Metrics:  pmetricotlp.NewExportRequestFromMetrics(testdata.GenerateMetricsAllTypes()).MarshalProto,
		Logs:     plogotlp.NewExportRequestFromLogs(testdata.GenerateLogs(2)).MarshalProto,
		Profiles: pprofileotlp.NewExportRequestFromProfiles(testdata.GenerateProfiles(2)).MarshalProto,
	} {
		b, err := marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(sig), b)
	}
	f.Add(uint8(Traces), sdkRequests(f, 2)[0])
	// A group, a truncated field number and fields of every wire type in a log record.
	var lr []byte
	lr = protowire.AppendTag(lr, 99, protowire.StartGroupType)
	lr = protowire.AppendTag(lr, 1, protowire.Fixed64Type)
	lr = protowire.AppendFixed64(lr, 1)
	lr = protowire.AppendTag(lr, 99, protowire.EndGroupType)
	lr = protowire.AppendTag(lr, 3, protowire.Fixed32Type)
	lr = protowire.AppendFixed32(lr, 1)
	lr = protowire.AppendVarint(lr, (uint64(1)<<32|5)<<3|uint64(protowire.BytesType))
	lr = protowire.AppendBytes(lr, otlpguardtest.NestedAnyValue(3))
	f.Add(uint8(Logs), otlpguardtest.Request(otlpguardtest.Path{Fields: []protowire.Number{1, 2, 2}}, lr))

	f.Fuzz(func(t *testing.T, sigByte uint8, b []byte) {
		sig := Signal(sigByte % 5) // 4 is no signal
		got, want := Check(sig, b), checkReference(sig, b)
		if (got == nil) != (want == nil) {
			t.Fatalf("Check = %v, checkReference = %v", got, want)
		}
		if got == nil {
			return
		}
		for _, sentinel := range []error{ErrTooDeep, ErrMalformed} {
			if errors.Is(got, sentinel) != errors.Is(want, sentinel) {
				t.Fatalf("Check = %v, checkReference = %v", got, want)
			}
		}
		if got.Error() != want.Error() {
			t.Fatalf("Check = %q, checkReference = %q", got, want)
		}
	})
}

// scalarValues returns an AnyValue body of each scalar type in turn (a
// later one overrides the earlier in pdata), then an empty kvlist.
func scalarValues() []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, "s")
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	b = protowire.AppendVarint(b, 1)
	b = protowire.AppendTag(b, 3, protowire.VarintType)
	b = protowire.AppendVarint(b, 1<<40)
	b = protowire.AppendTag(b, 4, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, 1)
	b = protowire.AppendTag(b, 7, protowire.BytesType)
	b = protowire.AppendBytes(b, []byte{1, 2})
	b = protowire.AppendTag(b, 6, protowire.BytesType)
	return protowire.AppendBytes(b, nil)
}

// inArray returns an AnyValue body holding v in an array_value: one level
// more, so that the leaves NestedAnyValue puts in arrays sit in key-values.
func inArray(v []byte) []byte {
	arr := protowire.AppendTag(nil, 1, protowire.BytesType)
	arr = protowire.AppendBytes(arr, v)
	b := protowire.AppendTag(nil, 5, protowire.BytesType)
	return protowire.AppendBytes(b, arr)
}

// longString returns an AnyValue body holding a string_value of n bytes,
// whose length takes two bytes past 127.
func longString(n int) []byte {
	b := protowire.AppendTag(nil, 1, protowire.BytesType)
	return protowire.AppendBytes(b, make([]byte, n))
}

// sdkRequests returns at least n traces export requests of
// workload.ShapeSDK: one service's SDK batch each, 4 attributes per span.
func sdkRequests(tb testing.TB, n int) [][]byte {
	tb.Helper()
	cfg := workload.Config{Seed: 20240611, Rate: 20000, Duration: time.Duration(n) * 50 * time.Millisecond, MaxSpans: 512, Shape: workload.ShapeSDK}
	rec, err := workload.Record(cfg, time.Unix(1_700_000_000, 0))
	if err != nil {
		tb.Fatal(err)
	}
	if len(rec.Requests) < n {
		tb.Fatalf("sdk workload: %d requests, want %d", len(rec.Requests), n)
	}
	return rec.Requests
}

// sdkSpans counts the spans of traces export requests.
func sdkSpans(tb testing.TB, reqs [][]byte) int {
	tb.Helper()
	n := 0
	for _, r := range reqs {
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalProto(r); err != nil {
			tb.Fatal(err)
		}
		n += req.Traces().SpanCount()
	}
	return n
}
