// Package sinkreport holds the JSON report tailsift-sink writes (--out,
// schema tailsift-sink/v1): the sink fills it, bench-e2e reads it.
// cmd/tailsift-sink/README.md documents every field.
package sinkreport

import "github.com/tailsift/tailsift/internal/workload"

// SchemaVersion names the JSON report layout described in README.md.
const SchemaVersion = "tailsift-sink/v1"

// Report is the JSON tailsift-sink writes to --out.
type Report struct {
	Schema            string          `json:"schema"`
	GeneratedUnixNano int64           `json:"generated_unix_nano"`
	StopReason        string          `json:"stop_reason"`
	Scored            bool            `json:"scored"`
	Config            ReportConfig    `json:"config"`
	Received          ReceivedSummary `json:"received"`
	Manifest          *ManifestInfo   `json:"manifest"`
	Classes           []ClassRow      `json:"classes"`
	Total             ClassRow        `json:"total"`
	FastCheck         *FastCheck      `json:"fast_check"`
	AnomalyRecall     *float64        `json:"anomaly_recall"`
	Foreign           Foreign         `json:"foreign"`
	MissingTh         MissingTh       `json:"missing_th"`
	Notes             []string        `json:"notes"`
}

// ReportConfig echoes the options that the figures depend on.
type ReportConfig struct {
	GRPC            string  `json:"grpc"`
	HTTP            string  `json:"http"`
	Manifest        string  `json:"manifest"`
	FastProbability float64 `json:"fast_probability"`
	CompletionMs    float64 `json:"completion_ms"`
}

// ReceivedSummary counts everything that arrived, labelled or not.
type ReceivedSummary struct {
	Requests             int64 `json:"requests"`
	SpanArrivals         int64 `json:"span_arrivals"`
	Spans                int64 `json:"spans"`
	DuplicateArrivals    int64 `json:"duplicate_arrivals"`
	Traces               int64 `json:"traces"`
	FirstArrivalUnixNano int64 `json:"first_arrival_unix_nano"`
	LastArrivalUnixNano  int64 `json:"last_arrival_unix_nano"`
}

// ManifestInfo describes the manifest that was scored against.
type ManifestInfo struct {
	Path              string                  `json:"path"`
	Header            workload.ManifestHeader `json:"header"`
	Traces            int64                   `json:"traces"`
	LateTraces        int64                   `json:"late_traces"`
	InvalidTraceIDs   int64                   `json:"invalid_trace_ids"`
	DuplicateTraceIDs int64                   `json:"duplicate_trace_ids"`
	ReadError         string                  `json:"read_error"`
}

// ClassRow holds the figures of one class (or of all, in Report.Total).
type ClassRow struct {
	Class             string         `json:"class"`
	TracesSent        int64          `json:"traces_sent"`
	TracesLate        int64          `json:"traces_late"`
	TracesKept        int64          `json:"traces_kept"`
	TracesComplete    int64          `json:"traces_complete"`
	TracesPartial     int64          `json:"traces_partial"`
	TracesExcess      int64          `json:"traces_excess"`
	TracesDuplicated  int64          `json:"traces_duplicated"`
	KeptFraction      *float64       `json:"kept_fraction"`
	SpansSent         int64          `json:"spans_sent"`
	SpansReceived     int64          `json:"spans_received"`
	DuplicateArrivals int64          `json:"duplicate_arrivals"`
	SpansMissingTh    int64          `json:"spans_missing_th"`
	TracesMissingTh   int64          `json:"traces_missing_th"`
	TracesThConflict  int64          `json:"traces_th_conflict"`
	ThProbabilities   map[string]int `json:"th_probabilities"`
	Adjusted          AdjustedCounts `json:"adjusted"`
	Latency           *LatencyStats  `json:"latency_ms"`
}

// AdjustedCounts compares the Horvitz-Thompson estimates from th with the
// true counts.
type AdjustedCounts struct {
	TracesEstimate float64  `json:"traces_estimate"`
	TracesTrue     int64    `json:"traces_true"`
	TracesRelError *float64 `json:"traces_rel_error"`
	SpansEstimate  float64  `json:"spans_estimate"`
	SpansTrue      int64    `json:"spans_true"`
	SpansRelError  *float64 `json:"spans_rel_error"`
}

// LatencyStats is the added decision latency of kept, non-late traces.
type LatencyStats struct {
	Count        int64    `json:"count"`
	ExcludedLate int64    `json:"excluded_late"`
	Min          *float64 `json:"min"`
	Mean         *float64 `json:"mean"`
	P50          *float64 `json:"p50"`
	P90          *float64 `json:"p90"`
	P99          *float64 `json:"p99"`
	Max          *float64 `json:"max"`
}

// FastCheck tests the fast class's kept count against Binomial(n, p).
type FastCheck struct {
	Probability  float64  `json:"probability"`
	Sent         int64    `json:"sent"`
	Kept         int64    `json:"kept"`
	KeptFraction *float64 `json:"kept_fraction"`
	Expected     float64  `json:"expected"`
	Sigma        float64  `json:"sigma"`
	Z            *float64 `json:"z"`
	Within3Sigma bool     `json:"within_3sigma"`
}

// Foreign counts what arrived that the manifest does not explain.
type Foreign struct {
	UnlabelledSpans     int64 `json:"unlabelled_spans"`
	UnlabelledTraces    int64 `json:"unlabelled_traces"`
	TracesNotInManifest int64 `json:"traces_not_in_manifest"`
	SpansNotInManifest  int64 `json:"spans_not_in_manifest"`
	LabelMismatchTraces int64 `json:"label_mismatch_traces"`
}

// MissingTh counts received spans and traces without an ot th, over
// everything received.
type MissingTh struct {
	Spans  int64 `json:"spans"`
	Traces int64 `json:"traces"`
}

// Class returns the row of class name, or nil when r is nil or has none.
func (r *Report) Class(name string) *ClassRow {
	if r == nil {
		return nil
	}
	for i := range r.Classes {
		if r.Classes[i].Class == name {
			return &r.Classes[i]
		}
	}
	return nil
}
