// Command tailsift-loadgen offers a realistic OTLP trace workload at an
// open-loop rate over OTLP gRPC or HTTP, cheaply: requests are built from
// pre-encoded span templates patched in place. See README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/tailsift/tailsift/internal/workload"
)

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("tailsift-loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.Endpoint, "endpoint", "", "receiver host:port (default 127.0.0.1:4317 for grpc, 127.0.0.1:4318 for http; http also takes a full URL)")
	fs.StringVar(&o.Protocol, "protocol", "grpc", "grpc or http (POST /v1/traces, application/x-protobuf)")
	fs.Float64Var(&o.Rate, "rate", 20000, "offered spans per second (open loop)")
	fs.DurationVar(&o.Duration, "duration", 60*time.Second, "how long traces are started; pending spans are then drained (see --drain)")
	fs.Int64Var(&o.Seed, "seed", 1, "workload seed (same seed and rate: same request stream)")
	fs.Float64Var(&o.ErrorPct, "error-pct", 2, "percent of error traces, in [0, 50]; the same as --mix error=N (given both, they must agree)")
	fs.StringVar(&o.MixSpec, "mix", "", "class mix as `key=percent,...`, any subset of error, slow, anomaly, huge, late "+
		"(default "+workload.DefaultMix().String()+"). "+
		"error, anomaly, huge: percent of all traces. slow: percent of the other traces given a 2-10s root; "+
		"class slow also gets the log-normal root's own tail >= 1s (1% of the rest). "+
		"late: percent of eligible non-root spans sent 10-30s late (0.6 is about 0.5% of all spans). "+
		"error+slow+anomaly+huge must be <= 100; the rest is fast")
	fs.IntVar(&o.Connections, "connections", 4, "concurrent connections")
	fs.IntVar(&o.Inflight, "inflight", 0, "concurrent requests (default 4 per connection for grpc, 1 per connection for http)")
	fs.StringVar(&o.Manifest, "manifest", "", "write a JSON Lines manifest of every trace sent to this file")
	fs.StringVar(&o.SummaryJSON, "summary-json", "", "write the summary as JSON to this file")
	fs.IntVar(&o.Templates, "templates", 1000, "trace templates per class (huge: at most 4)")
	fs.BoolVar(&o.Quiet, "quiet", false, "no live display")
	fs.BoolVar(&o.Retry, "retry", false, "retry retryable failures (up to 5 times, backoff 50ms..1s); default is open loop, no retry")
	fs.DurationVar(&o.Timeout, "timeout", 10*time.Second, "per-request timeout")
	fs.StringVar(&o.Shape, "shape", workload.ShapeBench, "request shape: bench (agent-like batches mixing services, 10 attributes per span) or sdk (what the OpenTelemetry Go SDK sends: one service's BatchSpanProcessor batch per request, one ResourceSpans, ~16 spans per trace over 2-6 services, 4 attributes, batches of up to 512 spans flushed every 5s)")
	fs.DurationVar(&o.Linger, "linger", 0, "override every service's batching delay (default: each service has its own, 0.2-5s)")
	fs.DurationVar(&o.Drain, "drain", 40*time.Second, "after --duration, keep sending pending spans on schedule this long, then send the rest at once")
	fs.DurationVar(&o.Tick, "tick", time.Millisecond, "dispatch granularity: requests due within a tick are sent together. The default sends each request at its scheduled time, as independent clients do; a coarser tick (50ms) saves the loadgen's wakeups but sends clumps, which a collector with a timer grid of its own can fall in step with")
	fs.IntVar(&o.Procs, "procs", 1, "GOMAXPROCS for the loadgen (0: all CPUs); one is plenty up to ~100k spans/s and leaves the CPUs to the system under test. The GOMAXPROCS environment variable wins unless --procs is given")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the run to this file")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	procsSet := false
	fs.Visit(func(f *flag.Flag) {
		procsSet = procsSet || f.Name == "procs"
		o.errorPctSet = o.errorPctSet || f.Name == "error-pct"
	})
	if !procsSet && os.Getenv("GOMAXPROCS") != "" {
		o.Procs = 0
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	return o, o.validate()
}

func realMain(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		_, _ = fmt.Fprintln(stderr, "tailsift-loadgen:", err)
		return 2
	}
	// First interrupt: stop starting traces and send what is pending now.
	// Second interrupt: default behaviour (exit).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	if o.Procs > 0 {
		runtime.GOMAXPROCS(o.Procs)
	}
	if o.CPUProfile != "" {
		f, err := os.Create(o.CPUProfile)
		if err != nil {
			_, _ = fmt.Fprintln(stderr, "tailsift-loadgen:", err)
			return 1
		}
		defer func() { _ = f.Close() }()
		if err := pprof.StartCPUProfile(f); err != nil {
			_, _ = fmt.Fprintln(stderr, "tailsift-loadgen:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	live := !o.Quiet && isTerminal(stdout)
	s, err := run(ctx, o, stdout, live)
	if err != nil {
		_, _ = fmt.Fprintln(stderr, "tailsift-loadgen:", err)
		return 1
	}
	if o.SummaryJSON != "" {
		if err := writeJSON(o.SummaryJSON, s); err != nil {
			_, _ = fmt.Fprintln(stderr, "tailsift-loadgen:", err)
			return 1
		}
	}
	return 0
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
