package workload

import (
	"math"
	"slices"
	"testing"
	"time"
)

// TestDefaultMixProbabilities pins the probabilities an unset mix (and an
// explicit DefaultMix) turns into to the constants the generator used before
// the mix was configurable, bit for bit: the default workload must not move.
func TestDefaultMixProbabilities(t *testing.T) {
	unset := Config{Seed: 1, Rate: 1000, ErrorPct: 2, Templates: 1}
	explicit := unset
	explicit.SetMix(DefaultMix())
	for name, cfg := range map[string]Config{"unset": unset, "explicit": explicit} {
		g, err := NewGenerator(cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name      string
			got, want float64
		}{
			{"pHuge", g.pHuge, 1e-4},
			{"pError", g.pError, 0.02},
			{"pAnomaly", g.pAnomaly, 0.005},
			{"pSlow", g.pSlow, 0.01 + (1-0.01)*0.01}, // constant arithmetic: exactly 0.0199
			{"slowTailShare", g.model.slowTailShare, 0.01 / (0.01 + (1-0.01)*0.01)},
			{"pLateSpan", g.model.pLateSpan, 0.006},
		} {
			if c.got != c.want {
				t.Errorf("%s: %s = %v, want %v", name, c.name, c.got, c.want)
			}
		}
		if m := g.Mix(); m != DefaultMix() {
			t.Errorf("%s: mix %v, want %v", name, m, DefaultMix())
		}
	}
}

// streamSig is a signature of a generator's whole request stream.
func streamSig(t *testing.T, cfg Config) []int64 {
	t.Helper()
	g, err := NewGenerator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	for r := g.Next(); r != nil; r = g.Next() {
		h := int64(0)
		for _, c := range g.AppendRequest(nil, r, 1_700_000_000_000_000_000) {
			h = h*31 + int64(c)
		}
		out = append(out, r.SendV, int64(r.Spans), int64(r.LateSpans), h)
	}
	return out
}

// TestExplicitDefaultMixSameStream: setting the default mix explicitly gives
// the same bytes as leaving it unset; changing one share changes them.
func TestExplicitDefaultMixSameStream(t *testing.T) {
	unset := Config{Seed: 42, Rate: 5000, ErrorPct: 3, Templates: 50, Duration: 2 * time.Second}
	explicit := unset
	m := DefaultMix()
	m.Error = 3
	explicit.SetMix(m)
	a, b := streamSig(t, unset), streamSig(t, explicit)
	if len(a) == 0 || !slices.Equal(a, b) {
		t.Fatalf("explicit default mix changed the stream (%d vs %d values)", len(a), len(b))
	}
	m.Slow = 5
	explicit.SetMix(m)
	if c := streamSig(t, explicit); slices.Equal(a, c) {
		t.Fatal("slow=5 gave the default stream")
	}
}

// TestMixFractions runs seeded generators with non-default mixes and checks
// every class's share of the traces against its probability, within 4
// binomial standard deviations (exactly 0 when the probability is 0), and
// the late spans.
func TestMixFractions(t *testing.T) {
	for _, c := range []struct {
		mix Mix
		// Class probabilities. Slow is (ordinary share) x (slow + (1 -
		// slow) x 1 % log-normal tail), fast the rest.
		want map[string]float64
		// Late spans as a share of all spans, within [lateLo, lateHi].
		lateLo, lateHi float64
	}{
		{
			mix: Mix{Error: 2, Slow: 10, Anomaly: 3, Huge: 0.05, Late: 0},
			want: map[string]float64{
				ClassHuge: 0.0005, ClassError: 0.02, ClassAnomaly: 0.03,
				ClassSlow: 0.9495 * 0.109, // 0.1034955
				ClassFast: 0.9495 * 0.891, // 0.8460045
			},
			lateLo: 0, lateHi: 0,
		},
		{
			mix: Mix{Error: 10, Slow: 0, Anomaly: 0, Huge: 0, Late: 5},
			want: map[string]float64{
				ClassHuge: 0, ClassError: 0.1, ClassAnomaly: 0,
				ClassSlow: 0.9 * 0.01, // the log-normal tail alone: 0.009
				ClassFast: 0.9 * 0.99, // 0.891
			},
			// 5 % of the eligible spans, which are about 0.8 of all
			// spans: ~4 %. Late spans are drawn per template, so the
			// pool (300 templates per class) adds noise.
			lateLo: 0.03, lateHi: 0.05,
		},
	} {
		t.Run(c.mix.String(), func(t *testing.T) {
			cfg := Config{Seed: 11, Rate: 20000, Templates: 300}
			cfg.SetMix(c.mix)
			const n = 20000
			g, st := generate(t, cfg, n)
			if got := g.Mix(); got != c.mix {
				t.Fatalf("mix in effect %v, want %v", got, c.mix)
			}
			total := float64(len(st.insts))
			count := map[string]int{}
			lateTraces := 0
			for _, in := range st.insts {
				count[in.T.Class]++
				if in.T.Late > 0 {
					lateTraces++
				}
			}
			t.Logf("%d traces: %v; %d late spans of %d, %d late traces", len(st.insts), count, st.late, st.spans, lateTraces)
			for _, cl := range Classes {
				p := c.want[cl]
				sigma := math.Sqrt(total * p * (1 - p))
				if got := float64(count[cl]); math.Abs(got-total*p) > 4*sigma {
					t.Errorf("class %s: %.0f traces (%.3f %%), want %.1f +- %.1f (%.3f %%)", cl, got, 100*got/total, total*p, 4*sigma, 100*p)
				}
			}
			lateFrac := float64(st.late) / float64(st.spans)
			if lateFrac < c.lateLo || lateFrac > c.lateHi {
				t.Errorf("late spans %.4f of all, want [%.4f, %.4f]", lateFrac, c.lateLo, c.lateHi)
			}
			if c.mix.Late == 0 {
				if lateTraces != 0 {
					t.Errorf("late=0: %d traces with late spans", lateTraces)
				}
				for _, cl := range Classes {
					for _, tp := range g.Pool(cl) {
						if tp.Late != 0 {
							t.Fatalf("late=0: %s template with %d late spans", cl, tp.Late)
						}
					}
				}
			}
		})
	}
}

func TestParseMix(t *testing.T) {
	def := DefaultMix()
	for _, c := range []struct {
		in       string
		want     Mix
		wantKeys []string
		err      string
	}{
		{in: "", want: def},
		{in: "  ", want: def},
		{in: "error=3,slow=1,anomaly=0.5,huge=0.01,late=0.5",
			want:     Mix{Error: 3, Slow: 1, Anomaly: 0.5, Huge: 0.01, Late: 0.5},
			wantKeys: []string{"error", "slow", "anomaly", "huge", "late"}},
		{in: "slow=10", want: Mix{Error: 2, Slow: 10, Anomaly: 0.5, Huge: 0.01, Late: 0.6}, wantKeys: []string{"slow"}},
		{in: " late = 0 , huge=0 ", want: Mix{Error: 2, Slow: 1, Anomaly: 0.5, Huge: 0, Late: 0}, wantKeys: []string{"late", "huge"}},
		{in: "late=100", want: Mix{Error: 2, Slow: 1, Anomaly: 0.5, Huge: 0.01, Late: 100}, wantKeys: []string{"late"}},
		{in: "error=50,slow=49.49", want: Mix{Error: 50, Slow: 49.49, Anomaly: 0.5, Huge: 0.01, Late: 0.6}, wantKeys: []string{"error", "slow"}},
		{in: "error=0,slow=33.3,anomaly=33.3,huge=33.4", want: Mix{Error: 0, Slow: 33.3, Anomaly: 33.3, Huge: 33.4, Late: 0.6},
			wantKeys: []string{"error", "slow", "anomaly", "huge"}},
		{in: "1e1", err: `"1e1" is not key=percent`},
		{in: "slow=1,", err: `"" is not key=percent`},
		{in: "fast=90", err: `unknown key "fast" (keys: error, slow, anomaly, huge, late)`},
		{in: "Slow=1", err: `unknown key "Slow" (keys: error, slow, anomaly, huge, late)`},
		{in: "slow=1,slow=2", err: `key "slow" given twice`},
		{in: "slow=", err: `slow="" is not a number`},
		{in: "slow=1%", err: `slow="1%" is not a number`},
		{in: "huge=NaN", err: `huge="NaN" is not a number`},
		{in: "late=-inf", err: `late="-inf" is not a number`},
		{in: "anomaly=-0.1", err: `anomaly=-0.1 out of range [0, 100]`},
		{in: "late=101", err: `late=101 out of range [0, 100]`},
		{in: "error=51", err: `error=51 out of range [0, 50]`},
		{in: "error=50,slow=50", err: `error+slow+anomaly+huge = 100.51, more than 100`},
		{in: "slow=99.5,anomaly=0.5", err: `error+slow+anomaly+huge = 102.01, more than 100`},
	} {
		got, keys, err := ParseMix(c.in, def)
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("ParseMix(%q): error %v, want %q", c.in, err, c.err)
			}
			if got != def || keys != nil {
				t.Errorf("ParseMix(%q): failed but returned %v %v", c.in, got, keys)
			}
			continue
		}
		if err != nil || got != c.want || !slices.Equal(keys, c.wantKeys) {
			t.Errorf("ParseMix(%q) = %v %v %v, want %v %v", c.in, got, keys, err, c.want, c.wantKeys)
		}
	}
}

func TestMixString(t *testing.T) {
	if s := DefaultMix().String(); s != "error=2,slow=1,anomaly=0.5,huge=0.01,late=0.6" {
		t.Fatalf("default mix %q", s)
	}
	m := Mix{Error: 3.25, Slow: 0, Anomaly: 12, Huge: 1e-3, Late: 100}
	back, _, err := ParseMix(m.String(), DefaultMix())
	if err != nil || back != m {
		t.Fatalf("round trip of %q: %v %v", m.String(), back, err)
	}
}

func TestConfigMixInvalid(t *testing.T) {
	for _, c := range []struct {
		cfg func(*Config)
		err string
	}{
		{func(c *Config) { c.ErrorPct = 60 }, "workload: mix: error=60 out of range [0, 50]"},
		{func(c *Config) { m := DefaultMix(); m.Late = 101; c.Classes = &m }, "workload: mix: late=101 out of range [0, 100]"},
		{func(c *Config) { m := DefaultMix(); m.Slow = 99; c.Classes = &m }, "workload: mix: error+slow+anomaly+huge = 101.51, more than 100"},
	} {
		cfg := Config{Seed: 1, Rate: 1000, ErrorPct: 2, Templates: 1}
		c.cfg(&cfg)
		if _, err := NewGenerator(cfg); err == nil || err.Error() != c.err {
			t.Errorf("error %v, want %q", err, c.err)
		}
	}
}
