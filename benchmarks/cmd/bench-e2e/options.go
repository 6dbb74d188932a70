package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
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
	// BBin, when set, is a second tailsift build: every round also runs
	// each of its tailsift collectors (processor, fast path) from it, as
	// variant "b", so that a change is measured against the build before
	// it in the same rounds (README "Same-round A/B of two builds").
	BBin string
	// BSet are -b-set's settings, as given (each checked by parseBSet):
	// variant b's collector config gets them (with -tailsift-bin's binary
	// when -b-bin is not set).
	BSet []string

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
	Fastpath      bool // also run the tailsift receiver (kind fastpath) in every side-by-side round
	// Concurrent runs a round's collectors at the same time, each with its
	// own loadgen and sink, their loads started together (startBarrier), so
	// that the host's speed, which varies second by second on this VM, is
	// the same for all of them (README "Concurrent rounds").
	Concurrent   bool
	Rescue       time.Duration // tailsift's rescue.window (processor and fast path); 0: off, the default config
	Store        string        // tailsift's durable store (processor and fast path): off, zstd, s2 or s2col
	Contrib      bool          // run contrib in the side-by-side rounds
	Processor    bool          // run tailsift's processor (kind tailsift) in the side-by-side rounds
	Seed         int64
	Shape        string        // loadgen --shape
	Wait         time.Duration // decision wait after the root (tailsift quiet, contrib after-root); 0: by shape
	Learn        bool          // tailsift's completion.learn.enabled (the default config: true)
	FastpathOut  string        // the fast path's exporter: otlp_grpc or debug
	OutputExp    string        // tailsift's output, processor and fast path: otlp_grpc, or tailsift (output::exporter)
	BatchTimeout time.Duration // tailsift's output.batch_timeout (processor and fast path); 0: the default
	FastPercent  float64       // the probabilistic policy's sampling_percentage for fast successful traces
	Idle         time.Duration
	GCTrace      bool // run the collectors with GODEBUG=gctrace=1, count GC cycles per window
	// LoadgenTick is the loadgen's --tick: requests due within it leave
	// together. 1 ms sends each at its scheduled time, as independent
	// clients would (the loadgen's own default since 2026-12-06); 50 ms,
	// the default before, sends them in clumps 20 times a second, in step
	// with tailsift's 50 ms wake-up grid (README "Arrivals in clumps").
	LoadgenTick time.Duration
	// ScrapeEvery is how often the runner scrapes a collector's metrics
	// in the counted window (for the CPU series and the buffer's size);
	// each scrape costs the collector CPU that the window counts.
	ScrapeEvery time.Duration

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

// scrapeEvery is -scrape-every's default (a report run with another
// says so in its notes).
const scrapeEvery = 2 * time.Second

// spreadTick is -loadgen-tick's default: each request leaves at its
// scheduled time (a report run with another says so in its notes).
const spreadTick = time.Millisecond

func presets(mode string) (options, error) {
	o := options{Mode: mode, Seed: 1, Baseline: true, Store: "off", Contrib: true, Processor: true, Learn: true, FastpathOut: "otlp_grpc", OutputExp: "otlp_grpc", FastPercent: fastPercentage, SatFactor: 1.25, SatMax: 400_000, SatMaxSteps: 18,
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

// The SDK shape's side-by-side defaults (applyShapeDefaults). At 10 000
// spans/s its collectors use 0.02-0.04 cores, so a 20 s window is 0.4-0.8 s
// of CPU and a fixed cost (the runner's scrapes, timers) is a large share;
// and a span is held for the batching delay (up to 5 s) plus the decision
// wait (6 s), so after a 5 s warm-up the buffered set and the heap still
// grow through the window. At 20 000 spans/s every collector keeps up on a
// shared CPU 0; at 40 000 contrib's exporter queue overflowed there (p99
// added 24 s) though the loadgen kept up (1.0 µs/span, lag < 0.1 s).
// After a 15 s warm-up the processor's cost still fell through the window
// (2nd ÷ 1st half 0.75-0.78, contrib's 1.05), so the warm-up is 30 s.
// README "Measuring the SDK shape", "Processor path, round 4".
const (
	sdkRate   = 20000
	sdkWarmup = 30 * time.Second
	sdkWindow = 30 * time.Second
)

// sdkFill is how long the SDK shape takes to reach its steady buffered set:
// the longest batching delay plus the decision wait plus contrib's ticker.
func sdkFill(wait time.Duration) time.Duration {
	return 5*time.Second + wait + contribTick
}

// applyShapeDefaults raises the side-by-side defaults for -shape sdk: the
// rate (quick mode), the warm-up and the window, each only when its flag
// was not given (set holds the flags given).
func (o *options) applyShapeDefaults(set map[string]bool) {
	if o.Shape != "sdk" {
		return
	}
	if !set["rate"] && o.Mode == "quick" {
		o.Rate = sdkRate
	}
	if !set["warmup"] {
		o.Warmup = max(o.Warmup, sdkWarmup)
	}
	if !set["window"] {
		o.Window = max(o.Window, sdkWindow)
	}
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
	fs.StringVar(&o.BBin, "b-bin", "", "a second tailsift build (variant b): each round also runs its processor and fast path (those the round runs), beside -tailsift-bin's; the report compares them round by round (use with -concurrent)")
	fs.Func("b-set", "key.path=value (YAML), repeatable: variant b's collector config gets it, e.g. receivers.tailsift.output.batch_timeout=200ms for the fast path (a b run whose config lacks the path's parent fails, so give the processor's settings with -fastpath=false and the fast path's with -processor=false); with no -b-bin, b is -tailsift-bin's build, so the A/B is of the setting alone", func(v string) error {
		if _, err := parseBSet(v); err != nil {
			return err
		}
		o.BSet = append(o.BSet, v)
		return nil
	})
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
	fs.StringVar(&o.Store, "store", o.Store, "tailsift's durable store for the processor and the fast path (the tailsift extension, storage: tailsift, in the run's directory): off, zstd, s2 or s2col. Compare the store's cost by alternating runs with -store off and on (see README, \"Durable store\")")
	fs.BoolVar(&o.Contrib, "contrib", o.Contrib, "run contrib in the side-by-side rounds (false: tailsift only, no contrib binary needed; needs -sat=false or -sat-kinds without contrib)")
	fs.BoolVar(&o.Processor, "processor", o.Processor, "run tailsift's processor (otlp -> tailsift -> otlp_grpc) in the side-by-side rounds (false: only the fast path, contrib and the baseline; needs -fastpath or -contrib)")
	fs.BoolVar(&o.Concurrent, "concurrent", o.Concurrent, "run each side-by-side round's collectors at the same time on CPU 0, each with its own loadgen and sink on CPU 1, their loads started together: every collector of a round is measured over the same seconds of the host")
	fs.BoolVar(&o.Fastpath, "fastpath", o.Fastpath, "also run the fast path (tailsift receiver -> otlp_grpc, no processor) in every side-by-side round")
	fs.Int64Var(&o.Seed, "seed", o.Seed, "workload seed")
	fs.DurationVar(&o.LoadgenTick, "loadgen-tick", spreadTick, "the loadgen's --tick: requests due within it are sent together. 1ms sends each at its scheduled time, as independent clients do; 50ms (the loadgen's default, and every run's, before 2026-12-06) sends them in clumps 20 times a second")
	fs.DurationVar(&o.ScrapeEvery, "scrape-every", scrapeEvery, "how often the runner scrapes each collector's metrics in the counted window (its CPU series, the buffer's size). Every scrape costs the collector CPU that the window counts, which weighs most at low rates; a Prometheus server commonly scrapes every 15-60 s")
	fs.StringVar(&o.Shape, "shape", "bench", "loadgen --shape: bench (the benchmark's own workload) or sdk (requests as the OpenTelemetry Go SDK sends them: one service's batch per request)")
	fs.DurationVar(&o.Wait, "wait", 0, "decision wait after the root span, the same for every collector: tailsift's completion.quiet, contrib's decision_wait_after_root_received and the sink's --completion (0: 2s for -shape bench, 6s for -shape sdk, whose services send their batches up to 5 s after a span ends)")
	fs.BoolVar(&o.Learn, "learn", o.Learn, "tailsift's learned quiet per route (completion.learn.enabled, on by default); false: every trace waits -wait after its latest span, as contrib waits after the root")
	fs.DurationVar(&o.BatchTimeout, "output-batch-timeout", o.BatchTimeout, "tailsift's output.batch_timeout, processor and fast path (0: the default, 50ms): how long a kept trace waits for others to share its export request")
	fs.Float64Var(&o.FastPercent, "fast-percent", o.FastPercent, "the probabilistic policy's sampling_percentage, the same for every collector and the sink's --fast-probability: the share of fast successful traces kept (errors and slow traces are all kept whatever it is); 5 is the benchmark's, 0.01 about what production tail sampling keeps")
	fs.StringVar(&o.OutputExp, "output-exporter", o.OutputExp, "where tailsift's processor and fast path send kept spans: otlp_grpc (pdata, zstd, to the sink) or tailsift (output::exporter: the bytes the buffer holds, to a tailsift exporter whose one member is the sink, zstd, no linger)")
	fs.StringVar(&o.FastpathOut, "fastpath-exporter", o.FastpathOut, "the fast path's exporter: otlp_grpc (zstd, to the sink, scored) or debug (verbosity basic, silenced by the warn log level: outputs nothing, like the otlp -> nop baseline; nothing is scored)")
	fs.BoolVar(&o.GCTrace, "gctrace", true, "run the collectors with GODEBUG=gctrace=1 and report the GC cycles and their CPU in each run's window (one line on stderr per cycle)")
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
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	o.applyShapeDefaults(set)
	if o.LoadgenTick <= 0 {
		return o, fmt.Errorf("-loadgen-tick must be > 0, not %v", o.LoadgenTick)
	}
	if o.ScrapeEvery <= 0 {
		return o, fmt.Errorf("-scrape-every must be > 0, not %v", o.ScrapeEvery)
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
	if o.OutputExp != "otlp_grpc" && o.OutputExp != "tailsift" {
		return o, fmt.Errorf("-output-exporter must be otlp_grpc or tailsift, not %q", o.OutputExp)
	}
	if o.OutputExp == "tailsift" && o.FastpathOut == "debug" {
		return o, errors.New("-output-exporter tailsift and -fastpath-exporter debug: the fast path has one output; drop one of them")
	}
	if !o.Processor && !o.Fastpath && !o.Contrib && o.Pairs > 0 {
		return o, errors.New("-processor=false needs -fastpath or -contrib in the side-by-side rounds")
	}
	if (o.BBin != "" || len(o.BSet) > 0) && !o.Processor && !o.Fastpath {
		return o, errors.New("-b-bin and -b-set need -processor or -fastpath: variant b runs tailsift's collectors")
	}
	if o.BatchTimeout < 0 || o.BatchTimeout > time.Minute {
		return o, fmt.Errorf("-output-batch-timeout must be between 0 and 1m, not %v", o.BatchTimeout)
	}
	if o.FastPercent <= 0 || o.FastPercent > 100 {
		return o, fmt.Errorf("-fast-percent must be in (0, 100], not %g", o.FastPercent)
	}
	if o.Store != "off" && o.Store != "zstd" && o.Store != "s2" && o.Store != "s2col" {
		return o, fmt.Errorf("-store must be off, zstd, s2 or s2col, not %q", o.Store)
	}
	if !o.Contrib && o.Rate == 0 && o.Pairs > 0 {
		return o, errors.New("-contrib=false needs a fixed -rate (the automatic one comes from contrib's saturation)")
	}
	if o.Rate == 0 && !o.Sat && o.Pairs > 0 {
		return o, errors.New("-rate 0 (automatic) needs the saturation search (-sat)")
	}
	return o, nil
}
