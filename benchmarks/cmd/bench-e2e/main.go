// Command bench-e2e runs the end-to-end comparison of the tailsift
// distribution (bin/otelcol-tailsift) with a contrib tail_sampling v0.161.0
// build (bin/otelcol-contrib-bench, from benchmarks/dist-contrib) and an
// OTLP-in/nop-out baseline: each collector pinned to CPU 0, the load
// generator (cmd/tailsift-loadgen) and the scoring sink (cmd/tailsift-sink)
// on CPU 1. See benchmarks/README.md, section "End to end".
//
//	go run ./cmd/bench-e2e -mode full    # make bench-e2e
//	go run ./cmd/bench-e2e -mode quick   # make bench-e2e-quick
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

// options are the runner's settings; presets fill them per mode and flags
// override them.
type options struct {
	Mode    string
	Repo    string
	OutDir  string
	Tag     string // file name tag: e2e-<date>[-tag].md
	Keep    bool
	NoWrite bool

	TailsiftBin, ContribBin, LoadgenBin, SinkBin string

	Pairs    int
	Rate     float64 // 0: auto, from the saturation search (full mode)
	RateCap  float64 // auto rate: at most this
	Warmup   time.Duration
	Window   time.Duration
	Drain    time.Duration
	Baseline bool
	// ContribSatRef: contrib's saturation rate from an earlier run, for the
	// fast path's saturation target when this run has no contrib ladder.
	ContribSatRef float64
	Fastpath      bool          // also run the tailsift receiver (kind fastpath) in every side-by-side round
	Rescue        time.Duration // tailsift's rescue.window (processor and fast path); 0: off, the default config
	Store         string        // tailsift's durable store (processor and fast path): off, zstd or s2
	Contrib       bool          // run contrib in the side-by-side rounds
	Processor     bool          // run tailsift's processor (kind tailsift) in the side-by-side rounds
	Seed          int64
	Shape         string        // loadgen --shape
	Wait          time.Duration // decision wait after the root (tailsift quiet, contrib after-root); 0: by shape
	Learn         bool          // tailsift's completion.learn.enabled (the default config: true)
	FastpathOut   string        // the fast path's exporter: otlp_grpc or debug
	Idle          time.Duration

	Sat         bool
	SatStart    float64
	SatFactor   float64
	SatMax      float64
	SatMaxSteps int
	SatWarmup   time.Duration
	SatWindow   time.Duration
	SatRetry    int
	SatKinds    string

	Replot         string // re-render the report (md, svg) from this JSON, run nothing
	Profile        string // "auto", "always", "never"
	ProfileKind    string // the collector profiled: tailsift (processor) or fastpath
	ProfileSeconds int
}

func presets(mode string) (options, error) {
	o := options{Mode: mode, Seed: 1, Baseline: true, Store: "off", Contrib: true, Processor: true, Learn: true, FastpathOut: "otlp_grpc", SatFactor: 1.25, SatMax: 400_000, SatMaxSteps: 18,
		SatRetry: 1, Profile: "auto", ProfileKind: string(kindTailsift), ProfileSeconds: 20}
	switch mode {
	case "full":
		o.Pairs, o.Rate, o.RateCap, o.Warmup, o.Window, o.Drain = 3, 0, 16000, 10*time.Second, 30*time.Second, 12*time.Second
		o.Sat, o.SatStart, o.SatWarmup, o.SatWindow = true, 6000, 8*time.Second, 20*time.Second
		o.Idle = 3 * time.Second
	case "quick":
		o.Pairs, o.Rate, o.Warmup, o.Window, o.Drain = 1, 5000, 4*time.Second, 10*time.Second, 2*time.Second
		o.Tag, o.Profile = "quick", "never"
	default:
		return o, fmt.Errorf("-mode must be full or quick, not %q", mode)
	}
	return o, nil
}

// decisionWait is -wait, or the shape's decision wait when it is 0.
func (o options) decisionWait() time.Duration {
	if o.Wait > 0 {
		return o.Wait
	}
	return decisionWait(o.Shape)
}

func modeArg(args []string) string {
	for i, a := range args {
		a = strings.TrimLeft(a, "-")
		if v, ok := strings.CutPrefix(a, "mode="); ok {
			return v
		}
		if a == "mode" && i+1 < len(args) {
			return args[i+1]
		}
	}
	return "full"
}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	o, err := presets(modeArg(args))
	if err != nil {
		return o, err
	}
	fs := flag.NewFlagSet("bench-e2e", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.Mode, "mode", o.Mode, "full (3 pairs + baseline, saturation search, ~25 min) or quick (1 pair + baseline at a low rate, ~2 min); sets the defaults below")
	fs.StringVar(&o.Repo, "repo", "", "tailsift repository root (default: found from the working directory)")
	fs.StringVar(&o.OutDir, "out", "", "results directory (default <repo>/benchmarks/results)")
	fs.StringVar(&o.Tag, "tag", o.Tag, "suffix of the result file names (e2e-<date>-<tag>.md)")
	fs.BoolVar(&o.Keep, "keep", false, "keep every run's directory (configs, logs, manifests) and print where")
	fs.BoolVar(&o.NoWrite, "no-write", false, "print the report only, write no result files")
	fs.StringVar(&o.TailsiftBin, "tailsift-bin", os.Getenv("TAILSIFT_BIN"), "tailsift collector (default $TAILSIFT_BIN or <repo>/bin/otelcol-tailsift)")
	fs.StringVar(&o.ContribBin, "contrib-bin", "", "contrib comparison collector (default <repo>/bin/otelcol-contrib-bench)")
	fs.StringVar(&o.LoadgenBin, "loadgen-bin", "", "tailsift-loadgen binary (default: go build ./cmd/tailsift-loadgen into the work dir)")
	fs.StringVar(&o.SinkBin, "sink-bin", "", "tailsift-sink binary (default: go build ./cmd/tailsift-sink into the work dir)")
	fs.IntVar(&o.Pairs, "pairs", o.Pairs, "side-by-side rounds (tailsift, contrib, baseline each); 0: none (saturation only)")
	fs.Float64Var(&o.Rate, "rate", o.Rate, "side-by-side offered rate, spans/s (0: 70 % of contrib's measured saturation rounded down to 1000, at most -rate-cap; needs -sat)")
	fs.Float64Var(&o.RateCap, "rate-cap", o.RateCap, "upper bound of the automatic side-by-side rate")
	fs.DurationVar(&o.Warmup, "warmup", o.Warmup, "side-by-side warm-up before the counted window")
	fs.DurationVar(&o.Window, "window", o.Window, "side-by-side counted window")
	fs.DurationVar(&o.Drain, "drain", o.Drain, "loadgen --drain in side-by-side runs (late spans are held back 10-30 s)")
	fs.BoolVar(&o.Baseline, "baseline", o.Baseline, "run the OTLP->nop baseline in every side-by-side round")
	fs.Float64Var(&o.ContribSatRef, "contrib-sat-ref", 0, "contrib's saturation rate (spans/s) from an earlier run, for the fast path's saturation target when this run has no contrib ladder (also applied by -replot)")
	fs.DurationVar(&o.Rescue, "tailsift-rescue", 0, "set tailsift's rescue.window (processor and fast path) to this; 0: off, as by default")
	fs.StringVar(&o.Store, "store", o.Store, "tailsift's durable store for the processor and the fast path (the tailsift extension, storage: tailsift, in the run's directory): off, zstd or s2. Compare the store's cost by alternating runs with -store off and on (see README, \"Durable store\")")
	fs.BoolVar(&o.Contrib, "contrib", o.Contrib, "run contrib in the side-by-side rounds (false: tailsift only, no contrib binary needed; needs -sat=false or -sat-kinds without contrib)")
	fs.BoolVar(&o.Processor, "processor", o.Processor, "run tailsift's processor (otlp -> tailsift -> otlp_grpc) in the side-by-side rounds (false: only the fast path, contrib and the baseline; needs -fastpath or -contrib)")
	fs.BoolVar(&o.Fastpath, "fastpath", o.Fastpath, "also run the fast path (tailsift receiver -> otlp_grpc, no processor) in every side-by-side round")
	fs.Int64Var(&o.Seed, "seed", o.Seed, "workload seed")
	fs.StringVar(&o.Shape, "shape", "bench", "loadgen --shape: bench (the benchmark's own workload) or sdk (requests as the OpenTelemetry Go SDK sends them: one service's batch per request)")
	fs.DurationVar(&o.Wait, "wait", 0, "decision wait after the root span, the same for every collector: tailsift's completion.quiet, contrib's decision_wait_after_root_received and the sink's --completion (0: 2s for -shape bench, 6s for -shape sdk, whose services send their batches up to 5 s after a span ends)")
	fs.BoolVar(&o.Learn, "learn", o.Learn, "tailsift's learned quiet per route (completion.learn.enabled, on by default); false: every trace waits -wait after its latest span, as contrib waits after the root")
	fs.StringVar(&o.FastpathOut, "fastpath-exporter", o.FastpathOut, "the fast path's exporter: otlp_grpc (zstd, to the sink, scored) or debug (verbosity basic, silenced by the warn log level: outputs nothing, like the otlp -> nop baseline; nothing is scored)")
	fs.DurationVar(&o.Idle, "idle", o.Idle, "idle CPU measurement before each side-by-side run's load (0: 1.5 s)")
	fs.BoolVar(&o.Sat, "sat", o.Sat, "run the saturation search")
	fs.Float64Var(&o.SatStart, "sat-start", o.SatStart, "first saturation rate, spans/s")
	fs.Float64Var(&o.SatFactor, "sat-factor", o.SatFactor, "rate step factor")
	fs.Float64Var(&o.SatMax, "sat-max", o.SatMax, "highest rate tried")
	fs.IntVar(&o.SatMaxSteps, "sat-max-steps", o.SatMaxSteps, "most rates tried per collector")
	fs.DurationVar(&o.SatWarmup, "sat-warmup", o.SatWarmup, "saturation step warm-up")
	fs.DurationVar(&o.SatWindow, "sat-window", o.SatWindow, "saturation step counted window")
	fs.StringVar(&o.SatKinds, "sat-kinds", "tailsift,contrib", "collectors the saturation search runs")
	fs.IntVar(&o.SatRetry, "sat-retry", o.SatRetry, "repeat a failing step this many times before calling it saturated")
	fs.StringVar(&o.Profile, "profile", o.Profile, "CPU profile of tailsift in an extra run at -rate: auto (only when a target is missed), always, never")
	fs.StringVar(&o.ProfileKind, "profile-kind", o.ProfileKind, "the collector -profile profiles: tailsift (the processor), fastpath, baseline (otlp -> nop) or contrib")
	fs.StringVar(&o.Replot, "replot", "", "run nothing: re-render the markdown and the SVG from a results JSON written earlier (into -out)")
	fs.IntVar(&o.ProfileSeconds, "profile-seconds", o.ProfileSeconds, "profile length (needs -window >= it)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %v", fs.Args())
	}
	if o.Pairs < 0 || (o.Pairs == 0 && !o.Sat) || o.Rate < 0 || o.Window <= 0 || o.SatFactor <= 1 {
		return o, errors.New("need -pairs >= 1 (or 0 with -sat), -rate >= 0, -window > 0, -sat-factor > 1")
	}
	if !slices.Contains([]kind{kindTailsift, kindFastpath, kindBaseline, kindContrib}, kind(o.ProfileKind)) {
		return o, fmt.Errorf("-profile-kind must be tailsift, fastpath, baseline or contrib, not %q", o.ProfileKind)
	}
	if o.FastpathOut != "otlp_grpc" && o.FastpathOut != "debug" {
		return o, fmt.Errorf("-fastpath-exporter must be otlp_grpc or debug, not %q", o.FastpathOut)
	}
	if !o.Processor && !o.Fastpath && !o.Contrib && o.Pairs > 0 {
		return o, errors.New("-processor=false needs -fastpath or -contrib in the side-by-side rounds")
	}
	if o.Store != "off" && o.Store != "zstd" && o.Store != "s2" {
		return o, fmt.Errorf("-store must be off, zstd or s2, not %q", o.Store)
	}
	if !o.Contrib && o.Rate == 0 && o.Pairs > 0 {
		return o, errors.New("-contrib=false needs a fixed -rate (the automatic one comes from contrib's saturation)")
	}
	if o.Rate == 0 && !o.Sat && o.Pairs > 0 {
		return o, errors.New("-rate 0 (automatic) needs the saturation search (-sat)")
	}
	return o, nil
}

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

func realMain(args []string, stdout, stderr io.Writer) int {
	o, err := parseOptions(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "bench-e2e:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var rep *report
	if o.Replot != "" {
		rep, err = loadReport(o.Replot)
		if err == nil && o.OutDir != "" {
			rep.Opts.OutDir = o.OutDir
		}
		if err == nil && o.ContribSatRef > 0 {
			rep.Opts.ContribSatRef = o.ContribSatRef
		}
		if err == nil && rep.Opts.OutDir == "" {
			rep.Opts.OutDir = filepath.Dir(o.Replot)
		}
	} else {
		rep, err = runSuite(ctx, o, stderr)
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench-e2e:", err)
		return 1
	}
	md := rep.markdown()
	fmt.Fprint(stdout, md)
	if !o.NoWrite {
		if err := rep.write(md); err != nil {
			fmt.Fprintln(stderr, "bench-e2e:", err)
			return 1
		}
	}
	return 0
}

// findRepo walks up from the working directory to the main module's root.
func findRepo() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/tailsift/tailsift\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repository root (go.mod of github.com/tailsift/tailsift) not found; pass -repo")
		}
		dir = parent
	}
}

// buildTool builds a command of the main module into dir.
func buildTool(repo, pkg, out string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "GOPROXY="+goproxy())
	b, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}

func goproxy() string {
	if v := os.Getenv("GOPROXY"); v != "" {
		return v
	}
	return "https://proxy.golang.org"
}

func exists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir()
}

// setup resolves binaries and the work directory.
func setup(o *options, logf func(string, ...any)) (*env, func(), error) {
	if o.Repo == "" {
		r, err := findRepo()
		if err != nil {
			return nil, nil, err
		}
		o.Repo = r
	}
	if o.OutDir == "" {
		o.OutDir = filepath.Join(o.Repo, "benchmarks", "results")
	}
	if o.TailsiftBin == "" {
		o.TailsiftBin = filepath.Join(o.Repo, "bin", "otelcol-tailsift")
	}
	if o.ContribBin == "" {
		o.ContribBin = filepath.Join(o.Repo, "bin", "otelcol-contrib-bench")
	}
	configs, err := collectorTemplates(filepath.Join(o.Repo, "testdata", "collector"))
	if err != nil {
		return nil, nil, err
	}
	work, err := os.MkdirTemp("", "bench-e2e-")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() {
		if !o.Keep {
			_ = os.RemoveAll(work)
		}
	}
	e := &env{tailsiftBin: o.TailsiftBin, contribBin: o.ContribBin, workDir: work, keep: o.Keep, logf: logf, rescue: o.Rescue, configs: configs}
	if o.Store != "off" {
		e.store = o.Store
	}
	if p, err := exec.LookPath("taskset"); err == nil {
		e.taskset = p
	} else {
		logf("WARNING: taskset (util-linux) not found: collectors, loadgen and sink run UNPINNED")
	}
	for _, t := range []struct {
		flag *string
		pkg  string
		name string
	}{{&o.LoadgenBin, "./cmd/tailsift-loadgen", "tailsift-loadgen"}, {&o.SinkBin, "./cmd/tailsift-sink", "tailsift-sink"}} {
		if *t.flag == "" {
			out := filepath.Join(work, "bin", t.name)
			logf("building %s", t.pkg)
			if err := buildTool(o.Repo, t.pkg, out); err != nil {
				cleanup()
				return nil, nil, err
			}
			*t.flag = out
		}
	}
	e.loadgenBin, e.sinkBin = o.LoadgenBin, o.SinkBin
	e.shape = o.Shape
	e.completion = completionSetting{Wait: o.decisionWait(), NoLearn: !o.Learn, FastpathDebug: o.FastpathOut == "debug"}
	return e, cleanup, nil
}

func runSuite(ctx context.Context, o options, stderr io.Writer) (*report, error) {
	logf := func(format string, args ...any) {
		fmt.Fprintf(stderr, "%s bench-e2e: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
	e, cleanup, err := setup(&o, logf)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	defer e.killAll()
	if !exists(o.TailsiftBin) {
		return nil, fmt.Errorf("%s not found: run `make build`", o.TailsiftBin)
	}
	if !exists(o.ContribBin) && (o.Contrib || (o.Sat && strings.Contains(o.SatKinds, string(kindContrib)))) {
		return nil, fmt.Errorf("%s not found: run `make bench-contrib-dist`", o.ContribBin)
	}
	rep := &report{Opts: o, Machine: readMachine(runtime.Version()), Started: time.Now(), Pinned: e.taskset != "",
		SatRate: map[kind]satOutcome{}, SourceSum: sourceSum(o.Repo)}
	rep.LoadAvg[0] = loadAvg()
	rep.Commands = append(rep.Commands, "cd benchmarks && go run ./cmd/bench-e2e "+strings.Join(os.Args[1:], " "))
	if o.Fastpath && o.FastpathOut == "debug" {
		rep.Notes = append(rep.Notes, "-fastpath-exporter debug: the fast path exported its kept spans into the debug exporter (silenced), not otlp_grpc: it outputs nothing, as the otlp -> nop baseline, so its sink figures are empty.")
	}
	if !rep.Pinned {
		rep.Notes = append(rep.Notes, "taskset was not found: every process ran UNPINNED, so the collector competed with the load generator for both CPUs.")
	}
	do := func(spec runSpec) (*runResult, error) {
		logf("run %-8s %-8s %6.0f spans/s: warm-up %v, window %v", spec.Label, spec.Kind, spec.Rate, spec.Warmup, spec.Window)
		r, err := e.run(ctx, spec)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", spec.Label, spec.Kind, err)
		}
		p99 := "-"
		if r.P99AddedMs != nil {
			p99 = fmt.Sprintf("%.0f ms", *r.P99AddedMs)
		}
		logf("  -> %.0f spans/s accepted, %.2f µs/span, %.2f cores, RSS mean %.0f MB, p99 added %s, other load on CPU0 %.2f%s",
			r.WindowAcceptedRate, r.CPUMicrosPerSpan, r.CPUUtil, r.RSSMeanMB, p99, r.OtherCPU0, problems(r))
		if o.Keep {
			logf("  kept %s", r.Dir)
		}
		return r, nil
	}

	// 1. Saturation: both ladders interleaved, rate by rate.
	if o.Sat {
		active := map[kind]bool{}
		for _, k := range strings.Split(o.SatKinds, ",") {
			switch kind(strings.TrimSpace(k)) {
			case kindTailsift, kindContrib, kindFastpath:
				active[kind(strings.TrimSpace(k))] = true
			case "":
			default:
				return nil, fmt.Errorf("-sat-kinds: unknown collector %q", k)
			}
		}
		tried := map[kind]bool{}
		for _, k := range ladderKinds {
			tried[k] = active[k]
		}
		anyActive := func() bool { return active[kindTailsift] || active[kindContrib] || active[kindFastpath] }
		steps := 0
		for rate := o.SatStart; rate <= o.SatMax*1.0001 && anyActive() && steps < o.SatMaxSteps; rate *= o.SatFactor {
			steps++
			rate = math.Round(rate/100) * 100
			for _, k := range ladderKinds {
				if !active[k] {
					continue
				}
				out := rep.SatRate[k]
				out.StepsTried++
				var st *satStep
				for try := 0; try <= o.SatRetry; try++ {
					r, err := do(runSpec{Kind: k, Label: fmt.Sprintf("sat%d", steps), Rate: rate, Warmup: o.SatWarmup,
						Window: o.SatWindow, Drain: 2 * time.Second, Seed: o.Seed + int64(try)})
					if err != nil {
						return nil, err
					}
					st = judge(r)
					rep.Sat = append(rep.Sat, st)
					logf("  saturation %s %.0f: pass=%v %s", k, rate, st.Pass, st.Reason)
					if st.Pass || strings.HasPrefix(st.Reason, "loadgen") {
						break
					}
				}
				switch {
				case st.Pass:
					out.Rate = rate
				case strings.HasPrefix(st.Reason, "loadgen"):
					out.LoadgenCap = true
					active[k] = false
				default:
					out.FirstFail, out.FailReason = rate, st.Reason
					active[k] = false
				}
				rep.SatRate[k] = out
			}
		}
		for _, k := range ladderKinds {
			if out := rep.SatRate[k]; tried[k] && out.FirstFail == 0 && !out.LoadgenCap {
				rep.Notes = append(rep.Notes, fmt.Sprintf("%s did not saturate up to %.0f spans/s (-sat-max / -sat-max-steps reached).", k, out.Rate))
			}
		}
	}
	if o.Rate == 0 && o.Pairs > 0 {
		sr := rep.SatRate[kindContrib].Rate
		o.Rate = math.Min(o.RateCap, math.Floor(0.7*sr/1000)*1000)
		if o.Rate < 1000 {
			o.Rate = 1000
		}
		rep.Opts.Rate = o.Rate
		rep.Notes = append(rep.Notes, fmt.Sprintf("Side-by-side rate chosen automatically: 70 %% of contrib's measured saturation (%.0f spans/s), rounded down to 1000, at most %.0f: %.0f spans/s.", sr, o.RateCap, o.Rate))
		logf("side-by-side rate: %.0f spans/s", o.Rate)
	}

	// 2. Side by side.
	for i := 1; i <= o.Pairs; i++ {
		order := []kind{kindTailsift, kindContrib}
		if o.Fastpath {
			order = []kind{kindTailsift, kindFastpath, kindContrib}
		}
		if !o.Contrib {
			order = slices.DeleteFunc(order, func(k kind) bool { return k == kindContrib })
		}
		if !o.Processor {
			order = slices.DeleteFunc(order, func(k kind) bool { return k == kindTailsift })
		}
		if i%2 == 0 {
			slices.Reverse(order)
		}
		if o.Baseline {
			order = append(order, kindBaseline)
		}
		for _, k := range order {
			r, err := do(runSpec{Kind: k, Label: fmt.Sprintf("pair%d", i), Rate: o.Rate, Warmup: o.Warmup,
				Window: o.Window, Drain: o.Drain, Seed: o.Seed, Idle: o.Idle})
			if err != nil {
				return nil, err
			}
			rep.Side = append(rep.Side, r)
		}
	}

	// 3. Profile of tailsift when it misses a target (or always).
	if o.Profile == "always" || (o.Profile == "auto" && len(rep.targets().missed()) > 0) {
		win := max(o.Window, time.Duration(o.ProfileSeconds+2)*time.Second)
		prof := filepath.Join(e.workDir, o.ProfileKind+"-cpu.pprof")
		if !o.NoWrite {
			if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
				return nil, err
			}
			prof = filepath.Join(o.OutDir, rep.fileBase()+"-"+o.ProfileKind+"-cpu.pprof")
		}
		r, err := do(runSpec{Kind: kind(o.ProfileKind), Label: "profile", Rate: o.Rate, Warmup: o.Warmup, Window: win,
			Drain: o.Drain, Seed: o.Seed, ProfileSeconds: o.ProfileSeconds, ProfileOut: prof})
		if err != nil {
			return nil, err
		}
		rep.Profile = r
		if r.ProfileFile != "" {
			bin := o.TailsiftBin
			if o.ProfileKind == string(kindBaseline) || o.ProfileKind == string(kindContrib) {
				bin = o.ContribBin
			}
			out, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=30", bin, r.ProfileFile).CombinedOutput()
			if err != nil {
				rep.Notes = append(rep.Notes, fmt.Sprintf("go tool pprof failed: %v", err))
			}
			rep.ProfTop = string(out)
		}
	}

	rep.Finished = time.Now()
	rep.LoadAvg[1] = loadAvg()
	return rep, nil
}

// ladderKinds are the collectors a saturation ladder can run, in step order.
var ladderKinds = []kind{kindTailsift, kindContrib, kindFastpath}

func problems(r *runResult) string {
	if len(r.Problems) == 0 {
		return ""
	}
	return "; PROBLEMS: " + strings.Join(r.Problems, "; ")
}
