package main

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// snapshot is the collector's state at one end of the counted window.
type snapshot struct {
	t        time.Time
	cpu      float64         // the collector's CPU seconds (procCPU)
	method   string          // how cpu was read: cpuClock or cpuStat
	cpuTicks float64         // the same from /proc/PID/stat, clock ticks; <0 when unread
	minflt   float64         // minor page faults so far (/proc/PID/stat)
	busy     map[int]float64 // busy seconds per CPU
	m        *metrics
	logOff   int64 // size of collector.log (gctrace lines)
}

func takeSnapshot(ctx context.Context, rf *runFiles, pid int) (snapshot, error) {
	var s snapshot
	var err error
	if s.m, err = scrape(ctx, rf.metricsURL); err != nil {
		return s, err
	}
	s.t = time.Now()
	if s.cpu, s.method, err = procCPU(pid); err != nil {
		return s, err
	}
	s.cpuTicks = -1
	if st, err := procStat(pid); err == nil {
		s.cpuTicks, s.minflt = st.cpu, st.minflt
	}
	s.busy, _ = cpuBusy()
	s.logOff = logSize(rf.log("collector"))
	return s, nil
}

// windowSamples are the collector's figures sampled during the window: RSS
// from /proc, the others from its metrics.
type windowSamples struct {
	rss, heap                        []float64
	bufSpans, bufTraces, bufAccBytes []float64
	points                           []cpuPoint // at every scrape: CPU and accepted spans
}

// addScrape adds a scrape's figures and, read right after it, the
// collector's CPU.
func (ws *windowSamples) addScrape(k kind, m *metrics, res *runResult, pid int) {
	if pid <= 0 {
		// The window's ends: their CPU is the snapshot's.
	} else if cpu, _, err := procCPU(pid); err == nil {
		ws.points = append(ws.points, cpuPoint{t: m.at, cpu: cpu, accepted: m.sum(mAccepted)})
	}
	ws.heap = append(ws.heap, m.sum(mHeap))
	if v, ok := bufferedSpans(k, m); ok {
		ws.bufSpans = append(ws.bufSpans, v)
	}
	if v, ok := bufferedTraces(k, m); ok {
		ws.bufTraces = append(ws.bufTraces, v)
		res.TracesOnMemMax = max(res.TracesOnMemMax, v)
	}
	if k == kindTailsift || k == kindFastpath {
		ws.bufAccBytes = append(ws.bufAccBytes, m.sum(tsm(k, mTSBufBytes)))
	}
}

func (ws *windowSamples) addRSS(pid int) {
	if st, _, err := procStatus(pid); err == nil {
		ws.rss = append(ws.rss, st["VmRSS"])
	}
}

// sampleUntil samples RSS every 0.5 s and the metrics every `every` (0:
// scrapeEvery) until end.
func (ws *windowSamples) sampleUntil(ctx context.Context, end time.Time, rf *runFiles, pid int, k kind, res *runResult, every time.Duration) error {
	if every <= 0 {
		every = scrapeEvery
	}
	nextScrape := time.Now().Add(every)
	for time.Now().Before(end) {
		ws.addRSS(pid)
		if time.Now().After(nextScrape) && time.Until(end) > time.Second {
			if m, err := scrape(ctx, rf.metricsURL); err == nil {
				ws.addScrape(k, m, res, pid)
			}
			nextScrape = time.Now().Add(every)
		}
		if err := sleepUntil(ctx, minTime(end, time.Now().Add(500*time.Millisecond))); err != nil {
			return err
		}
	}
	return nil
}

// measureWindow measures the counted window, scraping the metrics every
// `every` (0: scrapeEvery), with a CPU profile when the spec asks for one.
func measureWindow(ctx context.Context, rf *runFiles, spec runSpec, pid int, lg *waiter, res *runResult, gctrace bool, every time.Duration) error {
	s0, err := takeSnapshot(ctx, rf, pid)
	if err != nil {
		return fmt.Errorf("window start: %w", err)
	}
	res.WindowStart = s0.t.UTC().Format(time.RFC3339Nano)
	var profDone chan error
	if spec.ProfileSeconds > 0 {
		profDone = make(chan error, 1)
		go func() { profDone <- fetchProfile(ctx, rf.ports.Pprof, spec.ProfileSeconds, spec.ProfileOut) }()
	}
	var ws windowSamples
	ws.points = append(ws.points, cpuPoint{t: s0.m.at, cpu: s0.cpu, accepted: s0.m.sum(mAccepted)})
	ws.addScrape(spec.Kind, s0.m, res, -1)
	if err := ws.sampleUntil(ctx, s0.t.Add(spec.Window), rf, pid, spec.Kind, res, every); err != nil {
		return err
	}
	s1, err := takeSnapshot(ctx, rf, pid)
	if err != nil {
		return fmt.Errorf("window end: %w", err)
	}
	ws.addScrape(spec.Kind, s1.m, res, -1)
	ws.points = append(ws.points, cpuPoint{t: s1.m.at, cpu: s1.cpu, accepted: s1.m.sum(mAccepted)})
	if gctrace {
		gc := gcBetween(rf.log("collector"), s0.logOff, s1.logOff)
		res.GC = &gc
	}
	ws.addRSS(pid)
	if lg.exited() {
		res.problem("loadgen exited before the window ended")
	}
	res.setWindow(s0, s1, &ws)
	if profDone != nil {
		if err := <-profDone; err != nil {
			res.problem("profile: %v", err)
		} else {
			res.ProfileFile = spec.ProfileOut
		}
	}
	return nil
}

// setWindow derives the window's figures from its two snapshots and samples.
func (r *runResult) setWindow(s0, s1 snapshot, ws *windowSamples) {
	dt := s1.t.Sub(s0.t).Seconds()
	r.WindowS = dt
	r.WindowAccepted = s1.m.sum(mAccepted) - s0.m.sum(mAccepted)
	r.WindowAcceptedRate = r.WindowAccepted / dt
	r.CPUSeconds = s1.cpu - s0.cpu
	r.CPUAccounting = s0.method
	if r.WindowAccepted > 0 {
		r.CPUMicrosPerSpan = r.CPUSeconds * 1e6 / r.WindowAccepted
		if s0.cpuTicks >= 0 && s1.cpuTicks >= 0 {
			r.CPUMicrosPerSpanTicks = (s1.cpuTicks - s0.cpuTicks) * 1e6 / r.WindowAccepted
			r.MinorFaultsPerKSpan = (s1.minflt - s0.minflt) * 1e3 / r.WindowAccepted
		}
	}
	r.Halves = halves(ws.points)
	r.CPUUtil = r.CPUSeconds / dt
	if s0.busy != nil && s1.busy != nil {
		r.OtherCPU0 = max(0, (s1.busy[0]-s0.busy[0]-r.CPUSeconds)/dt) // ±1 clock tick of noise
		r.CPU1Busy = (s1.busy[1] - s0.busy[1]) / dt
	}
	r.RSSSamples, r.PromSamples = len(ws.rss), len(ws.heap)
	if len(ws.rss) > 0 {
		r.RSSMeanMB, r.RSSPeakMB = mean(ws.rss)/mb, slices.Max(ws.rss)/mb
	}
	r.HeapMeanMB = mean(ws.heap) / mb
	if len(ws.bufSpans) == 0 {
		return
	}
	r.BufferedSpansMean = mean(ws.bufSpans)
	r.BufferedTracesMean = mean(ws.bufTraces)
	if r.WindowAcceptedRate > 0 {
		r.MeanHoldS = r.BufferedSpansMean / r.WindowAcceptedRate
	}
	if r.BufferedSpansMean > 0 {
		r.BytesPerBufSpanRSS = (r.RSSMeanMB - r.RSSIdleMB) * mb / r.BufferedSpansMean
		r.BytesPerBufSpanHeap = (r.HeapMeanMB - r.HeapIdleMB) * mb / r.BufferedSpansMean
		if len(ws.bufAccBytes) > 0 {
			r.BufferedBytesMean = mean(ws.bufAccBytes)
			r.BytesPerBufSpanAcct = r.BufferedBytesMean / r.BufferedSpansMean
		}
	}
}
