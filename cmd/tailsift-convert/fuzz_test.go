package main

import (
	"os"
	"path/filepath"
	"testing"

	"go.yaml.in/yaml/v3"
)

// FuzzConvert: any YAML is converted or refused, never a panic; what
// converts parses as YAML, and what converts without a warning loads as a
// tailsift processor.
func FuzzConvert(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.yaml")
	for _, p := range seeds {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("processors:\n  tail_sampling: {num_traces: 1000, policies: [{name: a, type: probabilistic, probabilistic: {sampling_percentage: &p 150}}, {name: b, type: probabilistic, probabilistic: {sampling_percentage: *p}}]}\n"))
	f.Add([]byte("processors:\n  tail_sampling:\n    <<: {decision_wait: 5s}\n    policies: [{name: a, type: always_sample}]\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 64<<10 {
			in = in[:64<<10]
		}
		out, msgs, err := Convert(in, Options{})
		if err != nil {
			return
		}
		var doc any
		if err := yaml.Unmarshal(out, &doc); err != nil {
			t.Fatalf("output does not parse: %v\n%s", err, out)
		}
		for _, m := range msgs {
			if m.Severity == Warning {
				return
			}
		}
		if err := outputLoads(out); err != nil {
			t.Fatalf("converted without a warning, but: %v\ninput:\n%s\noutput:\n%s", err, in, out)
		}
	})
}
