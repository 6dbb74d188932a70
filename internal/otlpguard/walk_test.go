package otlpguard_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/pprofile"
	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/collector/pdata/testdata"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tailsift/tailsift/internal/otlpguard"
	"github.com/tailsift/tailsift/internal/otlpguard/otlpguardtest"
)

var signalPaths = []struct {
	sig   otlpguard.Signal
	paths []otlpguardtest.Path
}{
	{otlpguard.Traces, otlpguardtest.TracesPaths},
	{otlpguard.Metrics, otlpguardtest.MetricsPaths},
	{otlpguard.Logs, otlpguardtest.LogsPaths},
	{otlpguard.Profiles, otlpguardtest.ProfilesPaths},
}

// TestCheckLimit puts an AnyValue nested MaxDepth and MaxDepth+1 levels deep
// at every place each signal's schema allows one: the first passes, the
// second is refused.
func TestCheckLimit(t *testing.T) {
	for _, sp := range signalPaths {
		for _, p := range sp.paths {
			t.Run(sp.sig.String()+"/"+p.Name, func(t *testing.T) {
				atLimit := otlpguardtest.Request(p, otlpguardtest.NestedAnyValue(otlpguard.MaxDepth))
				require.NoError(t, otlpguard.Check(sp.sig, atLimit))
				if depth, ok := pdataDepth(t, sp.sig, atLimit); ok {
					assert.Equal(t, otlpguard.MaxDepth, depth, "pdata's depth of the value Check accepted")
				}

				over := otlpguardtest.Request(p, otlpguardtest.NestedAnyValue(otlpguard.MaxDepth+1))
				err := otlpguard.Check(sp.sig, over)
				require.ErrorIs(t, err, otlpguard.ErrTooDeep)
				assert.Contains(t, err.Error(), fmt.Sprintf("more than %d levels deep", otlpguard.MaxDepth))

			})
		}
	}
}

// TestCheckKeyValueWithoutValue nests a kvlist_value whose one key-value
// has a key and no value field: pdata gives that key an empty value one
// level deeper than the kvlist (a fuzzed input once slipped through this
// way, 129 levels deep to pdata and 128 to Check). At MaxDepth-1 the empty
// value is at the limit and passes; at MaxDepth it is past it.
func TestCheckKeyValueWithoutValue(t *testing.T) {
	keyOnly := func(depth int) []byte { // the kvlist is level depth
		var kv, body []byte
		kv = protowire.AppendTag(kv, 1, protowire.BytesType) // KeyValue.key, no value
		kv = protowire.AppendString(kv, "k")
		body = protowire.AppendTag(body, 1, protowire.BytesType) // KeyValueList.values
		body = protowire.AppendBytes(body, kv)
		list := protowire.AppendTag(nil, 6, protowire.BytesType) // AnyValue.kvlist_value
		body = protowire.AppendBytes(list, body)
		for range depth - 1 { // AnyValue{array_value{values: [body]}}
			arr := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), body)
			body = protowire.AppendBytes(protowire.AppendTag(nil, 5, protowire.BytesType), arr)
		}
		return body
	}
	for _, sp := range signalPaths {
		for _, p := range sp.paths {
			t.Run(sp.sig.String()+"/"+p.Name, func(t *testing.T) {
				atLimit := otlpguardtest.Request(p, keyOnly(otlpguard.MaxDepth-1))
				require.NoError(t, otlpguard.Check(sp.sig, atLimit))
				if depth, ok := pdataDepth(t, sp.sig, atLimit); ok {
					assert.Equal(t, otlpguard.MaxDepth, depth, "pdata's depth of the value Check accepted")
				}
				over := otlpguardtest.Request(p, keyOnly(otlpguard.MaxDepth))
				require.ErrorIs(t, otlpguard.Check(sp.sig, over), otlpguard.ErrTooDeep)
				if depth, ok := pdataDepth(t, sp.sig, over); ok {
					assert.Equal(t, otlpguard.MaxDepth+1, depth, "pdata's depth of the value Check refused")
				}
			})
		}
	}
}

// TestCheckAgreesWithPdata builds requests through the pdata API (its own
// encoder, not the test one) with a value nested at and past the limit,
// and checks that pdata decodes what Check accepts to the depth it claims.
func TestCheckAgreesWithPdata(t *testing.T) {
	type build func(depth int) []byte
	cases := []struct {
		name  string
		sig   otlpguard.Signal
		build build
	}{
		{"traces/span_event", otlpguard.Traces, func(depth int) []byte {
			td := ptrace.NewTraces()
			ev := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty().Events().AppendEmpty()
			otlpguardtest.FillNested(ev.Attributes().PutEmpty("a"), depth)
			return mustMarshal(t, ptraceotlp.NewExportRequestFromTraces(td).MarshalProto)
		}},
		{"metrics/histogram_exemplar", otlpguard.Metrics, func(depth int) []byte {
			md := pmetric.NewMetrics()
			m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
			ex := m.SetEmptyHistogram().DataPoints().AppendEmpty().Exemplars().AppendEmpty()
			otlpguardtest.FillNested(ex.FilteredAttributes().PutEmpty("a"), depth)
			return mustMarshal(t, pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto)
		}},
		{"logs/body", otlpguard.Logs, func(depth int) []byte {
			ld := plog.NewLogs()
			lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
			otlpguardtest.FillNested(lr.Body(), depth)
			return mustMarshal(t, plogotlp.NewExportRequestFromLogs(ld).MarshalProto)
		}},
		{"profiles/dictionary", otlpguard.Profiles, func(depth int) []byte {
			pd := pprofile.NewProfiles()
			kv := pd.Dictionary().AttributeTable().AppendEmpty()
			otlpguardtest.FillNested(kv.Value(), depth)
			return mustMarshal(t, pprofileotlp.NewExportRequestFromProfiles(pd).MarshalProto)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			atLimit := tc.build(otlpguard.MaxDepth)
			require.NoError(t, otlpguard.Check(tc.sig, atLimit))
			if depth, ok := pdataDepth(t, tc.sig, atLimit); ok {
				assert.Equal(t, otlpguard.MaxDepth, depth)
			}
			require.ErrorIs(t, otlpguard.Check(tc.sig, tc.build(otlpguard.MaxDepth+1)), otlpguard.ErrTooDeep)
		})
	}
}

// pdataDepth decodes b with pdata and returns the depth of its deepest
// AnyValue; ok is false for profiles, whose test requests pdata refuses (a
// dictionary key is an index there, a string in the test encoding).
func pdataDepth(t *testing.T, sig otlpguard.Signal, b []byte) (depth int, ok bool) {
	t.Helper()
	switch sig {
	case otlpguard.Traces:
		req := ptraceotlp.NewExportRequest()
		require.NoError(t, req.UnmarshalProto(b))
		return otlpguardtest.TracesDepth(req.Traces()), true
	case otlpguard.Metrics:
		req := pmetricotlp.NewExportRequest()
		require.NoError(t, req.UnmarshalProto(b))
		return otlpguardtest.MetricsDepth(req.Metrics()), true
	case otlpguard.Logs:
		req := plogotlp.NewExportRequest()
		require.NoError(t, req.UnmarshalProto(b))
		return otlpguardtest.LogsDepth(req.Logs()), true
	}
	return 0, false
}

func mustMarshal(t *testing.T, marshal func() ([]byte, error)) []byte {
	t.Helper()
	b, err := marshal()
	require.NoError(t, err)
	return b
}

// TestCheckNormalPayloads accepts pdata's generated test data of every
// signal, which sets attributes, events, links, all metric types and
// exemplars, and log bodies.
func TestCheckNormalPayloads(t *testing.T) {
	cases := []struct {
		sig     otlpguard.Signal
		marshal func() ([]byte, error)
	}{
		{otlpguard.Traces, ptraceotlp.NewExportRequestFromTraces(testdata.GenerateTraces(50)).MarshalProto},
		{otlpguard.Metrics, pmetricotlp.NewExportRequestFromMetrics(testdata.GenerateMetricsAllTypes()).MarshalProto},
		{otlpguard.Metrics, pmetricotlp.NewExportRequestFromMetrics(testdata.GenerateMetrics(50)).MarshalProto},
		{otlpguard.Logs, plogotlp.NewExportRequestFromLogs(testdata.GenerateLogs(50)).MarshalProto},
		{otlpguard.Profiles, pprofileotlp.NewExportRequestFromProfiles(testdata.GenerateProfiles(10)).MarshalProto},
		{otlpguard.Traces, func() ([]byte, error) { return nil, nil }}, // an empty request
	}
	for i, tc := range cases {
		t.Run(fmt.Sprintf("%v/%d", tc.sig, i), func(t *testing.T) {
			b := mustMarshal(t, tc.marshal)
			assert.NoError(t, otlpguard.Check(tc.sig, b))
		})
	}
}

// TestCheckMalformed refuses bytes that are not protobuf where the walk must
// read them, as pdata would.
func TestCheckMalformed(t *testing.T) {
	valid := otlpguardtest.Request(otlpguardtest.TracesPaths[2], otlpguardtest.NestedAnyValue(3))
	negativeField := protowire.AppendVarint(nil, uint64(1)<<31<<3|uint64(protowire.BytesType)) // int32 field number < 0
	cases := map[string][]byte{
		"truncated":       valid[:len(valid)-1],
		"length past end": {0x0a, 0x05, 0x01},
		"field zero":      {0x02, 0x00},
		"bad wire type":   {0x0f},
		"stray end group": {0x0c},
		"unending varint": {0x08, 0xff, 0xff},
		"negative field":  append(negativeField, 0x00),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			assert.ErrorIs(t, otlpguard.Check(otlpguard.Traces, b), otlpguard.ErrMalformed)
		})
	}
}

// TestCheckTruncatedFieldNumber: pdata reads a field number as an int32, so
// a tag whose number has bits past 32 reaches the field those low bits
// name; the walk must follow it there too.
func TestCheckTruncatedFieldNumber(t *testing.T) {
	deep := otlpguardtest.NestedAnyValue(otlpguard.MaxDepth + 1)
	// A log body (LogRecord field 5) under a field number of 2^32+5.
	var lr []byte
	lr = protowire.AppendVarint(lr, (uint64(1)<<32|5)<<3|uint64(protowire.BytesType))
	lr = protowire.AppendBytes(lr, deep)
	req := otlpguardtest.Request(otlpguardtest.Path{Fields: []protowire.Number{1, 2, 2}}, lr)
	require.ErrorIs(t, otlpguard.Check(otlpguard.Logs, req), otlpguard.ErrTooDeep)
}

// TestCheckSkipsGroups skips an unknown group field as pdata does and still
// sees the deep value after it.
func TestCheckSkipsGroups(t *testing.T) {
	var group []byte
	group = protowire.AppendTag(group, 99, protowire.StartGroupType)
	group = protowire.AppendTag(group, 1, protowire.VarintType)
	group = protowire.AppendVarint(group, 7)
	group = protowire.AppendTag(group, 2, protowire.StartGroupType)
	group = protowire.AppendTag(group, 2, protowire.EndGroupType)
	group = protowire.AppendTag(group, 99, protowire.EndGroupType)

	body := func(depth int) []byte {
		var lr []byte
		lr = append(lr, group...)
		lr = protowire.AppendTag(lr, 5, protowire.BytesType)
		return protowire.AppendBytes(lr, otlpguardtest.NestedAnyValue(depth))
	}
	path := otlpguardtest.Path{Fields: []protowire.Number{1, 2, 2}}
	require.NoError(t, otlpguard.Check(otlpguard.Logs, otlpguardtest.Request(path, body(otlpguard.MaxDepth))))
	require.ErrorIs(t, otlpguard.Check(otlpguard.Logs, otlpguardtest.Request(path, body(otlpguard.MaxDepth+1))), otlpguard.ErrTooDeep)

	unterminated := otlpguardtest.Request(path, group[:len(group)-2])
	assert.ErrorIs(t, otlpguard.Check(otlpguard.Logs, unterminated), otlpguard.ErrMalformed)
}

// TestCheckJSON bounds the nesting of OTLP/JSON requests: a log body nested
// MaxDepth levels deep passes, a much deeper one is refused, and brackets
// inside strings do not count.
func TestCheckJSON(t *testing.T) {
	jsonBody := func(depth int) []byte {
		ld := plog.NewLogs()
		lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
		otlpguardtest.FillNested(lr.Body(), depth)
		lr.Attributes().PutStr("brackets", "[[[[{{{{")
		return mustMarshal(t, plogotlp.NewExportRequestFromLogs(ld).MarshalJSON)
	}
	require.NoError(t, otlpguard.CheckJSON(otlpguard.Logs, jsonBody(otlpguard.MaxDepth)))
	require.NoError(t, otlpguard.CheckJSON(otlpguard.Logs, []byte(`{"s":"\"[[[[[\\"}`)))

	err := otlpguard.CheckJSON(otlpguard.Logs, jsonBody(otlpguard.MaxJSONNesting))
	require.ErrorIs(t, err, otlpguard.ErrTooDeep)

	stray := []byte("}]}]}]")
	for range otlpguard.MaxJSONNesting + 1 {
		stray = append(stray, '[')
	}
	assert.ErrorIs(t, otlpguard.CheckJSON(otlpguard.Logs, stray), otlpguard.ErrTooDeep, "stray closing brackets buy no room")
}

// TestCheckJSONRefusesCommaNesting: pdata's JSON decoder (jsoniter) takes
// a comma where an object or array should open, so a body can nest
// AnyValues without a single opening bracket. pdata decoded such a body,
// 10 000 levels deep, without an error, and bracket counting let it
// through. CheckJSON validates the JSON too now.
func TestCheckJSONRefusesCommaNesting(t *testing.T) {
	const n = 10000
	var b []byte
	b = append(b, `{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","name":"s","attributes":[{"key":"k","value":{"arrayValue":{"values":[`...)
	for range n {
		b = append(b, `,"arrayValue":,"values":,`...)
	}
	b = append(b, '}')
	for range n {
		b = append(b, `]}}`...)
	}
	b = append(b, `]}}}]}]}]}]}`...)
	require.ErrorIs(t, otlpguard.CheckJSON(otlpguard.Traces, b), otlpguard.ErrMalformedJSON)

	req := ptraceotlp.NewExportRequest()
	require.NoError(t, req.UnmarshalJSON(b), "pdata decodes it: the guard is what refuses it")
	for _, bad := range []string{``, `{`, `{"a":,}`, `[1,]`, `{"a":1}x`} {
		assert.ErrorIs(t, otlpguard.CheckJSON(otlpguard.Traces, []byte(bad)), otlpguard.ErrMalformedJSON, "%q", bad)
	}
}

// TestCheckJSONCoversMaxDepthEverywhere: the JSON bound admits a value at
// MaxDepth at the deepest place the metrics schema has (an exemplar).
func TestCheckJSONCoversMaxDepthEverywhere(t *testing.T) {
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	ex := m.SetEmptyExponentialHistogram().DataPoints().AppendEmpty().Exemplars().AppendEmpty()
	v := ex.FilteredAttributes().PutEmpty("a")
	// Only maps: the kvlist form takes the most brackets per level.
	for range otlpguard.MaxDepth - 1 {
		v = v.SetEmptyMap().PutEmpty("k")
	}
	v.SetStr("leaf")
	b := mustMarshal(t, pmetricotlp.NewExportRequestFromMetrics(md).MarshalJSON)
	assert.NoError(t, otlpguard.CheckJSON(otlpguard.Metrics, b))
}

func TestSignalString(t *testing.T) {
	assert.Equal(t, "traces", otlpguard.Traces.String())
	assert.Equal(t, "profiles", otlpguard.Profiles.String())
	assert.Equal(t, "Signal(9)", otlpguard.Signal(9).String())
	assert.Error(t, otlpguard.Check(otlpguard.Signal(9), nil))
}
