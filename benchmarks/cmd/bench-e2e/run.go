package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// env holds what every run needs.
type env struct {
	tailsiftBin, contribBin string
	loadgenBin, sinkBin     string
	taskset                 string // path of taskset, "" when runs are unpinned
	workDir                 string
	keep                    bool          // keep each run's directory (configs, logs, manifests)
	rescue                  time.Duration // tailsift's rescue.window; 0: off
	logf                    func(format string, args ...any)

	mu    sync.Mutex
	procs map[int]*exec.Cmd // started and not yet reaped
}

// runSpec describes one run.
type runSpec struct {
	Kind   kind
	Label  string
	Rate   float64       // offered spans/s
	Warmup time.Duration // load before the counted window
	Window time.Duration // counted window
	Drain  time.Duration // loadgen --drain
	Seed   int64
	Idle   time.Duration // idle CPU measurement before the load (default 1.5 s)
	// ProfileSeconds > 0 fetches /debug/pprof/profile?seconds=N from the
	// collector (pprof extension enabled) at the start of the window.
	ProfileSeconds int
	ProfileOut     string
}

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

// sinkScore is the part of tailsift-sink's --out report (schema
// tailsift-sink/v1) we use.
type sinkScore struct {
	Schema   string `json:"schema"`
	Received struct {
		Spans  int64 `json:"spans"`
		Traces int64 `json:"traces"`
	} `json:"received"`
	Classes   []classRow `json:"classes"`
	Total     classRow   `json:"total"`
	FastCheck *struct {
		Sent         int64    `json:"sent"`
		Kept         int64    `json:"kept"`
		KeptFraction *float64 `json:"kept_fraction"`
		Z            *float64 `json:"z"`
		Within3Sigma bool     `json:"within_3sigma"`
	} `json:"fast_check"`
	AnomalyRecall *float64 `json:"anomaly_recall"`
	MissingTh     struct {
		Spans  int64 `json:"spans"`
		Traces int64 `json:"traces"`
	} `json:"missing_th"`
	Notes []string `json:"notes"`
}

type classRow struct {
	Class            string `json:"class"`
	TracesSent       int64  `json:"traces_sent"`
	TracesLate       int64  `json:"traces_late"`
	TracesKept       int64  `json:"traces_kept"`
	TracesComplete   int64  `json:"traces_complete"`
	TracesPartial    int64  `json:"traces_partial"`
	TracesExcess     int64  `json:"traces_excess"`
	TracesDuplicated int64  `json:"traces_duplicated"`
	SpansSent        int64  `json:"spans_sent"`
	SpansReceived    int64  `json:"spans_received"`
	SpansMissingTh   int64  `json:"spans_missing_th"`
	Adjusted         struct {
		TracesEstimate float64  `json:"traces_estimate"`
		TracesTrue     float64  `json:"traces_true"`
		TracesRelError *float64 `json:"traces_rel_error"`
		SpansEstimate  float64  `json:"spans_estimate"`
		SpansTrue      float64  `json:"spans_true"`
		SpansRelError  *float64 `json:"spans_rel_error"`
	} `json:"adjusted"`
	Latency *struct {
		Count int64    `json:"count"`
		P50   *float64 `json:"p50"`
		P90   *float64 `json:"p90"`
		P99   *float64 `json:"p99"`
		Max   *float64 `json:"max"`
	} `json:"latency_ms"`
}

func (s *sinkScore) class(name string) *classRow {
	if s == nil {
		return nil
	}
	for i := range s.Classes {
		if s.Classes[i].Class == name {
			return &s.Classes[i]
		}
	}
	return nil
}

// runResult is everything measured in one run (written to the raw JSON).
type runResult struct {
	Kind   kind    `json:"kind"`
	Label  string  `json:"label"`
	Rate   float64 `json:"rate"`
	Start  string  `json:"start"`
	Pinned bool    `json:"pinned"`
	// Cpus_allowed_list of the collector as read from /proc.
	CollectorCPUs string `json:"collector_cpus"`
	LoadAvg       string `json:"loadavg_before"`

	WarmupS float64 `json:"warmup_s"`
	WindowS float64 `json:"window_s"` // measured length of the counted window

	// Counted window.
	WindowAccepted     float64 `json:"window_accepted_spans"`
	WindowAcceptedRate float64 `json:"window_accepted_spans_per_s"`
	CPUSeconds         float64 `json:"collector_cpu_s"` // utime+stime delta
	CPUMicrosPerSpan   float64 `json:"collector_cpu_us_per_span"`
	CPUUtil            float64 `json:"collector_cpu_util"` // cores
	OtherCPU0          float64 `json:"other_cpu0_util"`    // CPU 0 busy not due to the collector (cores)
	CPU1Busy           float64 `json:"cpu1_util"`          // CPU 1 busy: loadgen, sink and anything else

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

	Loadgen *loadgenSummary `json:"loadgen"`
	Score   *sinkScore      `json:"sink"`

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

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	var out []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

// start runs bin with args, pinned to cpu when taskset is available
// (taskset execs the program, so the PID is the program's own).
func (e *env) start(cpu int, logPath string, bin string, args ...string) (*exec.Cmd, error) {
	name := bin
	if e.taskset != "" {
		args = append([]string{"-c", strconv.Itoa(cpu), bin}, args...)
		name = e.taskset
	}
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return nil, err
	}
	_ = f.Close() // the child has its own descriptor
	e.mu.Lock()
	if e.procs == nil {
		e.procs = map[int]*exec.Cmd{}
	}
	e.procs[cmd.Process.Pid] = cmd
	e.mu.Unlock()
	return cmd, nil
}

// waiter reaps cmd once; done is closed when it has exited.
type waiter struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func (e *env) watch(cmd *exec.Cmd) *waiter {
	w := &waiter{cmd: cmd, done: make(chan struct{})}
	go func() {
		w.err = cmd.Wait()
		e.mu.Lock()
		delete(e.procs, cmd.Process.Pid)
		e.mu.Unlock()
		close(w.done)
	}()
	return w
}

func (w *waiter) exited() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, waits up to grace, then SIGKILL. It reports how long
// the process took and whether it had to be killed.
func (w *waiter) stop(grace time.Duration) (time.Duration, bool) {
	t := time.Now()
	if w.exited() {
		return 0, false
	}
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.done:
		return time.Since(t), false
	case <-time.After(grace):
		_ = w.cmd.Process.Kill()
		<-w.done
		return time.Since(t), true
	}
}

// killAll kills every process this runner started that is still running
// (by PID; used when the runner is interrupted).
func (e *env) killAll() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for pid, c := range e.procs {
		_ = c.Process.Kill()
		delete(e.procs, pid)
	}
}

func httpOK(ctx context.Context, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func waitFor(ctx context.Context, timeout time.Duration, dead func() bool, ok func() bool) error {
	deadline := time.Now().Add(timeout)
	for {
		if ok() {
			return nil
		}
		if dead != nil && dead() {
			return errors.New("process exited")
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

type sinkStats struct {
	Requests    int64   `json:"requests"`
	Spans       int64   `json:"spans"`
	IdleSeconds float64 `json:"idle_seconds"`
}

func getSinkStats(ctx context.Context, url string) (*sinkStats, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	var s sinkStats
	return &s, json.NewDecoder(resp.Body).Decode(&s)
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

const mb = 1 << 20

// run performs one run; see README "End to end" for the procedure.
func (e *env) run(ctx context.Context, spec runSpec) (*runResult, error) {
	res := &runResult{Kind: spec.Kind, Label: spec.Label, Rate: spec.Rate, Start: time.Now().UTC().Format(time.RFC3339),
		Pinned: e.taskset != "", LoadAvg: loadAvg(), WarmupS: spec.Warmup.Seconds()}
	dir := filepath.Join(e.workDir, fmt.Sprintf("%s-%s", spec.Label, spec.Kind))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if e.keep {
		res.Dir = dir
	} else {
		defer func() { _ = os.RemoveAll(dir) }()
	}
	pp, err := freePorts(6)
	if err != nil {
		return nil, err
	}
	p := ports{OTLP: pp[0], Metrics: pp[1], Health: pp[2], Pprof: pp[3], SinkGRPC: pp[4], SinkHTTP: pp[5]}
	cfgPath := filepath.Join(dir, "collector.yaml")
	if err := os.WriteFile(cfgPath, []byte(collectorConfig(spec.Kind, p, spec.ProfileSeconds > 0, e.rescue)), 0o644); err != nil {
		return nil, err
	}
	bin := e.contribBin
	args := []string{"--config", cfgPath}
	switch spec.Kind {
	case kindTailsift, kindFastpath:
		bin = e.tailsiftBin
	case kindContrib:
		args = append(args, contribFeatureGates)
	}
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", p.Metrics)
	statsURL := fmt.Sprintf("http://127.0.0.1:%d/stats", p.SinkHTTP)
	colLog := filepath.Join(dir, "collector.log")

	// Sink on CPU 1, first, so that the exporter finds it at start-up.
	manifest := filepath.Join(dir, "manifest.jsonl")
	scorePath := filepath.Join(dir, "score.json")
	var sink *waiter
	if spec.Kind != kindBaseline {
		sinkCmd, err := e.start(1, filepath.Join(dir, "sink.log"), e.sinkBin,
			"--grpc", fmt.Sprintf("127.0.0.1:%d", p.SinkGRPC), "--http", fmt.Sprintf("127.0.0.1:%d", p.SinkHTTP),
			"--manifest", manifest, "--out", scorePath, "--fast-probability", strconv.FormatFloat(fastPercentage/100, 'g', -1, 64),
			"--completion", quiet.String(), "--quiet")
		if err != nil {
			return nil, fmt.Errorf("start sink: %w", err)
		}
		sink = e.watch(sinkCmd)
		defer sink.stop(5 * time.Second)
		if err := waitFor(ctx, 30*time.Second, sink.exited, func() bool { return httpOK(ctx, statsURL) }); err != nil {
			return nil, fmt.Errorf("sink not ready: %w\n%s", err, tail(filepath.Join(dir, "sink.log"), 20))
		}
	}

	// Collector on CPU 0.
	colCmd, err := e.start(0, colLog, bin, args...)
	if err != nil {
		return nil, fmt.Errorf("start collector: %w", err)
	}
	col := e.watch(colCmd)
	defer col.stop(5 * time.Second) // no-op when already stopped
	pid := colCmd.Process.Pid
	if err := waitFor(ctx, 60*time.Second, col.exited, func() bool {
		return httpOK(ctx, fmt.Sprintf("http://127.0.0.1:%d/", p.Health)) && httpOK(ctx, metricsURL)
	}); err != nil {
		return nil, fmt.Errorf("collector %s not healthy: %w\n%s", spec.Kind, err, tail(colLog, 20))
	}
	if _, cpus, err := procStatus(pid); err == nil {
		res.CollectorCPUs = cpus
	}

	// Idle baseline: CPU, RSS and heap after start-up, before any span.
	idle := spec.Idle
	if idle <= 0 {
		idle = 1500 * time.Millisecond
	}
	time.Sleep(500 * time.Millisecond)
	if c0, err := procCPU(pid); err == nil {
		t := time.Now()
		time.Sleep(idle)
		if c1, err := procCPU(pid); err == nil {
			res.IdleCPU = (c1 - c0) / time.Since(t).Seconds()
		}
	}
	if st, _, err := procStatus(pid); err == nil {
		res.RSSIdleMB = st["VmRSS"] / mb
	}
	if m, err := scrape(ctx, metricsURL); err == nil {
		res.HeapIdleMB = m.sum(mHeap) / mb
	}

	// Load generator on CPU 1. It runs warmup + window + a margin for its
	// own start-up, then --drain.
	lgDur := spec.Warmup + spec.Window + 2*time.Second
	lgSummary := filepath.Join(dir, "loadgen.json")
	lgArgs := []string{"--endpoint", fmt.Sprintf("127.0.0.1:%d", p.OTLP), "--protocol", "grpc",
		"--rate", strconv.FormatFloat(spec.Rate, 'f', 0, 64), "--duration", lgDur.String(), "--drain", spec.Drain.String(),
		"--seed", strconv.FormatInt(spec.Seed, 10), "--summary-json", lgSummary, "--quiet"}
	if spec.Kind != kindBaseline {
		lgArgs = append(lgArgs, "--manifest", manifest)
	}
	lgCmd, err := e.start(1, filepath.Join(dir, "loadgen.log"), e.loadgenBin, lgArgs...)
	if err != nil {
		return nil, fmt.Errorf("start loadgen: %w", err)
	}
	lg := e.watch(lgCmd)
	defer lg.stop(5 * time.Second)

	// t0: the first accepted span.
	var t0 time.Time
	if err := waitFor(ctx, 60*time.Second, lg.exited, func() bool {
		m, err := scrape(ctx, metricsURL)
		if err == nil && m.sum(mAccepted) > 0 {
			t0 = time.Now()
			return true
		}
		return false
	}); err != nil {
		return nil, fmt.Errorf("no span accepted: %w\n%s", err, tail(filepath.Join(dir, "loadgen.log"), 20))
	}
	if err := sleepUntil(ctx, t0.Add(spec.Warmup)); err != nil {
		return nil, err
	}

	// The counted window.
	type snap struct {
		t    time.Time
		cpu  float64
		busy map[int]float64
		m    *metrics
	}
	take := func() (snap, error) {
		var s snap
		var err error
		if s.m, err = scrape(ctx, metricsURL); err != nil {
			return s, err
		}
		s.t = time.Now()
		if s.cpu, err = procCPU(pid); err != nil {
			return s, err
		}
		s.busy, _ = cpuBusy()
		return s, nil
	}
	s0, err := take()
	if err != nil {
		return nil, fmt.Errorf("window start: %w", err)
	}
	var profDone chan error
	if spec.ProfileSeconds > 0 {
		profDone = make(chan error, 1)
		go func() { profDone <- fetchProfile(ctx, p.Pprof, spec.ProfileSeconds, spec.ProfileOut) }()
	}
	end := s0.t.Add(spec.Window)
	var rss, heap, bspans, btraces, bbytes []float64
	addProm := func(m *metrics) {
		heap = append(heap, m.sum(mHeap))
		if v, ok := bufferedSpans(spec.Kind, m); ok {
			bspans = append(bspans, v)
		}
		if v, ok := bufferedTraces(spec.Kind, m); ok {
			btraces = append(btraces, v)
			res.TracesOnMemMax = max(res.TracesOnMemMax, v)
		}
		if spec.Kind == kindTailsift || spec.Kind == kindFastpath {
			bbytes = append(bbytes, m.sum(tsm(spec.Kind, mTSBufBytes)))
		}
	}
	addProm(s0.m)
	nextProm := time.Now().Add(2 * time.Second)
	for time.Now().Before(end) {
		if st, _, err := procStatus(pid); err == nil {
			rss = append(rss, st["VmRSS"])
		}
		if time.Now().After(nextProm) && time.Until(end) > time.Second {
			if m, err := scrape(ctx, metricsURL); err == nil {
				addProm(m)
			}
			nextProm = time.Now().Add(2 * time.Second)
		}
		if err := sleepUntil(ctx, minTime(end, time.Now().Add(500*time.Millisecond))); err != nil {
			return nil, err
		}
	}
	s1, err := take()
	if err != nil {
		return nil, fmt.Errorf("window end: %w", err)
	}
	addProm(s1.m)
	if st, _, err := procStatus(pid); err == nil {
		rss = append(rss, st["VmRSS"])
	}
	if lg.exited() {
		res.problem("loadgen exited before the window ended")
	}

	dt := s1.t.Sub(s0.t).Seconds()
	res.WindowS = dt
	res.WindowAccepted = s1.m.sum(mAccepted) - s0.m.sum(mAccepted)
	res.WindowAcceptedRate = res.WindowAccepted / dt
	res.CPUSeconds = s1.cpu - s0.cpu
	if res.WindowAccepted > 0 {
		res.CPUMicrosPerSpan = res.CPUSeconds * 1e6 / res.WindowAccepted
	}
	res.CPUUtil = res.CPUSeconds / dt
	if s0.busy != nil && s1.busy != nil {
		res.OtherCPU0 = max(0, (s1.busy[0]-s0.busy[0]-res.CPUSeconds)/dt) // ±1 clock tick of noise
		res.CPU1Busy = (s1.busy[1] - s0.busy[1]) / dt
	}
	res.RSSSamples, res.PromSamples = len(rss), len(heap)
	if len(rss) > 0 {
		res.RSSMeanMB, res.RSSPeakMB = mean(rss)/mb, slices.Max(rss)/mb
	}
	res.HeapMeanMB = mean(heap) / mb
	if len(bspans) > 0 {
		res.BufferedSpansMean = mean(bspans)
		res.BufferedTracesMean = mean(btraces)
		if res.WindowAcceptedRate > 0 {
			res.MeanHoldS = res.BufferedSpansMean / res.WindowAcceptedRate
		}
		if res.BufferedSpansMean > 0 {
			res.BytesPerBufSpanRSS = (res.RSSMeanMB - res.RSSIdleMB) * mb / res.BufferedSpansMean
			res.BytesPerBufSpanHeap = (res.HeapMeanMB - res.HeapIdleMB) * mb / res.BufferedSpansMean
			if len(bbytes) > 0 {
				res.BufferedBytesMean = mean(bbytes)
				res.BytesPerBufSpanAcct = res.BufferedBytesMean / res.BufferedSpansMean
			}
		}
	}
	if profDone != nil {
		if err := <-profDone; err != nil {
			res.problem("profile: %v", err)
		} else {
			res.ProfileFile = spec.ProfileOut
		}
	}

	// Wait for the load generator (drain included).
	select {
	case <-lg.done:
	case <-time.After(spec.Drain + 90*time.Second):
		res.problem("loadgen did not finish; killed")
		lg.stop(time.Second)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	lgEnd := time.Now()
	var ls loadgenSummary
	if err := readJSON(lgSummary, &ls); err != nil {
		res.problem("loadgen summary: %v (%s)", err, tail(filepath.Join(dir, "loadgen.log"), 5))
	} else {
		res.Loadgen = &ls
	}

	// Wait until the processor holds nothing (every trace decided), at most
	// max_wait + 10 s after the loadgen's last send.
	var last *metrics
	if spec.Kind != kindBaseline {
		deadline := lgEnd.Add(maxWait + 10*time.Second)
		for {
			m, err := scrape(ctx, metricsURL)
			if err == nil {
				last = m
				bs, _ := bufferedSpans(spec.Kind, m)
				bt, _ := bufferedTraces(spec.Kind, m)
				res.TracesOnMemMax = max(res.TracesOnMemMax, bt)
				if bt == 0 && bs <= 0 {
					res.UndecidedAtStop = 0
					break
				}
				res.UndecidedAtStop = bt
			}
			if time.Now().After(deadline) {
				res.problem("%.0f traces still buffered %v after the loadgen stopped", res.UndecidedAtStop, maxWait+10*time.Second)
				break
			}
			if err := sleepUntil(ctx, time.Now().Add(250*time.Millisecond)); err != nil {
				return nil, err
			}
		}
		res.DecideWaitS = time.Since(lgEnd).Seconds()
		// Then until the sink has been idle for 1.5 s (exporter queue flushed).
		sinkDeadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(sinkDeadline) {
			st, err := getSinkStats(ctx, statsURL)
			if err == nil && (st.IdleSeconds >= 1.5 || (st.Requests == 0 && time.Since(lgEnd) > 5*time.Second)) {
				break
			}
			if err := sleepUntil(ctx, time.Now().Add(250*time.Millisecond)); err != nil {
				return nil, err
			}
		}
	}
	if m, err := scrape(ctx, metricsURL); err == nil {
		last = m
	}
	if st, _, err := procStatus(pid); err == nil {
		res.VmHWMMB = st["VmHWM"] / mb
	}
	if last != nil {
		res.AcceptedTotal = last.sum(mAccepted)
		res.RefusedTotal = last.sum(mRefused)
		k := spec.Kind
		res.EarlyMemory = last.sum(tsm(k, mTSEarly), "reason", "memory")
		res.EarlyMaxSpans = last.sum(tsm(k, mTSEarly), "reason", "max_spans")
		res.ProcRefused = last.sum(tsm(k, mTSRefused))
		res.ExportFailures = last.sum(tsm(k, mTSExportFail)) + last.sum(mExpFailed)
		res.DroppedTooEarly = last.sum(mCTTooEarly)
		res.DroppedTooLarge = last.sum(mCTTooLarge)
	}

	// Stop the collector, then the sink (which then scores).
	d, killed := col.stop(60 * time.Second)
	res.ShutdownS = d.Seconds()
	if killed {
		res.problem("collector did not stop within 60 s of SIGTERM; killed")
	}
	if col.err != nil && !killed {
		res.CollectorExitErr = col.err.Error()
	}
	if sink != nil {
		if _, killed := sink.stop(180 * time.Second); killed {
			res.problem("sink did not stop within 180 s; killed")
		}
		var sc sinkScore
		if err := readJSON(scorePath, &sc); err != nil {
			res.problem("sink score: %v (%s)", err, tail(filepath.Join(dir, "sink.log"), 5))
		} else {
			res.Score = &sc
			res.derive()
		}
	}
	if b, _ := os.ReadFile(colLog); strings.Contains(string(b), "\terror\t") {
		res.problem("collector logged errors: %s", firstError(colLog))
	}
	return res, nil
}

func firstError(path string) string {
	b, _ := os.ReadFile(path)
	n := 0
	first := ""
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.Contains(l, "\terror\t") {
			continue
		}
		n++
		if first != "" {
			continue
		}
		// zap console format: time, level, caller, message, then JSON fields.
		f := strings.SplitN(l, "\t", 5)
		msg := l
		if len(f) >= 4 {
			msg = f[3]
		}
		if len(f) == 5 {
			var fields map[string]any
			if json.Unmarshal([]byte(f[4]), &fields) == nil {
				for _, k := range []string{"error", "rejected_items", "otelcol.component.id"} {
					if v, ok := fields[k]; ok {
						msg += fmt.Sprintf(" %s=%v", k, v)
					}
				}
			}
		}
		if len(msg) > 400 {
			msg = msg[:400] + "…"
		}
		first = msg
	}
	return fmt.Sprintf("%d error lines, first: %s", n, first)
}

func (r *runResult) derive() {
	s := r.Score
	if s.Total.Latency != nil {
		r.P50AddedMs, r.P99AddedMs = s.Total.Latency.P50, s.Total.Latency.P99
	}
	pct := func(c *classRow) *float64 {
		if c == nil || c.TracesSent == 0 {
			return nil
		}
		v := 100 * float64(c.TracesComplete) / float64(c.TracesSent)
		return &v
	}
	r.ErrorCompletePct = pct(s.class("error"))
	r.SlowCompletePct = pct(s.class("slow"))
	if s.FastCheck != nil {
		r.FastKeptFraction, r.FastZ = s.FastCheck.KeptFraction, s.FastCheck.Z
	}
	r.AdjTracesRelErr, r.AdjSpansRelErr = s.Total.Adjusted.TracesRelError, s.Total.Adjusted.SpansRelError
}

func fetchProfile(ctx context.Context, port, seconds int, out string) error {
	c := &http.Client{Timeout: time.Duration(seconds+30) * time.Second}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=%d", port, seconds), nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pprof: %s", resp.Status)
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}
