package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tailsift/tailsift/internal/sinkreport"
)

// printTable writes the human-readable summary of rep.
func printTable(out io.Writer, rep *sinkreport.Report) error {
	w := &printer{w: out}
	r := rep.Received
	w.printf("tailsift-sink: stopped (%s); received %d requests, %d spans (%d duplicate arrivals), %d traces",
		rep.StopReason, r.Requests, r.Spans, r.DuplicateArrivals, r.Traces)
	if r.FirstArrivalUnixNano != 0 {
		w.printf(" over %s", time.Duration(r.LastArrivalUnixNano-r.FirstArrivalUnixNano).Round(time.Millisecond))
	}
	w.println()
	if m := rep.Manifest; m != nil {
		w.printf("manifest %s: %d traces (%d late), seed %d, rate %g/s, %gs",
			m.Path, m.Traces, m.LateTraces, m.Header.Seed, m.Header.Rate, m.Header.DurationS)
		if m.InvalidTraceIDs+m.DuplicateTraceIDs > 0 {
			w.printf("; %d invalid and %d duplicate trace IDs skipped", m.InvalidTraceIDs, m.DuplicateTraceIDs)
		}
		if m.ReadError != "" {
			w.printf("; READ ERROR: %s", m.ReadError)
		}
		w.println()
	}
	w.println()

	tw := &printer{w: tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)}
	rows := append(slices.Clone(rep.Classes), rep.Total)
	if rep.Scored {
		tw.println("class\tsent\tkept\tkept%\tcomplete\tpartial\tdup\tspans sent\tspans recv\tadj traces\terr%\tadj spans\terr%\t")
		for _, c := range rows {
			if c.TracesSent == 0 && c.TracesKept == 0 && c.Class != "total" {
				continue
			}
			tw.printf("%s\t%d\t%d\t%s\t%d\t%d\t%d\t%d\t%d\t%.1f\t%s\t%.1f\t%s\t\n",
				c.Class, c.TracesSent, c.TracesKept, pct(c.KeptFraction), c.TracesComplete, c.TracesPartial,
				c.TracesDuplicated, c.SpansSent, c.SpansReceived,
				c.Adjusted.TracesEstimate, pct(c.Adjusted.TracesRelError),
				c.Adjusted.SpansEstimate, pct(c.Adjusted.SpansRelError))
		}
		tw.flush()
		w.println()
		tw.println("decision latency ms\tn\tlate excl.\tp50\tp90\tp99\tmax\t")
		for _, c := range rows {
			l := c.Latency
			if l == nil || (l.Count == 0 && l.ExcludedLate == 0) {
				continue
			}
			tw.printf("%s\t%d\t%d\t%s\t%s\t%s\t%s\t\n", c.Class, l.Count, l.ExcludedLate,
				num(l.P50), num(l.P90), num(l.P99), num(l.Max))
		}
		tw.flush()
		w.println("(latency = last span's arrival at the sink - loadgen's last send - completion; late traces excluded)")
	} else {
		tw.println("class (label)\ttraces\tspans\tdup arrivals\tadj traces\tadj spans\tspans w/o th\t")
		for _, c := range rows {
			if c.TracesKept == 0 && c.Class != "total" {
				continue
			}
			tw.printf("%s\t%d\t%d\t%d\t%.1f\t%.1f\t%d\t\n", c.Class, c.TracesKept, c.SpansReceived,
				c.DuplicateArrivals, c.Adjusted.TracesEstimate, c.Adjusted.SpansEstimate, c.SpansMissingTh)
		}
		tw.flush()
	}
	w.println()

	if fc := rep.FastCheck; fc != nil {
		verdict := "OUTSIDE 3σ"
		if fc.Within3Sigma {
			verdict = "within 3σ"
		}
		w.printf("fast kept: %d of %d (%s) vs p=%g: expected %.1f, σ %.2f, z %s: %s\n",
			fc.Kept, fc.Sent, pct(fc.KeptFraction), fc.Probability, fc.Expected, fc.Sigma, num(fc.Z), verdict)
	}
	if rep.AnomalyRecall != nil {
		w.printf("anomaly recall: %s\n", pct(rep.AnomalyRecall))
	}
	if probs := rep.Total.ThProbabilities; len(probs) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(probs)) {
			parts = append(parts, fmt.Sprintf("%s×%d", k, probs[k]))
		}
		w.printf("th probabilities of kept traces: %s\n", strings.Join(parts, ", "))
	}
	f := rep.Foreign
	w.printf("foreign: %d unlabelled spans (%d traces)", f.UnlabelledSpans, f.UnlabelledTraces)
	if rep.Scored {
		w.printf(", %d traces / %d spans not in the manifest, %d traces with labels disagreeing with it",
			f.TracesNotInManifest, f.SpansNotInManifest, f.LabelMismatchTraces)
	}
	w.println()
	w.printf("missing th: %d spans, %d traces without any\n", rep.MissingTh.Spans, rep.MissingTh.Traces)
	for _, n := range rep.Notes {
		w.printf("note: %s\n", n)
	}
	if w.err == nil {
		w.err = tw.err
	}
	return w.err
}

func pct(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.2f", *v*100)
}

func num(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.2f", *v)
}

// printer writes formatted text and keeps the first error.
type printer struct {
	w   io.Writer
	err error
}

// Write lets a tabwriter write through the printer.
func (p *printer) Write(b []byte) (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	var n int
	n, p.err = p.w.Write(b)
	return n, p.err
}

func (p *printer) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

func (p *printer) println(args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintln(p.w, args...)
	}
}

// flush flushes a tabwriter underneath, whose write errors surface here.
func (p *printer) flush() {
	if f, ok := p.w.(interface{ Flush() error }); ok && p.err == nil {
		p.err = f.Flush()
	}
}
