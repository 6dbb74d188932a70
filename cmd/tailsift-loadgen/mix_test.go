package main

import (
	"context"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/tailsift/tailsift/internal/workload"
)

func TestParseMixFlag(t *testing.T) {
	def := workload.DefaultMix() // error=2,slow=1,anomaly=0.5,huge=0.01,late=0.6
	with := func(f func(*workload.Mix)) workload.Mix {
		m := def
		f(&m)
		return m
	}
	for _, c := range []struct {
		args []string
		want workload.Mix
		err  string
	}{
		{args: nil, want: def},
		{args: []string{"--error-pct", "3"}, want: with(func(m *workload.Mix) { m.Error = 3 })},
		{args: []string{"--mix", "slow=10,late=0"}, want: with(func(m *workload.Mix) { m.Slow, m.Late = 10, 0 })},
		{args: []string{"--mix", "error=4"}, want: with(func(m *workload.Mix) { m.Error = 4 })},
		{args: []string{"--error-pct", "4", "--mix", "error=4,slow=2"}, want: with(func(m *workload.Mix) { m.Error, m.Slow = 4, 2 })},
		{args: []string{"--error-pct", "5", "--mix", "anomaly=0"}, want: with(func(m *workload.Mix) { m.Error, m.Anomaly = 5, 0 })},
		{args: []string{"--mix=error=3,slow=1,anomaly=0.5,huge=0.01,late=0.5"},
			want: workload.Mix{Error: 3, Slow: 1, Anomaly: 0.5, Huge: 0.01, Late: 0.5}},
		{args: []string{"--mix", ""}, want: def},

		{args: []string{"--error-pct", "3", "--mix", "error=4"}, err: "--error-pct 3 and --mix error=4 disagree"},
		{args: []string{"--mix", "fast=90"}, err: `--mix: unknown key "fast" (keys: error, slow, anomaly, huge, late)`},
		{args: []string{"--mix", "huge"}, err: `--mix: "huge" is not key=percent`},
		{args: []string{"--mix", "slow=x"}, err: `--mix: slow="x" is not a number`},
		{args: []string{"--mix", "late=1,late=2"}, err: `--mix: key "late" given twice`},
		{args: []string{"--mix", "late=101"}, err: "--mix: late=101 out of range [0, 100]"},
		{args: []string{"--mix", "anomaly=-1"}, err: "--mix: anomaly=-1 out of range [0, 100]"},
		{args: []string{"--mix", "error=60"}, err: "--mix: error=60 out of range [0, 50]"},
		{args: []string{"--shape", "agent"}, err: `--shape must be bench or sdk, not "agent"`},
		{args: []string{"--error-pct", "60"}, err: "--error-pct must be within [0, 50]"},
		{args: []string{"--mix", "slow=99"}, err: "--mix: error+slow+anomaly+huge = 101.51, more than 100"},
		{args: []string{"--error-pct", "50", "--mix", "slow=50"}, err: "--mix: error+slow+anomaly+huge = 100.51, more than 100"},
	} {
		o, err := parseFlags(c.args, io.Discard)
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("%q: error %v, want %q", c.args, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.args, err)
			continue
		}
		if o.mix != c.want || o.ErrorPct != c.want.Error {
			t.Errorf("%q: mix %v, error-pct %g; want %v", c.args, o.mix, o.ErrorPct, c.want)
		}
	}
}

// TestManifestRecordsMix: the mix in effect reaches the manifest header and
// the summary, and late=0 sends no late spans.
func TestManifestRecordsMix(t *testing.T) {
	dir := t.TempDir()
	o := options{
		Protocol: "discard", Rate: 2000, Duration: 300 * time.Millisecond, Seed: 5,
		ErrorPct: 2, MixSpec: "slow=10,late=0", Connections: 1, Templates: 20, Quiet: true,
		Manifest: filepath.Join(dir, "m.jsonl"),
	}
	s, err := run(context.Background(), o, io.Discard, false)
	if err != nil {
		t.Fatal(err)
	}
	want := workload.Mix{Error: 2, Slow: 10, Anomaly: 0.5, Huge: 0.01, Late: 0}
	if s.Mix != want || s.ErrorPct != 2 {
		t.Errorf("summary mix %v error_pct %g, want %v", s.Mix, s.ErrorPct, want)
	}
	hdr, traces := readManifest(t, o.Manifest)
	if hdr.Mix == nil || *hdr.Mix != want || hdr.ErrorPct != 2 {
		t.Fatalf("header mix %+v error_pct %g, want %v", hdr.Mix, hdr.ErrorPct, want)
	}
	if len(traces) == 0 || int64(len(traces)) != s.Traces || s.LateSpans != 0 {
		t.Fatalf("%d manifest traces, summary %d traces and %d late spans", len(traces), s.Traces, s.LateSpans)
	}
	for _, tr := range traces {
		if tr.Late {
			t.Fatalf("late=0: trace %d has late spans", tr.Seq)
		}
	}
}

// TestTickFlag: by default each request leaves at its scheduled time
// (--tick 1ms); a coarser tick, which sends clumps, is still there to ask for.
func TestTickFlag(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.Tick != time.Millisecond {
		t.Errorf("default --tick %v, want 1ms", o.Tick)
	}
	if o, err = parseFlags([]string{"--tick", "50ms"}, io.Discard); err != nil || o.Tick != 50*time.Millisecond {
		t.Errorf("--tick 50ms: %v, %v", o.Tick, err)
	}
}
