package otlpguard

// kind is an OTLP message type on a path from an export request to an
// AnyValue. Messages that cannot hold an AnyValue (status, buckets, IDs,
// entity refs, profile samples...) are kNone: the walk skips them whole.
type kind uint8

const (
	kNone kind = iota
	kAnyValue
	kArrayValue
	kKeyValueList
	kKeyValue // KeyValue, and the profiles dictionary's KeyValueAndUnit: value is field 2 in both
	kResource
	kScope

	kTracesRequest
	kResourceSpans
	kScopeSpans
	kSpan
	kSpanEvent
	kSpanLink

	kMetricsRequest
	kResourceMetrics
	kScopeMetrics
	kMetric
	kNumberData    // Gauge and Sum
	kHistogramData // Histogram
	kExpHistData   // ExponentialHistogram
	kSummaryData   // Summary
	kNumberPoint
	kHistogramPoint
	kExpHistPoint
	kSummaryPoint
	kExemplar

	kLogsRequest
	kResourceLogs
	kScopeLogs
	kLogRecord

	kProfilesRequest
	kResourceProfiles
	kScopeProfiles
	kDictionary

	numKinds
)

// roots maps a signal to the kind of its export request.
var roots = [...]kind{
	Traces:   kTracesRequest,
	Metrics:  kMetricsRequest,
	Logs:     kLogsRequest,
	Profiles: kProfilesRequest,
}

// maxSchemaField is one more than the highest field number below 1000 that
// leads towards an AnyValue.
const maxSchemaField = 14

// schema[k][f] is the kind of field f of a message of kind k, for the fields
// that lead to an AnyValue; the field numbers are opentelemetry-proto's, as
// pdata v1.67.0's decoder reads them.
var schema = [numKinds][maxSchemaField]kind{
	kAnyValue:     {5: kArrayValue, 6: kKeyValueList},
	kArrayValue:   {1: kAnyValue},
	kKeyValueList: {1: kKeyValue},
	kKeyValue:     {2: kAnyValue},
	kResource:     {1: kKeyValue},
	kScope:        {3: kKeyValue},

	kTracesRequest: {1: kResourceSpans},
	kResourceSpans: {1: kResource, 2: kScopeSpans},
	kScopeSpans:    {1: kScope, 2: kSpan},
	kSpan:          {9: kKeyValue, 11: kSpanEvent, 13: kSpanLink},
	kSpanEvent:     {3: kKeyValue},
	kSpanLink:      {4: kKeyValue},

	kMetricsRequest:  {1: kResourceMetrics},
	kResourceMetrics: {1: kResource, 2: kScopeMetrics},
	kScopeMetrics:    {1: kScope, 2: kMetric},
	kMetric:          {5: kNumberData, 7: kNumberData, 9: kHistogramData, 10: kExpHistData, 11: kSummaryData, 12: kKeyValue},
	kNumberData:      {1: kNumberPoint},
	kHistogramData:   {1: kHistogramPoint},
	kExpHistData:     {1: kExpHistPoint},
	kSummaryData:     {1: kSummaryPoint},
	kNumberPoint:     {5: kExemplar, 7: kKeyValue},
	kHistogramPoint:  {8: kExemplar, 9: kKeyValue},
	kExpHistPoint:    {1: kKeyValue, 11: kExemplar},
	kSummaryPoint:    {7: kKeyValue},
	kExemplar:        {7: kKeyValue},

	kLogsRequest:  {1: kResourceLogs},
	kResourceLogs: {1: kResource, 2: kScopeLogs},
	kScopeLogs:    {1: kScope, 2: kLogRecord},
	kLogRecord:    {5: kAnyValue, 6: kKeyValue},

	kProfilesRequest:  {1: kResourceProfiles, 2: kDictionary},
	kResourceProfiles: {1: kResource, 2: kScopeProfiles},
	kScopeProfiles:    {1: kScope},
	kDictionary:       {6: kKeyValue},
}

// deprecatedScope is field 1000 of Resource{Spans,Metrics,Logs}: the old
// instrumentation_library_* list (no longer in the protocol), which pdata
// still decodes as Scope{Spans,Metrics,Logs}.
const deprecatedScope = 1000

// childKind returns the kind of field f of a message of kind k, kNone when
// the field cannot lead to an AnyValue.
func childKind(k kind, f uint64) kind {
	if f < maxSchemaField {
		return schema[k][f]
	}
	if f == deprecatedScope {
		switch k {
		case kResourceSpans:
			return kScopeSpans
		case kResourceMetrics:
			return kScopeMetrics
		case kResourceLogs:
			return kScopeLogs
		}
	}
	return kNone
}
