package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// sample is one Prometheus text-format sample.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// metrics is one scrape of a collector's Prometheus endpoint.
type metrics struct {
	at      time.Time
	samples []sample
}

// parseProm parses the Prometheus text exposition format (the subset the
// collector's exporter writes: no timestamps, no escaped quotes in values
// that matter here).
func parseProm(r io.Reader) ([]sample, error) {
	var out []sample
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		var s sample
		var rest string
		if i := strings.IndexByte(line, '{'); i >= 0 {
			j := strings.LastIndexByte(line, '}')
			if j < i {
				return nil, fmt.Errorf("bad line %q", line)
			}
			s.name = line[:i]
			s.labels = parseLabels(line[i+1 : j])
			rest = strings.TrimSpace(line[j+1:])
		} else {
			f := strings.Fields(line)
			if len(f) < 2 {
				return nil, fmt.Errorf("bad line %q", line)
			}
			s.name, rest = f[0], f[1]
		}
		if f := strings.Fields(rest); len(f) > 0 {
			rest = f[0]
		}
		v, err := strconv.ParseFloat(rest, 64)
		if err != nil {
			return nil, fmt.Errorf("bad value in %q: %w", line, err)
		}
		s.value = v
		out = append(out, s)
	}
	return out, sc.Err()
}

func parseLabels(s string) map[string]string {
	m := map[string]string{}
	for len(s) > 0 {
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			break
		}
		k := strings.TrimSpace(strings.TrimPrefix(s[:eq], ","))
		s = s[eq+1:]
		if len(s) == 0 || s[0] != '"' {
			break
		}
		end := 1
		for end < len(s) && (s[end] != '"' || s[end-1] == '\\') {
			end++
		}
		if end >= len(s) {
			break
		}
		m[k] = s[1:end]
		s = strings.TrimPrefix(s[end+1:], ",")
	}
	return m
}

// sum adds the values of every sample called name whose labels include all
// of the given key=value pairs.
func (m *metrics) sum(name string, kv ...string) float64 {
	if m == nil {
		return 0
	}
	var t float64
	for _, s := range m.samples {
		if s.name != name {
			continue
		}
		ok := true
		for i := 0; i+1 < len(kv); i += 2 {
			if s.labels[kv[i]] != kv[i+1] {
				ok = false
				break
			}
		}
		if ok {
			t += s.value
		}
	}
	return t
}

// has reports whether any sample called name exists.
func (m *metrics) has(name string) bool {
	if m == nil {
		return false
	}
	for _, s := range m.samples {
		if s.name == name {
			return true
		}
	}
	return false
}

// scrape reads the collector's Prometheus metrics at url.
func scrape(ctx context.Context, url string) (*metrics, error) {
	resp, err := httpGet(ctx, httpClient, url)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	ss, err := parseProm(resp.Body)
	if err != nil {
		return nil, err
	}
	return &metrics{at: time.Now(), samples: ss}, nil
}

// Metric names used by the runner.
const (
	mAccepted      = "otelcol_receiver_accepted_spans"
	mRefused       = "otelcol_receiver_refused_spans"
	mHeap          = "otelcol_process_runtime_heap_alloc_bytes"
	mTSReceived    = "otelcol_processor_tailsift_spans_received"
	mTSDecided     = "otelcol_processor_tailsift_spans_decided"
	mTSLate        = "otelcol_processor_tailsift_late_spans"
	mTSEarly       = "otelcol_processor_tailsift_early_decisions"
	mTSBufBytes    = "otelcol_processor_tailsift_buffered_bytes"
	mTSBufTraces   = "otelcol_processor_tailsift_buffered_traces"
	mTSRefused     = "otelcol_processor_tailsift_spans_refused"
	mTSExportFail  = "otelcol_processor_tailsift_export_failures"
	mTSTraceDec    = "otelcol_processor_tailsift_traces_decided"
	mCTSpansCount  = "otelcol_processor_tail_sampling_count_spans_sampled"
	mCTEarlyCache  = "otelcol_processor_tail_sampling_early_releases_from_cache_decision"
	mCTOnMemory    = "otelcol_processor_tail_sampling_sampling_traces_on_memory"
	mCTTooEarly    = "otelcol_processor_tail_sampling_sampling_trace_dropped_too_early"
	mCTTooLarge    = "otelcol_processor_tail_sampling_traces_dropped_too_large"
	mCTNewTraces   = "otelcol_processor_tail_sampling_new_trace_id_received"
	mCTGlobalCount = "otelcol_processor_tail_sampling_global_count_traces_sampled"
	mExpSent       = "otelcol_exporter_sent_spans"
	mExpFailed     = "otelcol_exporter_send_failed_spans"
)

// tsm returns the name of a tailsift self-metric for kind k: the fast-path
// receiver exports the processor's metrics under otelcol_receiver_tailsift_.
func tsm(k kind, name string) string {
	if k == kindFastpath {
		return strings.Replace(name, "otelcol_processor_tailsift_", "otelcol_receiver_tailsift_", 1)
	}
	return name
}

// bufferedSpans estimates the spans a sampling processor holds (its intake
// queue included) from its own counters:
//
//	tailsift: spans_received − Σ spans_decided − Σ late_spans
//	contrib:  receiver accepted − Σ count_spans_sampled{policy=<first policy>}
//	          − Σ early_releases_from_cache_decision
//
// contrib evaluates the first policy ("errors") for every decided trace and
// records the trace's span count under it, so that sum is the spans decided;
// late spans of decided traces go through the decision cache.
func bufferedSpans(k kind, m *metrics) (float64, bool) {
	switch k {
	case kindTailsift, kindFastpath:
		if !m.has(tsm(k, mTSReceived)) {
			return 0, false
		}
		return m.sum(tsm(k, mTSReceived)) - m.sum(tsm(k, mTSDecided)) - m.sum(tsm(k, mTSLate)), true
	case kindContrib:
		if !m.has(mAccepted) {
			return 0, false
		}
		return m.sum(mAccepted) - m.sum(mCTSpansCount, "policy", "errors") - m.sum(mCTEarlyCache), true
	}
	return 0, false
}

// bufferedTraces is the processor's gauge of traces waiting for a decision.
func bufferedTraces(k kind, m *metrics) (float64, bool) {
	switch k {
	case kindTailsift, kindFastpath:
		return m.sum(tsm(k, mTSBufTraces)), m.has(tsm(k, mTSBufTraces))
	case kindContrib:
		return m.sum(mCTOnMemory), m.has(mCTOnMemory)
	}
	return 0, false
}
