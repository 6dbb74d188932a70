package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tailsift/tailsift/internal/workload"
)

// Refusal counts requests and spans refused for one reason.
type Refusal struct {
	Requests int64 `json:"requests"`
	Spans    int64 `json:"spans"`
}

// Summary is the end-of-run report (also written by --summary-json).
type Summary struct {
	Protocol  string  `json:"protocol"`
	Endpoint  string  `json:"endpoint"`
	Seed      int64   `json:"seed"`
	Rate      float64 `json:"rate"`
	ErrorPct  float64 `json:"error_pct"`
	DurationS float64 `json:"duration_s"` // configured
	ElapsedS  float64 `json:"elapsed_s"`  // first to last send, drain included

	Mix workload.Mix `json:"mix"` // class mix in effect, in percent

	Traces           int64              `json:"traces"`
	OfferedSpans     int64              `json:"offered_spans"`
	OfferedRequests  int64              `json:"offered_requests"`
	AcceptedSpans    int64              `json:"accepted_spans"`
	AcceptedRequests int64              `json:"accepted_requests"`
	RefusedSpans     int64              `json:"refused_spans"` // failed requests, shed requests and partial_success rejections
	RefusedRequests  int64              `json:"refused_requests"`
	Refusals         map[string]Refusal `json:"refusals"`
	Retries          int64              `json:"retries"`
	LateSpans        int64              `json:"late_spans"`
	BytesSent        int64              `json:"bytes_offered"`

	OfferedSpansPerS  float64 `json:"offered_spans_per_s"` // over the configured duration
	AcceptedSpansPerS float64 `json:"accepted_spans_per_s"`
	BytesPerSpan      float64 `json:"bytes_per_span"`
	SpansPerRequest   float64 `json:"spans_per_request"`

	CPUUserS      float64 `json:"cpu_user_s"` // own CPU from first send to the end (template build excluded)
	CPUSysS       float64 `json:"cpu_sys_s"`
	CPUMicrosSpan float64 `json:"cpu_us_per_span"`
	MaxLagMs      float64 `json:"max_dispatch_lag_ms"` // how far behind schedule a request was dispatched, at worst
}

// Refusal reasons the loadgen itself produces.
const codeShed = "shed_client_busy" // every connection busy and the queue full

type runner struct {
	o       options
	gen     *workload.Generator
	snd     sender
	mw      *workload.ManifestWriter
	started time.Time
	wall    int64

	offeredSpans, offeredReqs   atomic.Int64
	acceptedSpans, acceptedReqs atomic.Int64
	refusedSpans, refusedReqs   atomic.Int64
	retries, lateSpans, bytes   atomic.Int64
	inflight                    atomic.Int64
	traces, pending             atomic.Int64
	draining                    atomic.Bool

	mu       sync.Mutex
	refusals map[string]Refusal
}

func (rn *runner) refuse(code string, reqs, spans int64) {
	rn.refusedSpans.Add(spans)
	rn.refusedReqs.Add(reqs)
	rn.mu.Lock()
	r := rn.refusals[code]
	r.Requests += reqs
	r.Spans += spans
	rn.refusals[code] = r
	rn.mu.Unlock()
}

func (rn *runner) traceDone(in *workload.Instance) {
	if rn.mw != nil {
		m := in.Manifest()
		rn.mw.Write(&m)
	}
}

// run generates and sends the workload and returns the summary. log gets the
// live display (when live) and the human-readable summary.
func run(ctx context.Context, o options, log io.Writer, live bool) (*Summary, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	t0 := time.Now()
	wcfg := workload.Config{
		Seed: o.Seed, Rate: o.Rate, Duration: o.Duration,
		Templates: o.Templates, Linger: o.Linger, Shape: o.Shape,
	}
	wcfg.SetMix(o.mix)
	gen, err := workload.NewGenerator(wcfg)
	if err != nil {
		return nil, err
	}
	cfg := gen.Config()
	if !o.Quiet {
		_, _ = fmt.Fprintf(log, "tailsift-loadgen: %d templates per class built in %v; %s %s, %g spans/s for %v, seed %d, mix %v\n",
			cfg.Templates, time.Since(t0).Round(time.Millisecond), o.Protocol, o.target(), o.Rate, o.Duration, o.Seed, gen.Mix())
	}

	rn := &runner{o: o, gen: gen, refusals: map[string]Refusal{}}
	switch o.Protocol {
	case "grpc":
		gs, err := newGRPCSender(o.target(), o.Connections, o.Timeout, o.Retry)
		if err != nil {
			return nil, err
		}
		if err := gs.warmup(ctx, 5*time.Second); err != nil && !o.Quiet {
			_, _ = fmt.Fprintf(log, "tailsift-loadgen: warning: %v (sending anyway)\n", err)
		}
		rn.snd = gs
	case "http":
		rn.snd = newHTTPSender(o.target(), o.Connections, o.Timeout, o.Retry)
	case "discard":
		rn.snd = discardSender{}
	}
	defer func() { _ = rn.snd.Close() }()

	// Collect the template build's garbage and return it to the OS now, so
	// that neither sweeping nor scavenging it counts as (or disturbs) the run.
	debug.FreeOSMemory()

	var mf *os.File
	rn.started = time.Now()
	rn.wall = rn.started.UnixNano()
	if o.Manifest != "" {
		mf, err = os.Create(o.Manifest)
		if err != nil {
			return nil, err
		}
		defer func() { _ = mf.Close() }()
		mix := gen.Mix()
		rn.mw, err = workload.NewManifestWriter(mf, workload.ManifestHeader{
			Seed: o.Seed, Rate: o.Rate, DurationS: o.Duration.Seconds(), ErrorPct: mix.Error,
			StartedUnixNano: rn.wall, Protocol: o.Protocol, Templates: cfg.Templates, Mix: &mix, Shape: cfg.Shape,
		})
		if err != nil {
			return nil, err
		}
	}
	ru0 := getrusage()

	// Sends are not cancelled by ctx (an interrupt drains instead); sendCtx
	// only ends when run returns.
	sendCtx, cancelSends := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSends()
	work := make(chan *workload.Request, max(256, 16*o.Inflight))
	var wg sync.WaitGroup
	for range o.Inflight {
		wg.Go(func() { rn.worker(sendCtx, work) })
	}
	stopDisplay := make(chan struct{})
	var displayDone sync.WaitGroup
	if live || rn.mw != nil {
		displayDone.Go(func() { rn.display(log, live, stopDisplay) })
	}

	maxLag := rn.dispatch(ctx, work)
	close(work)
	wg.Wait()
	close(stopDisplay)
	displayDone.Wait()
	ru1 := getrusage()
	end := time.Now()

	if rn.mw != nil {
		if err := rn.mw.Flush(); err != nil {
			return nil, fmt.Errorf("manifest: %w", err)
		}
		if err := mf.Close(); err != nil {
			return nil, fmt.Errorf("manifest: %w", err)
		}
	}
	s := rn.summary(end, ru1.sub(ru0), maxLag)
	printSummary(log, s)
	return s, nil
}

// dispatch paces the generator's requests open-loop: each request is handed
// to a worker at its scheduled time (never later because of the receiver),
// and shed, counted as refused, when no worker and no queue slot is free. It
// returns the worst dispatch lag.
func (rn *runner) dispatch(ctx context.Context, work chan<- *workload.Request) time.Duration {
	deadline := rn.started.Add(rn.o.Duration + rn.o.Drain)
	flushNow := false
	var maxLag time.Duration
	var lastWake time.Time
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if !flushNow && ctx.Err() != nil {
			// Interrupted: start no more traces, send what is pending now.
			rn.gen.Stop(int64(time.Since(rn.started)))
			flushNow = true
		}
		r := rn.gen.Next()
		if r == nil {
			break
		}
		rn.traces.Store(rn.gen.Traces())
		rn.pending.Store(rn.gen.PendingSpans())
		if !flushNow {
			due := rn.started.Add(time.Duration(r.SendV))
			if r.SendV > int64(rn.o.Duration) {
				rn.draining.Store(true)
			}
			if due.After(deadline) {
				flushNow = true
			} else if now := time.Now(); due.After(now) {
				// Wake at most once per tick: requests due within a tick
				// go out together, which saves wakeups (CPU).
				wake := due
				if t := lastWake.Add(rn.o.Tick); t.After(wake) {
					wake = t
				}
				timer.Reset(wake.Sub(now))
				select {
				case <-timer.C:
				case <-ctx.Done():
				}
				lastWake = time.Now()
			} else if lag := now.Sub(due); lag > maxLag {
				maxLag = lag
			}
		}
		rn.offeredSpans.Add(int64(r.Spans))
		rn.offeredReqs.Add(1)
		rn.lateSpans.Add(int64(r.LateSpans))
		rn.bytes.Add(int64(r.Size))
		if flushNow {
			// Final flush: no schedule to keep, so wait for a worker.
			work <- r
			continue
		}
		select {
		case work <- r:
		default:
			rn.refuse(codeShed, 1, int64(r.Spans))
			r.Complete(time.Now().UnixNano(), true, rn.traceDone)
		}
	}
	rn.pending.Store(0)
	return maxLag
}

func (rn *runner) worker(ctx context.Context, work <-chan *workload.Request) {
	for r := range work {
		buf := pool.Get(r.Size)
		*buf = rn.gen.AppendRequest((*buf)[:0], r, rn.wall)
		rn.inflight.Add(1)
		sent := time.Now().UnixNano()
		res := rn.snd.Send(ctx, buf)
		rn.inflight.Add(-1)
		rn.retries.Add(int64(res.retries))
		n := int64(r.Spans)
		if res.code == "" {
			rej := min(res.rejected, n)
			rn.acceptedReqs.Add(1)
			rn.acceptedSpans.Add(n - rej)
			if rej > 0 {
				rn.refuse("partial_success", 0, rej)
			}
		} else {
			rn.refuse(res.code, 1, n)
		}
		r.Complete(sent, res.code != "", rn.traceDone)
	}
}

// display prints the live line once a second (when live) and flushes the
// manifest so that a reader following it sees finished traces promptly.
func (rn *runner) display(w io.Writer, live bool, stop <-chan struct{}) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastOff, lastAcc int64
	last := rn.started
	for {
		select {
		case <-stop:
			if live {
				_, _ = fmt.Fprint(w, "\r\033[K")
			}
			return
		case now := <-tick.C:
			if rn.mw != nil {
				_ = rn.mw.Flush()
			}
			if !live {
				continue
			}
			off, acc := rn.offeredSpans.Load(), rn.acceptedSpans.Load()
			dt := now.Sub(last).Seconds()
			el := now.Sub(rn.started)
			phase := fmt.Sprintf("%3.0fs left", max(0, (rn.o.Duration-el).Seconds()))
			if rn.draining.Load() || el >= rn.o.Duration {
				phase = fmt.Sprintf("draining %d spans", rn.pending.Load())
			}
			_, _ = fmt.Fprintf(w, "\r\033[K%5.0fs  %s | offered %7.0f sp/s  accepted %7.0f sp/s | refused %d%s | traces %d  in flight %d",
				el.Seconds(), phase, float64(off-lastOff)/dt, float64(acc-lastAcc)/dt,
				rn.refusedSpans.Load(), rn.refusalBrief(), rn.traces.Load(), rn.inflight.Load())
			lastOff, lastAcc, last = off, acc, now
		}
	}
}

func (rn *runner) refusalBrief() string {
	rn.mu.Lock()
	defer rn.mu.Unlock()
	if len(rn.refusals) == 0 {
		return ""
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(rn.refusals)) {
		parts = append(parts, fmt.Sprintf("%s:%d", k, rn.refusals[k].Requests))
	}
	return " (" + strings.Join(parts, " ") + " req)"
}

func (rn *runner) summary(end time.Time, ru rusage, maxLag time.Duration) *Summary {
	s := &Summary{
		Protocol: rn.o.Protocol, Endpoint: rn.o.target(), Seed: rn.o.Seed, Rate: rn.o.Rate,
		ErrorPct: rn.o.ErrorPct, Mix: rn.gen.Mix(), DurationS: rn.o.Duration.Seconds(), ElapsedS: end.Sub(rn.started).Seconds(),
		Traces:           rn.gen.Traces(),
		OfferedSpans:     rn.offeredSpans.Load(),
		OfferedRequests:  rn.offeredReqs.Load(),
		AcceptedSpans:    rn.acceptedSpans.Load(),
		AcceptedRequests: rn.acceptedReqs.Load(),
		RefusedSpans:     rn.refusedSpans.Load(),
		RefusedRequests:  rn.refusedReqs.Load(),
		Retries:          rn.retries.Load(),
		LateSpans:        rn.lateSpans.Load(),
		BytesSent:        rn.bytes.Load(),
		CPUUserS:         ru.user.Seconds(),
		CPUSysS:          ru.sys.Seconds(),
		MaxLagMs:         float64(maxLag) / 1e6,
	}
	rn.mu.Lock()
	s.Refusals = maps.Clone(rn.refusals)
	rn.mu.Unlock()
	if s.OfferedSpans > 0 {
		s.OfferedSpansPerS = float64(s.OfferedSpans) / rn.o.Duration.Seconds()
		s.AcceptedSpansPerS = float64(s.AcceptedSpans) / rn.o.Duration.Seconds()
		s.BytesPerSpan = float64(s.BytesSent) / float64(s.OfferedSpans)
		s.SpansPerRequest = float64(s.OfferedSpans) / float64(s.OfferedRequests)
		s.CPUMicrosSpan = (s.CPUUserS + s.CPUSysS) * 1e6 / float64(s.OfferedSpans)
	}
	return s
}

func printSummary(w io.Writer, s *Summary) {
	_, _ = fmt.Fprintf(w, "tailsift-loadgen summary: %s %s, seed %d, %g spans/s for %gs (%.1fs with drain)\n",
		s.Protocol, s.Endpoint, s.Seed, s.Rate, s.DurationS, s.ElapsedS)
	_, _ = fmt.Fprintf(w, "  traces    %d (%d late spans)\n", s.Traces, s.LateSpans)
	_, _ = fmt.Fprintf(w, "  offered   %d spans in %d requests (%.0f spans/s, %.1f spans/request, %.0f B/span)\n",
		s.OfferedSpans, s.OfferedRequests, s.OfferedSpansPerS, s.SpansPerRequest, s.BytesPerSpan)
	fmt.Fprintf(w, "  accepted  %d spans in %d requests (%.0f spans/s)\n", s.AcceptedSpans, s.AcceptedRequests, s.AcceptedSpansPerS)
	fmt.Fprintf(w, "  refused   %d spans in %d requests", s.RefusedSpans, s.RefusedRequests)
	for _, k := range slices.Sorted(maps.Keys(s.Refusals)) {
		r := s.Refusals[k]
		fmt.Fprintf(w, "; %s: %d req, %d spans", k, r.Requests, r.Spans)
	}
	_, _ = fmt.Fprintln(w)
	if s.Retries > 0 {
		fmt.Fprintf(w, "  retries   %d\n", s.Retries)
	}
	fmt.Fprintf(w, "  own CPU   %.2fs user + %.2fs sys = %.3f µs/span (max dispatch lag %.1f ms)\n",
		s.CPUUserS, s.CPUSysS, s.CPUMicrosSpan, s.MaxLagMs)
}

type discardSender struct{}

func (discardSender) Send(_ context.Context, buf *[]byte) result { pool.Put(buf); return result{} }
func (discardSender) Close() error                               { return nil }
