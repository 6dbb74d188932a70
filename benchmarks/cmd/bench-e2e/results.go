package main

import (
	"fmt"

	"github.com/tailsift/tailsift/internal/sinkreport"
)

// loadgenSummary is the part of tailsift-loadgen's --summary-json we use.
type loadgenSummary struct {
	Traces            int64                         `json:"traces"`
	OfferedSpans      int64                         `json:"offered_spans"`
	AcceptedSpans     int64                         `json:"accepted_spans"`
	RefusedSpans      int64                         `json:"refused_spans"`
	Refusals          map[string]map[string]float64 `json:"refusals"`
	LateSpans         int64                         `json:"late_spans"`
	OfferedSpansPerS  float64                       `json:"offered_spans_per_s"`
	AcceptedSpansPerS float64                       `json:"accepted_spans_per_s"`
	BytesPerSpan      float64                       `json:"bytes_per_span"`
	SpansPerRequest   float64                       `json:"spans_per_request"`
	CPUMicrosSpan     float64                       `json:"cpu_us_per_span"`
	MaxLagMs          float64                       `json:"max_dispatch_lag_ms"`
	ElapsedS          float64                       `json:"elapsed_s"`
}

// runResult is everything measured in one run (written to the raw JSON).
type runResult struct {
	Kind    kind    `json:"kind"`
	Label   string  `json:"label"`
	Variant string  `json:"variant,omitempty"` // "b": run from -b-bin (report.SideB)
	Bin     string  `json:"collector_bin,omitempty"`
	Rate    float64 `json:"rate"`
	Start   string  `json:"start"`
	Pinned  bool    `json:"pinned"`
	// Cpus_allowed_list of the collector as read from /proc.
	CollectorCPUs string `json:"collector_cpus"`
	LoadAvg       string `json:"loadavg_before"`

	WarmupS float64 `json:"warmup_s"`
	WindowS float64 `json:"window_s"` // measured length of the counted window
	// WindowStart is when the counted window began (RFC 3339, ns). The runs
	// of a concurrent round begin theirs together (TestSmokeE2E: within
	// 2 s; 77 ms on this machine).
	WindowStart string `json:"window_start,omitempty"`

	// Counted window.
	WindowAccepted     float64 `json:"window_accepted_spans"`
	WindowAcceptedRate float64 `json:"window_accepted_spans_per_s"`
	CPUSeconds         float64 `json:"collector_cpu_s"` // CPU time delta (CPUAccounting)
	CPUMicrosPerSpan   float64 `json:"collector_cpu_us_per_span"`
	// CPUAccounting is how CPUSeconds was read: "clock" (the process CPU
	// clock, ns) or "stat" (/proc/PID/stat, clock ticks); "" in reports
	// written before it was recorded, which used "stat".
	CPUAccounting string `json:"cpu_accounting,omitempty"`
	// CPUMicrosPerSpanTicks is CPUMicrosPerSpan from /proc/PID/stat's clock
	// ticks over the same window, as the runner measured before "clock".
	CPUMicrosPerSpanTicks float64 `json:"collector_cpu_us_per_span_ticks,omitempty"`
	// MinorFaultsPerKSpan: the collector's minor page faults in the window
	// per 1000 accepted spans (fresh heap or arena pages touched).
	MinorFaultsPerKSpan float64       `json:"minor_faults_per_kspan,omitempty"`
	Halves              *windowHalves `json:"window_halves,omitempty"`
	GC                  *gcStats      `json:"gc,omitempty"`       // the window's GC cycles (-gctrace)
	CPUUtil             float64       `json:"collector_cpu_util"` // cores
	OtherCPU0           float64       `json:"other_cpu0_util"`    // CPU 0 busy not due to the collector (cores)
	CPU1Busy            float64       `json:"cpu1_util"`          // CPU 1 busy: loadgen, sink and anything else

	IdleCPU     float64 `json:"idle_cpu"` // cores used before any span
	RSSIdleMB   float64 `json:"rss_idle_mb"`
	HeapIdleMB  float64 `json:"heap_idle_mb"`
	RSSMeanMB   float64 `json:"rss_mean_mb"`
	RSSPeakMB   float64 `json:"rss_peak_mb"`
	VmHWMMB     float64 `json:"vmhwm_mb"` // lifetime peak RSS, read before SIGTERM
	HeapMeanMB  float64 `json:"heap_mean_mb"`
	RSSSamples  int     `json:"rss_samples"`
	PromSamples int     `json:"prom_samples"`

	BufferedSpansMean  float64 `json:"buffered_spans_mean"`
	BufferedTracesMean float64 `json:"buffered_traces_mean"`
	BufferedBytesMean  float64 `json:"buffered_bytes_mean"` // tailsift's own accounting
	// Mean time a span is held: buffered spans / accepted rate (Little).
	MeanHoldS float64 `json:"mean_hold_s"`
	// (RSS mean - RSS idle) / buffered spans.
	BytesPerBufSpanRSS float64 `json:"bytes_per_buffered_span_rss"`
	// (heap mean - heap idle) / buffered spans.
	BytesPerBufSpanHeap float64 `json:"bytes_per_buffered_span_heap"`
	// tailsift only: buffered_bytes / buffered spans.
	BytesPerBufSpanAcct float64 `json:"bytes_per_buffered_span_accounted"`

	// Whole run, from the final scrape.
	AcceptedTotal    float64 `json:"collector_accepted_spans"`
	RefusedTotal     float64 `json:"collector_refused_spans"`
	EarlyMemory      float64 `json:"tailsift_early_memory"`
	EarlyMaxSpans    float64 `json:"tailsift_early_max_spans"`
	ProcRefused      float64 `json:"tailsift_spans_refused"`
	ExportFailures   float64 `json:"export_failed_spans"`
	DroppedTooEarly  float64 `json:"contrib_dropped_too_early"`
	DroppedTooLarge  float64 `json:"contrib_dropped_too_large"`
	TracesOnMemMax   float64 `json:"buffered_traces_max"`
	DecideWaitS      float64 `json:"decide_wait_s"` // loadgen exit -> nothing buffered
	UndecidedAtStop  float64 `json:"undecided_traces_at_stop"`
	ShutdownS        float64 `json:"shutdown_s"`
	CollectorExitErr string  `json:"collector_exit,omitempty"`

	Loadgen *loadgenSummary    `json:"loadgen"`
	Score   *sinkreport.Report `json:"sink"`

	// Derived from Score.
	P50AddedMs       *float64 `json:"p50_added_ms"`
	P99AddedMs       *float64 `json:"p99_added_ms"`
	ErrorCompletePct *float64 `json:"error_complete_pct"`
	SlowCompletePct  *float64 `json:"slow_complete_pct"`
	FastKeptFraction *float64 `json:"fast_kept_fraction"`
	FastZ            *float64 `json:"fast_z"`
	AdjTracesRelErr  *float64 `json:"adjusted_traces_rel_error"`
	AdjSpansRelErr   *float64 `json:"adjusted_spans_rel_error"`

	ProfileFile string   `json:"profile_file,omitempty"`
	Problems    []string `json:"problems,omitempty"`
	Dir         string   `json:"dir,omitempty"`
}

func (r *runResult) problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

func (r *runResult) derive() {
	s := r.Score
	if s.Total.Latency != nil {
		r.P50AddedMs, r.P99AddedMs = s.Total.Latency.P50, s.Total.Latency.P99
	}
	pct := func(c *sinkreport.ClassRow) *float64 {
		if c == nil || c.TracesSent == 0 {
			return nil
		}
		v := 100 * float64(c.TracesComplete) / float64(c.TracesSent)
		return &v
	}
	r.ErrorCompletePct = pct(s.Class("error"))
	r.SlowCompletePct = pct(s.Class("slow"))
	if s.FastCheck != nil {
		r.FastKeptFraction, r.FastZ = s.FastCheck.KeptFraction, s.FastCheck.Z
	}
	r.AdjTracesRelErr, r.AdjSpansRelErr = s.Total.Adjusted.TracesRelError, s.Total.Adjusted.SpansRelError
}
