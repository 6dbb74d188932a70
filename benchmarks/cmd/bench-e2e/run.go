package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/tailsift/tailsift/internal/sinkreport"
)

// env holds what every run needs.
type env struct {
	tailsiftBin, contribBin string
	bBin                    string     // -b-bin: tailsift's variant b
	bSets                   []bSetting // -b-set: variant b's config settings
	loadgenBin, sinkBin     string
	taskset                 string // path of taskset, "" when runs are unpinned
	workDir                 string
	keep                    bool               // keep each run's directory (configs, logs, manifests)
	rescue                  time.Duration      // tailsift's rescue.window; 0: off
	store                   string             // tailsift's store compression (-store); "": off
	shape                   string             // loadgen --shape; "": its default
	loadgenTick             time.Duration      // loadgen --tick; 0: its default
	scrapeEvery             time.Duration      // the window's scrape interval; 0: scrapeEvery
	gctrace                 bool               // run the collector with GODEBUG=gctrace=1 and count its GC cycles per window
	completion              completionSetting  // decision wait (tailsift quiet, contrib after-root, sink --completion), learning
	configs                 *template.Template // testdata/collector
	logf                    func(format string, args ...any)

	mu    sync.Mutex
	procs map[int]*exec.Cmd // started and not yet reaped
}

// runSpec describes one run.
type runSpec struct {
	Kind  kind
	Label string
	// Variant "b" runs the collector from env.bBin (-b-bin); "" from
	// the kind's usual binary.
	Variant string
	Rate    float64       // offered spans/s
	Warmup  time.Duration // load before the counted window
	Window  time.Duration // counted window
	Drain   time.Duration // loadgen --drain
	Seed    int64
	Idle    time.Duration // idle CPU measurement before the load (default 1.5 s)
	// ProfileSeconds > 0 fetches /debug/pprof/profile?seconds=N from the
	// collector (pprof extension enabled) at the start of the window.
	ProfileSeconds int
	ProfileOut     string
	// Start, when set, is the barrier of a concurrent round: the run
	// starts its loadgen only once every run of the round is ready to.
	Start *startBarrier
}

// startBarrier starts the loads of a concurrent round together: each run
// arrives once its collector is up and its idle CPU measured, and waits
// for the others. A run that fails before it arrives leaves instead, so
// the others do not wait for it.
type startBarrier struct {
	mu      sync.Mutex
	waiting int
	open    chan struct{}
}

func newStartBarrier(n int) *startBarrier {
	return &startBarrier{waiting: n, open: make(chan struct{})}
}

// done counts one run as arrived or gone; the last one opens the barrier.
func (b *startBarrier) done() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.waiting--
	if b.waiting == 0 {
		close(b.open)
	}
}

// arrive counts the run and waits for the others (or ctx).
func (b *startBarrier) arrive(ctx context.Context) error {
	b.done()
	select {
	case <-b.open:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

const mb = 1 << 20

// runFiles are the work directory, loopback ports and file paths of one run.
type runFiles struct {
	dir            string
	ports          ports
	config         string // collector YAML
	manifest       string // written by the loadgen, read by the sink
	score          string // the sink's --out report
	loadgenSummary string // the loadgen's --summary-json
	metricsURL     string // the collector's Prometheus endpoint
	statsURL       string // the sink's /stats
}

func newRunFiles(dir string) (*runFiles, error) {
	pp, err := freePorts(7)
	if err != nil {
		return nil, err
	}
	p := ports{OTLP: pp[0], Metrics: pp[1], Health: pp[2], Pprof: pp[3], SinkGRPC: pp[4], SinkHTTP: pp[5], StoreAPI: pp[6]}
	return &runFiles{
		dir:            dir,
		ports:          p,
		config:         filepath.Join(dir, "collector.yaml"),
		manifest:       filepath.Join(dir, "manifest.jsonl"),
		score:          filepath.Join(dir, "score.json"),
		loadgenSummary: filepath.Join(dir, "loadgen.json"),
		metricsURL:     fmt.Sprintf("http://127.0.0.1:%d/metrics", p.Metrics),
		statsURL:       fmt.Sprintf("http://127.0.0.1:%d/stats", p.SinkHTTP),
	}, nil
}

// log is the path of a process's output: "collector", "sink" or "loadgen".
func (rf *runFiles) log(process string) string { return filepath.Join(rf.dir, process+".log") }

// run performs one run; see README "End to end" for the procedure. Every
// process it starts is stopped before it returns.
func (e *env) run(ctx context.Context, spec runSpec) (*runResult, error) {
	arrived := false
	defer func() {
		if spec.Start != nil && !arrived {
			spec.Start.done()
		}
	}()
	res := &runResult{Kind: spec.Kind, Label: spec.Label, Variant: spec.Variant, Bin: e.collectorBin(spec.Kind, spec.Variant), Rate: spec.Rate, Start: time.Now().UTC().Format(time.RFC3339),
		Pinned: e.taskset != "", LoadAvg: loadAvg(), WarmupS: spec.Warmup.Seconds()}
	dir := filepath.Join(e.workDir, spec.Label+"-"+strings.ReplaceAll(runName(spec.Kind, spec.Variant), "/", "-"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if e.keep {
		res.Dir = dir
	} else {
		defer func() { _ = os.RemoveAll(dir) }()
	}
	rf, err := newRunFiles(dir)
	if err != nil {
		return nil, err
	}
	var st storeSetting
	if e.store != "" && spec.Kind.isTailsift() {
		// In the run's directory: removed with it unless -keep.
		st = storeSetting{Dir: filepath.Join(dir, "store"), Compression: e.store}
	}
	config, err := collectorConfig(e.configs, spec.Kind, rf.ports, spec.ProfileSeconds > 0, e.completion, e.rescue, st)
	if err == nil && spec.Variant == "b" {
		config, err = applySettings(config, e.bSets)
	}
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(rf.config, []byte(config), 0o644); err != nil {
		return nil, err
	}

	// Sink on CPU 1, first, so that the exporter finds it at start-up.
	var sink *waiter
	if spec.Kind != kindBaseline {
		if sink, err = e.startSink(rf); err != nil {
			return nil, err
		}
		defer sink.stop(5 * time.Second)
		if err := waitFor(ctx, 30*time.Second, sink.exited, func() bool { return httpOK(ctx, rf.statsURL) }); err != nil {
			return nil, fmt.Errorf("sink not ready: %w\n%s", err, tail(rf.log("sink"), 20))
		}
	}

	// Collector on CPU 0.
	col, err := e.startCollector(rf, spec.Kind, spec.Variant)
	if err != nil {
		return nil, err
	}
	defer col.stop(5 * time.Second) // no-op when already stopped
	pid := col.cmd.Process.Pid
	if err := waitFor(ctx, 60*time.Second, col.exited, func() bool {
		return httpOK(ctx, fmt.Sprintf("http://127.0.0.1:%d/", rf.ports.Health)) && httpOK(ctx, rf.metricsURL)
	}); err != nil {
		return nil, fmt.Errorf("collector %s not healthy: %w\n%s", spec.Kind, err, tail(rf.log("collector"), 20))
	}
	if _, cpus, err := procStatus(pid); err == nil {
		res.CollectorCPUs = cpus
	}
	measureIdle(ctx, rf, pid, spec.Idle, res)
	if spec.Start != nil {
		arrived = true
		if err := spec.Start.arrive(ctx); err != nil {
			return nil, err
		}
	}

	// Load generator on CPU 1.
	lg, err := e.startLoadgen(rf, spec)
	if err != nil {
		return nil, err
	}
	defer lg.stop(5 * time.Second)
	if err := waitWarmup(ctx, rf, lg, spec.Warmup); err != nil {
		return nil, err
	}
	if err := measureWindow(ctx, rf, spec, pid, lg, res, e.gctrace, e.scrapeEvery); err != nil {
		return nil, err
	}
	lgEnd, err := waitLoadgen(ctx, rf, spec.Drain, lg, res)
	if err != nil {
		return nil, err
	}

	var last *metrics
	if spec.Kind != kindBaseline {
		if last, err = waitDecided(ctx, rf, spec.Kind, lgEnd, res); err != nil {
			return nil, err
		}
		if err := waitSinkIdle(ctx, rf, lgEnd); err != nil {
			return nil, err
		}
	}
	if m, err := scrape(ctx, rf.metricsURL); err == nil {
		last = m
	}
	if st, _, err := procStatus(pid); err == nil {
		res.VmHWMMB = st["VmHWM"] / mb
	}
	if last != nil {
		res.setCounters(spec.Kind, last)
	}
	stopAndScore(rf, col, sink, res)
	return res, nil
}

// startSink starts tailsift-sink on CPU 1.
func (e *env) startSink(rf *runFiles) (*waiter, error) {
	cmd, err := e.start(1, rf.log("sink"), nil, e.sinkBin,
		"--grpc", fmt.Sprintf("127.0.0.1:%d", rf.ports.SinkGRPC), "--http", fmt.Sprintf("127.0.0.1:%d", rf.ports.SinkHTTP),
		"--manifest", rf.manifest, "--out", rf.score, "--fast-probability", strconv.FormatFloat(e.completion.fastPercent()/100, 'g', -1, 64),
		"--completion", e.completion.Wait.String(), "--quiet")
	if err != nil {
		return nil, fmt.Errorf("start sink: %w", err)
	}
	return e.watch(cmd), nil
}

// collectorBin is the binary of kind k's collector: variant "b" of a
// tailsift kind is env.bBin (-b-bin).
func (e *env) collectorBin(k kind, variant string) string {
	switch {
	case !k.isTailsift():
		return e.contribBin
	case variant == "b":
		return e.bBin
	}
	return e.tailsiftBin
}

// startCollector starts the collector of kind k (and variant) on CPU 0.
func (e *env) startCollector(rf *runFiles, k kind, variant string) (*waiter, error) {
	bin := e.collectorBin(k, variant)
	args := []string{"--config", rf.config}
	if k == kindContrib {
		args = append(args, contribFeatureGates)
	}
	var extraEnv []string
	if e.gctrace {
		// One line per GC cycle on stderr (collector.log): the window
		// counts the cycles and their CPU (gctrace.go).
		extraEnv = append(extraEnv, "GODEBUG="+strings.TrimPrefix(os.Getenv("GODEBUG")+",gctrace=1", ","))
	}
	cmd, err := e.start(0, rf.log("collector"), extraEnv, bin, args...)
	if err != nil {
		return nil, fmt.Errorf("start collector: %w", err)
	}
	return e.watch(cmd), nil
}

// startLoadgen starts tailsift-loadgen on CPU 1 (loadgenArgs).
func (e *env) startLoadgen(rf *runFiles, spec runSpec) (*waiter, error) {
	cmd, err := e.start(1, rf.log("loadgen"), nil, e.loadgenBin, e.loadgenArgs(rf, spec)...)
	if err != nil {
		return nil, fmt.Errorf("start loadgen: %w", err)
	}
	return e.watch(cmd), nil
}

// loadgenArgs are a run's loadgen arguments. It runs warmup + window + a
// margin for its own start-up, then --drain.
func (e *env) loadgenArgs(rf *runFiles, spec runSpec) []string {
	duration := spec.Warmup + spec.Window + 2*time.Second
	args := []string{"--endpoint", fmt.Sprintf("127.0.0.1:%d", rf.ports.OTLP), "--protocol", "grpc",
		"--rate", strconv.FormatFloat(spec.Rate, 'f', 0, 64), "--duration", duration.String(), "--drain", spec.Drain.String(),
		"--seed", strconv.FormatInt(spec.Seed, 10), "--summary-json", rf.loadgenSummary, "--quiet"}
	if spec.Kind != kindBaseline {
		args = append(args, "--manifest", rf.manifest)
	}
	if e.shape != "" {
		args = append(args, "--shape", e.shape)
	}
	if e.loadgenTick > 0 {
		args = append(args, "--tick", e.loadgenTick.String())
	}
	return args
}

// measureIdle records the idle baseline: CPU, RSS and heap after start-up,
// before any span. idle is how long the CPU is measured (default 1.5 s).
func measureIdle(ctx context.Context, rf *runFiles, pid int, idle time.Duration, res *runResult) {
	if idle <= 0 {
		idle = 1500 * time.Millisecond
	}
	time.Sleep(500 * time.Millisecond)
	if c0, _, err := procCPU(pid); err == nil {
		t := time.Now()
		time.Sleep(idle)
		if c1, _, err := procCPU(pid); err == nil {
			res.IdleCPU = (c1 - c0) / time.Since(t).Seconds()
		}
	}
	if st, _, err := procStatus(pid); err == nil {
		res.RSSIdleMB = st["VmRSS"] / mb
	}
	if m, err := scrape(ctx, rf.metricsURL); err == nil {
		res.HeapIdleMB = m.sum(mHeap) / mb
	}
}

// waitWarmup waits for the first accepted span, then for the warm-up.
func waitWarmup(ctx context.Context, rf *runFiles, lg *waiter, warmup time.Duration) error {
	var firstSpan time.Time
	if err := waitFor(ctx, 60*time.Second, lg.exited, func() bool {
		m, err := scrape(ctx, rf.metricsURL)
		if err == nil && m.sum(mAccepted) > 0 {
			firstSpan = time.Now()
			return true
		}
		return false
	}); err != nil {
		return fmt.Errorf("no span accepted: %w\n%s", err, tail(rf.log("loadgen"), 20))
	}
	return sleepUntil(ctx, firstSpan.Add(warmup))
}

// waitLoadgen waits for the load generator to finish (drain included) and
// reads its summary. It returns when the load generator ended.
func waitLoadgen(ctx context.Context, rf *runFiles, drain time.Duration, lg *waiter, res *runResult) (time.Time, error) {
	select {
	case <-lg.done:
	case <-time.After(drain + 90*time.Second):
		res.problem("loadgen did not finish; killed")
		lg.stop(time.Second)
	case <-ctx.Done():
		return time.Time{}, ctx.Err()
	}
	end := time.Now()
	var ls loadgenSummary
	if err := readJSON(rf.loadgenSummary, &ls); err != nil {
		res.problem("loadgen summary: %v (%s)", err, tail(rf.log("loadgen"), 5))
	} else {
		res.Loadgen = &ls
	}
	return end, nil
}

// waitDecided waits until the collector holds nothing (every trace
// decided), at most max_wait + 10 s after the loadgen's last send, and
// returns the last metrics scraped.
func waitDecided(ctx context.Context, rf *runFiles, k kind, lgEnd time.Time, res *runResult) (*metrics, error) {
	var last *metrics
	deadline := lgEnd.Add(maxWait + 10*time.Second)
	for {
		m, err := scrape(ctx, rf.metricsURL)
		if err == nil {
			last = m
			bs, _ := bufferedSpans(k, m)
			bt, _ := bufferedTraces(k, m)
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
	return last, nil
}

// waitSinkIdle waits until the sink has been idle for 1.5 s (the exporter
// queue flushed), at most 20 s.
func waitSinkIdle(ctx context.Context, rf *runFiles, lgEnd time.Time) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		st, err := getSinkStats(ctx, rf.statsURL)
		if err == nil && (st.IdleSeconds >= 1.5 || (st.Requests == 0 && time.Since(lgEnd) > 5*time.Second)) {
			break
		}
		if err := sleepUntil(ctx, time.Now().Add(250*time.Millisecond)); err != nil {
			return err
		}
	}
	return nil
}

// setCounters records the whole run's counters from the final scrape.
func (r *runResult) setCounters(k kind, last *metrics) {
	r.AcceptedTotal = last.sum(mAccepted)
	r.RefusedTotal = last.sum(mRefused)
	r.EarlyMemory = last.sum(tsm(k, mTSEarly), "reason", "memory")
	r.EarlyMaxSpans = last.sum(tsm(k, mTSEarly), "reason", "max_spans")
	r.ProcRefused = last.sum(tsm(k, mTSRefused))
	r.ExportFailures = last.sum(tsm(k, mTSExportFail)) + last.sum(mExpFailed)
	r.DroppedTooEarly = last.sum(mCTTooEarly)
	r.DroppedTooLarge = last.sum(mCTTooLarge)
}

// stopAndScore stops the collector, then the sink (which then scores), and
// reads the score and the collector's logged errors.
func stopAndScore(rf *runFiles, col, sink *waiter, res *runResult) {
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
		var sc sinkreport.Report
		if err := readJSON(rf.score, &sc); err != nil {
			res.problem("sink score: %v (%s)", err, tail(rf.log("sink"), 5))
		} else {
			res.Score = &sc
			res.derive()
		}
	}
	if b, _ := os.ReadFile(rf.log("collector")); strings.Contains(string(b), "\terror\t") {
		res.problem("collector logged errors: %s", firstError(rf.log("collector")))
	}
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
