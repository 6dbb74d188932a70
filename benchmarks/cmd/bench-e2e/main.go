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
	"sync"
	"syscall"
	"time"
)

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
	if o.BBin == "" && len(o.BSet) > 0 {
		o.BBin = o.TailsiftBin // an A/B of the settings alone
	}
	bSets, err := parseBSets(o.BSet)
	if err != nil {
		return nil, nil, err
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
	e := &env{tailsiftBin: o.TailsiftBin, contribBin: o.ContribBin, bBin: o.BBin, bSets: bSets, workDir: work, keep: o.Keep, logf: logf, rescue: o.Rescue, configs: configs}
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
	e.loadgenTick = o.LoadgenTick
	e.scrapeEvery = o.ScrapeEvery
	e.gctrace = o.GCTrace
	e.completion = completionSetting{Wait: o.decisionWait(), NoLearn: !o.Learn, FastpathDebug: o.FastpathOut == "debug", WireOut: o.OutputExp == "tailsift", BatchTimeout: o.BatchTimeout, FastPercent: o.FastPercent}
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
	if o.BBin != "" && !exists(o.BBin) {
		return nil, fmt.Errorf("-b-bin %s not found", o.BBin)
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
	if o.OutputExp == "tailsift" {
		rep.Notes = append(rep.Notes, "-output-exporter tailsift: tailsift's processor and fast path sent kept spans through output::exporter, as bytes, to a tailsift exporter (zstd, no linger) whose one member was the sink; contrib still exports through otlp_grpc.")
	}
	if o.Shape == "sdk" && o.Pairs > 0 && o.Warmup < sdkFill(o.decisionWait()) {
		rep.Notes = append(rep.Notes, fmt.Sprintf("-warmup %v is shorter than the SDK shape's fill time (%v: 5 s batching delay + %v decision wait + 1 s ticker): the buffered spans and the heap still grow during the window, so its CPU figures depend on where the GC cycles fall (README \"Measuring the SDK shape\").", o.Warmup, sdkFill(o.decisionWait()), o.decisionWait()))
	}
	if o.ScrapeEvery != scrapeEvery {
		rep.Notes = append(rep.Notes, fmt.Sprintf("-scrape-every %v: the runner scraped each collector's metrics every %v in the window instead of every %v; the scrapes' CPU is counted in the collector's.", o.ScrapeEvery, o.ScrapeEvery, scrapeEvery))
	}
	if o.LoadgenTick != spreadTick {
		rep.Notes = append(rep.Notes, fmt.Sprintf("-loadgen-tick %v: the loadgen sent the requests due within each %v together, not each at its scheduled time; at 50ms that is clumps 20 times a second, in step with tailsift's 50 ms wake-up grid, which flatters tailsift's CPU per span (README \"Arrivals in clumps\").", o.LoadgenTick, o.LoadgenTick))
	}
	if o.BatchTimeout > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("-output-batch-timeout %v: tailsift's processor and fast path ran with output.batch_timeout %v (the default is 50ms): fewer, larger export requests, each kept trace waiting up to that long.", o.BatchTimeout, o.BatchTimeout))
	}
	if o.BBin != "" {
		rep.Notes = append(rep.Notes, fmt.Sprintf("-b-bin %s%s: every round also ran tailsift's collectors from this build (variant b); the side-by-side figures are -tailsift-bin's (variant a), and \"A/B\" compares the two round by round.", o.BBin, bSetNote(o.BSet)))
	}
	if o.Concurrent {
		rep.Notes = append(rep.Notes, "-concurrent: the collectors of each side-by-side round ran at the same time, all on CPU 0, each with its own loadgen and sink on CPU 1 (the same seed, so the same traffic), their loads started together; so \"other load on CPU 0\" is mostly the other collectors, and each collector's CPU and latency include sharing CPU 0 and its caches with them.")
	}
	if !rep.Pinned {
		rep.Notes = append(rep.Notes, "taskset was not found: every process ran UNPINNED, so the collector competed with the load generator for both CPUs.")
	}
	do := func(ctx context.Context, spec runSpec) (*runResult, error) {
		name := runName(spec.Kind, spec.Variant)
		logf("run %-8s %-8s %6.0f spans/s: warm-up %v, window %v", spec.Label, name, spec.Rate, spec.Warmup, spec.Window)
		r, err := e.run(ctx, spec)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", spec.Label, name, err)
		}
		p99 := "-"
		if r.P99AddedMs != nil {
			p99 = fmt.Sprintf("%.0f ms", *r.P99AddedMs)
		}
		logf("  -> %s %s: %.0f spans/s accepted, %.2f µs/span, %.2f cores, RSS mean %.0f MB, p99 added %s, other load on CPU0 %.2f%s",
			spec.Label, name, r.WindowAcceptedRate, r.CPUMicrosPerSpan, r.CPUUtil, r.RSSMeanMB, p99, r.OtherCPU0, problems(r))
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
					r, err := do(ctx, runSpec{Kind: k, Label: fmt.Sprintf("sat%d", steps), Rate: rate, Warmup: o.SatWarmup,
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
		base := runSpec{Label: fmt.Sprintf("pair%d", i), Rate: o.Rate, Warmup: o.Warmup,
			Window: o.Window, Drain: o.Drain, Seed: o.Seed, Idle: o.Idle}
		specs := roundSpecs(base, order, o.BBin != "", i%2 == 0)
		var rs []*runResult
		if o.Concurrent {
			if rs, err = concurrently(ctx, specs, do); err != nil {
				return nil, err
			}
		} else {
			for _, spec := range specs {
				r, err := do(ctx, spec)
				if err != nil {
					return nil, err
				}
				rs = append(rs, r)
			}
		}
		for _, r := range rs {
			if r.Variant == "b" {
				rep.SideB = append(rep.SideB, r)
			} else {
				rep.Side = append(rep.Side, r)
			}
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
		r, err := do(ctx, runSpec{Kind: kind(o.ProfileKind), Label: "profile", Rate: o.Rate, Warmup: o.Warmup, Window: win,
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

// roundSpecs are a round's runs, base with each kind in order: with b,
// each tailsift kind (processor, fast path) is followed by its variant b,
// or, in the rounds that swap (swap, every other one), preceded by it, so
// that in sequential rounds neither build always runs first.
func roundSpecs(base runSpec, order []kind, b, swap bool) []runSpec {
	var specs []runSpec
	for _, k := range order {
		a := base
		a.Kind = k
		if !b || !k.isTailsift() {
			specs = append(specs, a)
			continue
		}
		vb := a
		vb.Variant = "b"
		if swap {
			specs = append(specs, vb, a)
		} else {
			specs = append(specs, a, vb)
		}
	}
	return specs
}

// concurrently performs the runs of specs at the same time, their loads
// started together (runSpec.Start), and returns their results in the
// order of specs. A run that fails cancels the others.
func concurrently(ctx context.Context, specs []runSpec, do func(context.Context, runSpec) (*runResult, error)) ([]*runResult, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	start := newStartBarrier(len(specs))
	rs := make([]*runResult, len(specs))
	var wg sync.WaitGroup
	for j := range specs {
		specs[j].Start = start
		wg.Go(func() {
			r, err := do(ctx, specs[j])
			if err != nil {
				cancel(err)
				return
			}
			rs[j] = r
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return rs, nil
}

// ladderKinds are the collectors a saturation ladder can run, in step order.
var ladderKinds = []kind{kindTailsift, kindContrib, kindFastpath}

func problems(r *runResult) string {
	if len(r.Problems) == 0 {
		return ""
	}
	return "; PROBLEMS: " + strings.Join(r.Problems, "; ")
}
