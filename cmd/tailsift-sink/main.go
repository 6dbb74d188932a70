// Command tailsift-sink receives the traces a collector keeps (OTLP gRPC and
// HTTP), records a few bytes per span, and when it stops scores what arrived
// against the manifest written by tailsift-loadgen. See README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tailsift/tailsift/internal/sinkreport"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"

	"github.com/tailsift/tailsift/internal/workload"
)

type config struct {
	grpcAddr        string
	httpAddr        string
	manifest        string
	out             string
	fastProbability float64
	completion      time.Duration
	idle            time.Duration
	duration        time.Duration
	quiet           bool // no table on stdout

	// ready, when set, is called with the bound addresses once both
	// servers listen (tests use it with ":0" addresses).
	ready func(grpcAddr, httpAddr string)
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("tailsift-sink", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.grpcAddr, "grpc", "127.0.0.1:4327", "OTLP gRPC listen address (empty: no gRPC)")
	fs.StringVar(&c.httpAddr, "http", "127.0.0.1:4328", "OTLP HTTP listen address, also serves GET /stats (empty: no HTTP)")
	fs.StringVar(&c.manifest, "manifest", "", "loadgen manifest (JSON Lines), read when scoring")
	fs.StringVar(&c.out, "out", "", "write the JSON report to this file")
	fs.Float64Var(&c.fastProbability, "fast-probability", 0, "configured keep probability of fast traces, e.g. 0.05 (0: no binomial check)")
	fs.DurationVar(&c.completion, "completion", 2*time.Second, "the collector's completion wait (quiet), subtracted from decision latency")
	fs.DurationVar(&c.idle, "idle", 0, "stop once nothing has arrived for this long after something arrived (0: never)")
	fs.DurationVar(&c.duration, "duration", 0, "stop after this long (0: never)")
	fs.BoolVar(&c.quiet, "quiet", false, "do not print the table on stdout")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if c.grpcAddr == "" && c.httpAddr == "" {
		return c, errors.New("need at least one of --grpc and --http")
	}
	if c.fastProbability < 0 || c.fastProbability > 1 {
		return c, fmt.Errorf("--fast-probability %v is not in [0, 1]", c.fastProbability)
	}
	return c, nil
}

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "tailsift-sink:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	_, err = run(ctx, cfg, os.Stdout, log.New(os.Stderr, "tailsift-sink: ", log.LstdFlags))
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "tailsift-sink:", err)
		os.Exit(1)
	}
}

// run serves until ctx ends, --idle or --duration, then scores and writes
// the report. The report is returned even when writing it or reading the
// manifest failed (err says which).
func run(ctx context.Context, cfg config, stdout io.Writer, logger *log.Logger) (*sinkreport.Report, error) {
	rec := newRecorder()
	var gsrv *grpc.Server
	var hsrv *http.Server
	var gaddr, haddr string
	errc := make(chan error, 2)

	if cfg.grpcAddr != "" {
		lis, err := net.Listen("tcp", cfg.grpcAddr)
		if err != nil {
			return nil, fmt.Errorf("grpc listen: %w", err)
		}
		gaddr = lis.Addr().String()
		gsrv = grpc.NewServer(grpc.MaxRecvMsgSize(maxDecodedBytes))
		ptraceotlp.RegisterGRPCServer(gsrv, &grpcReceiver{rec: rec})
		go func() {
			if err := gsrv.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				errc <- fmt.Errorf("grpc serve: %w", err)
			}
		}()
	}
	if cfg.httpAddr != "" {
		lis, err := net.Listen("tcp", cfg.httpAddr)
		if err != nil {
			if gsrv != nil {
				gsrv.Stop()
			}
			return nil, fmt.Errorf("http listen: %w", err)
		}
		haddr = lis.Addr().String()
		hsrv = &http.Server{Handler: httpHandler(rec), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := hsrv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("http serve: %w", err)
			}
		}()
	}
	logger.Printf("listening: grpc %q, http %q", gaddr, haddr)
	if cfg.ready != nil {
		cfg.ready(gaddr, haddr)
	}

	reason, serveErr := waitStop(ctx, cfg, rec, errc)
	logger.Printf("stopping (%s)", reason)
	shutdown(gsrv, hsrv)

	opt := scoreOptions{fastProbability: cfg.fastProbability, completion: cfg.completion}
	var md *manifestData
	var errs []error
	if serveErr != nil {
		errs = append(errs, serveErr)
	}
	if cfg.manifest != "" {
		var err error
		md, err = loadManifest(cfg.manifest)
		if err != nil {
			errs = append(errs, err)
		}
	}
	rep := score(rec.snapshot(), md, opt)
	rep.GeneratedUnixNano = time.Now().UnixNano()
	rep.StopReason = reason
	rep.Config = sinkreport.ReportConfig{
		GRPC: gaddr, HTTP: haddr, Manifest: cfg.manifest,
		FastProbability: cfg.fastProbability,
		CompletionMs:    float64(cfg.completion) / float64(time.Millisecond),
	}
	if cfg.manifest != "" && md == nil {
		rep.Notes = append(rep.Notes, "the manifest could not be read, so nothing was scored: see the error on stderr")
	}
	if md != nil && md.readErr != nil {
		logger.Printf("warning: manifest %s: %v (scored the %d traces before it)", cfg.manifest, md.readErr, len(md.traces))
	}
	if !cfg.quiet {
		if err := printTable(stdout, rep); err != nil {
			errs = append(errs, fmt.Errorf("print table: %w", err))
		}
	}
	if cfg.out != "" {
		if err := writeJSON(cfg.out, rep); err != nil {
			errs = append(errs, err)
		}
	}
	return rep, errors.Join(errs...)
}

// waitStop blocks until a stop condition and names it.
func waitStop(ctx context.Context, cfg config, rec *recorder, errc <-chan error) (string, error) {
	var deadline <-chan time.Time
	if cfg.duration > 0 {
		t := time.NewTimer(cfg.duration)
		defer t.Stop()
		deadline = t.C
	}
	var tick <-chan time.Time
	if cfg.idle > 0 {
		t := time.NewTicker(min(max(cfg.idle/20, 10*time.Millisecond), 500*time.Millisecond))
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return "signal", nil
		case <-deadline:
			return "duration", nil
		case err := <-errc:
			return "error", err
		case now := <-tick:
			if last := rec.lastArrival.Load(); last != 0 && now.Sub(time.Unix(0, last)) >= cfg.idle {
				return "idle", nil
			}
		}
	}
}

// shutdown lets in-flight requests finish (at most 5 s), then closes.
func shutdown(gsrv *grpc.Server, hsrv *http.Server) {
	const grace = 5 * time.Second
	done := make(chan struct{})
	go func() {
		defer close(done)
		if hsrv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), grace)
			defer cancel()
			if hsrv.Shutdown(ctx) != nil {
				_ = hsrv.Close()
			}
		}
	}()
	if gsrv != nil {
		stopped := make(chan struct{})
		go func() { gsrv.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(grace):
			gsrv.Stop()
			<-stopped
		}
	}
	<-done
}

// loadManifest reads the manifest. A read error after the header (such as a
// line the loadgen was still writing) keeps the traces read before it, in
// md.readErr; an unreadable file or header is an error.
func loadManifest(path string) (*manifestData, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	hdr, traces, err := workload.ReadManifest(f)
	_ = f.Close() // read-only: nothing to lose
	if err != nil && !hdr.Header {
		return nil, fmt.Errorf("manifest %s: %w", path, err)
	}
	return &manifestData{path: path, header: hdr, traces: traces, readErr: err}, nil
}

func writeJSON(path string, rep *sinkreport.Report) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}
