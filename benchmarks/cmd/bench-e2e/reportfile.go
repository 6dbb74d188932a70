package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// report is what the suite measured.
type report struct {
	Opts     options     `json:"options"`
	Machine  machineInfo `json:"machine"`
	Started  time.Time   `json:"started"`
	Finished time.Time   `json:"finished"`
	Pinned   bool        `json:"pinned"`
	Commands []string    `json:"commands"`
	Side     []*runResult
	// SideB are the runs of variant b (-b-bin), kept apart from Side so
	// that every median and ratio of the report stays variant a's.
	SideB     []*runResult `json:"side_b,omitempty"`
	Sat       []*satStep   `json:"saturation"`
	SatRate   map[kind]satOutcome
	Profile   *runResult `json:"profile_run,omitempty"`
	ProfTop   string     `json:"profile_top,omitempty"`
	Notes     []string   `json:"notes"`
	LoadAvg   [2]string  `json:"loadavg_start_end"`
	SourceSum string     `json:"tailsift_source_sha256"`
}

func (rep *report) fileBase() string {
	b := "e2e-" + rep.Started.UTC().Format("2006-01-02")
	if rep.Opts.Tag != "" {
		b += "-" + rep.Opts.Tag
	}
	return b
}

func (rep *report) write(md string) error {
	if err := os.MkdirAll(rep.Opts.OutDir, 0o755); err != nil {
		return err
	}
	base := filepath.Join(rep.Opts.OutDir, rep.fileBase())
	if err := os.WriteFile(base+".md", []byte(md), 0o644); err != nil {
		return err
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(base+".json", append(b, '\n'), 0o644); err != nil {
		return err
	}
	files := []string{base + ".md", base + ".json"}
	if len(rep.Sat) > 0 {
		svg := filepath.Join(rep.Opts.OutDir, rep.svgName())
		if err := os.WriteFile(svg, []byte(rep.svg()), 0o644); err != nil {
			return err
		}
		files = append(files, svg)
	}
	fmt.Fprintf(os.Stderr, "bench-e2e: wrote %s\n", strings.Join(files, ", "))
	return nil
}

// loadReport reads a results JSON written by write. The saturation steps
// embed *runResult (flattened in the JSON), which encoding/json cannot
// allocate for an unexported type, so they are decoded in two passes.
func loadReport(path string) (*report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	type alias report
	var a struct {
		alias
		Sat json.RawMessage `json:"saturation"`
	}
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, err
	}
	rep := report(a.alias)
	if len(a.Sat) > 0 && string(a.Sat) != "null" {
		var runs []*runResult
		var meta []struct {
			Pass   bool   `json:"pass"`
			Reason string `json:"reason"`
		}
		if err := json.Unmarshal(a.Sat, &runs); err != nil {
			return nil, err
		}
		if err := json.Unmarshal(a.Sat, &meta); err != nil {
			return nil, err
		}
		for i, r := range runs {
			rep.Sat = append(rep.Sat, &satStep{runResult: r, Pass: meta[i].Pass, Reason: meta[i].Reason})
		}
	}
	if rep.SatRate == nil {
		rep.SatRate = map[kind]satOutcome{}
	}
	return &rep, nil
}

// svgName is the plot's file name: e2e-cpu-rss.svg, or
// e2e-cpu-rss-<tag>.svg for tagged runs.
func (rep *report) svgName() string {
	if rep.Opts.Tag != "" {
		return "e2e-cpu-rss-" + rep.Opts.Tag + ".svg"
	}
	return "e2e-cpu-rss.svg"
}
