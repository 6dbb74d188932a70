package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// TestRoundSpecs: with -b-bin every tailsift collector of a round gets a
// variant b run beside it, contrib and the baseline do not, and the
// rounds that swap put b first, so that in sequential rounds neither build
// always runs first.
func TestRoundSpecs(t *testing.T) {
	names := func(specs []runSpec) []string {
		var out []string
		for _, s := range specs {
			out = append(out, runName(s.Kind, s.Variant))
		}
		return out
	}
	order := []kind{kindTailsift, kindFastpath, kindContrib, kindBaseline}
	assert.Equal(t, []string{"tailsift", "fastpath", "contrib", "baseline"}, names(roundSpecs(runSpec{}, order, false, false)))
	assert.Equal(t, []string{"tailsift", "tailsift/b", "fastpath", "fastpath/b", "contrib", "baseline"},
		names(roundSpecs(runSpec{}, order, true, false)))
	assert.Equal(t, []string{"tailsift/b", "tailsift", "fastpath/b", "fastpath", "contrib", "baseline"},
		names(roundSpecs(runSpec{}, order, true, true)))
	for _, s := range roundSpecs(runSpec{Label: "pair2", Rate: 500}, order, true, false) {
		assert.Equal(t, "pair2", s.Label, "every run keeps the round's settings")
		assert.InDelta(t, 500, s.Rate, 0)
	}
}

// TestBBinNeedsTailsift: -b-bin without a tailsift collector in the
// rounds is refused, naming the flag.
func TestBBinNeedsTailsift(t *testing.T) {
	_, err := parseOptions([]string{"-mode", "quick", "-sat=false", "-rate", "1000", "-processor=false", "-b-bin", "/x"}, &strings.Builder{})
	require.ErrorContains(t, err, "-b-bin")
}

// TestABSection: variant b's runs stay out of the side-by-side medians
// and ratios, and the A/B section pairs each with variant a's run of the
// same round and collector: b ÷ a per round, then per collector.
func TestABSection(t *testing.T) {
	rep := synthReport(t)
	rep.Opts.TailsiftBin, rep.Opts.BBin, rep.Opts.Concurrent = "/bin/a", "/bin/b", true
	before := rep.markdown()
	p99 := 55.0
	for i, cpu := range []float64{7.2, 9.9, 9} { // a: 8, 9, 10 → 0.9, 1.1, 0.9
		a := rep.Side[slicesIndex(rep.Side, kindTailsift, i)]
		rep.SideB = append(rep.SideB, &runResult{Kind: kindTailsift, Label: a.Label, Variant: "b", CPUMicrosPerSpan: cpu, P99AddedMs: &p99})
	}
	md := rep.markdown()
	// Everything else is variant a's alone: unchanged by b's runs.
	start := strings.Index(md, "## A/B")
	require.Positive(t, start)
	end := start + 1 + strings.Index(md[start+1:], "\n## ") + 1
	assert.Equal(t, before, md[:start]+md[end:])
	assert.Contains(t, md, "## A/B: b = `/bin/b` against a = `/bin/a`")
	assert.Contains(t, md, "at the same time (-concurrent)")
	assert.Contains(t, md, "| pair1 | tailsift | 8.00 | 7.20 | 0.900 | 60 | 55 | 100.00 / 100.00 | — / — |")
	assert.Contains(t, md, "| pair2 | tailsift | 9.00 | 9.90 | 1.100 |")
	assert.Contains(t, md, "- tailsift, b ÷ a over 3 rounds: 0.900 [0.900–1.100]")
}

// slicesIndex is the index in runs of the i-th run of kind k.
func slicesIndex(runs []*runResult, k kind, i int) int {
	for j, r := range runs {
		if r.Kind == k {
			if i == 0 {
				return j
			}
			i--
		}
	}
	return -1
}

// TestABProblemsNamed: a variant b run's problems are in the notes, under
// its variant's name.
func TestABProblemsNamed(t *testing.T) {
	rep := synthReport(t)
	rep.Opts.BBin = "/bin/b"
	rep.SideB = []*runResult{{Kind: kindFastpath, Label: "pair2", Variant: "b", CPUMicrosPerSpan: 3, Problems: []string{"window unsteady"}}}
	assert.Contains(t, rep.markdown(), "- pair2 fastpath/b: window unsteady")
}

// TestBSet: -b-set's settings parse as YAML values and land in variant b's
// config at their path; a path whose parent the config lacks is refused.
func TestBSet(t *testing.T) {
	o, err := parseOptions([]string{"-mode", "quick", "-sat=false", "-rate", "1000", "-fastpath", "-processor=false",
		"-b-set", "receivers.tailsift.output.batch_timeout=200ms", "-b-set", "receivers.tailsift.shards=2"}, &strings.Builder{})
	require.NoError(t, err)
	assert.Equal(t, []string{"receivers.tailsift.output.batch_timeout=200ms", "receivers.tailsift.shards=2"}, o.BSet)
	sets, err := parseBSets(o.BSet)
	require.NoError(t, err)
	require.Len(t, sets, 2)
	assert.Equal(t, []string{"receivers", "tailsift", "shards"}, sets[1].path)
	assert.Equal(t, 2, sets[1].value)

	p := ports{OTLP: 1, Metrics: 2, Health: 3, Pprof: 4, SinkGRPC: 5, SinkHTTP: 6}
	cfg, err := collectorConfig(testConfigs(t), kindFastpath, p, false, completionSetting{Wait: benchWait, WireOut: true}, 0, storeSetting{})
	require.NoError(t, err)
	out, err := applySettings(cfg, sets)
	require.NoError(t, err)
	var doc struct {
		Receivers struct {
			Tailsift struct {
				Shards int `yaml:"shards"`
				Output struct {
					Exporter     string `yaml:"exporter"`
					BatchTimeout string `yaml:"batch_timeout"`
				} `yaml:"output"`
				Protocols map[string]any `yaml:"protocols"`
			} `yaml:"tailsift"`
		} `yaml:"receivers"`
	}
	require.NoError(t, yaml.Unmarshal([]byte(out), &doc))
	rt := doc.Receivers.Tailsift
	assert.Equal(t, 2, rt.Shards)
	assert.Equal(t, "200ms", rt.Output.BatchTimeout)
	assert.Equal(t, "tailsift/sink", rt.Output.Exporter, "the rest of the block is kept")
	assert.Contains(t, rt.Protocols, "grpc")

	// The processor's path in the fast path's config: refused, not added.
	s, err := parseBSet("processors.tailsift.output.batch_timeout=200ms")
	require.NoError(t, err)
	_, err = applySettings(cfg, []bSetting{s})
	require.ErrorContains(t, err, "the config has no processors")

	for _, bad := range []string{"batch_timeout", "=1", "a..b=1", "a.b={"} {
		_, err := parseBSet(bad)
		assert.Error(t, err, bad)
	}
	_, err = parseOptions([]string{"-mode", "quick", "-sat=false", "-rate", "1000", "-b-set", "x"}, &strings.Builder{})
	require.ErrorContains(t, err, "key.path=value")
}
