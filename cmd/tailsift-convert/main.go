// Command tailsift-convert turns a collector configuration that uses
// contrib's tail_sampling (or adaptive_tail_sampling) processor into one that
// uses tailsift: the processor block is converted key by key, the pipelines
// are rewritten to name the new processor, and everything else is left as it
// was. Every contrib key is either mapped, with a note saying how, or reported
// in a warning: none is dropped silently. See docs/migrating-from-contrib.md.
//
//	tailsift-convert [-o out.yaml] [-bytes-per-trace 10240] [-strict] in.yaml
//
// Notes and warnings go to stderr. The exit code is 1 when the input cannot
// be converted, and with -strict also when there is a warning.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tailsift-convert", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "write the converted configuration to this file (default: stdout)")
	bpt := fs.Int64("bytes-per-trace", DefaultBytesPerTrace, "average trace size in bytes, to turn num_traces into buffer.max_bytes")
	spt := fs.Float64("spans-per-trace", DefaultSpansPerTrace, "average spans per trace, to turn adaptive_throughput's goal_throughput (spans/s) into traces/s")
	strict := fs.Bool("strict", false, "exit 1 when any key has no equivalent (a warning)")
	quiet := fs.Bool("q", false, "print warnings only, not notes")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: tailsift-convert [flags] config.yaml (- for stdin)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	if *bpt <= 0 {
		fmt.Fprintf(stderr, "tailsift-convert: -bytes-per-trace must be positive, got %d\n", *bpt)
		return 2
	}
	if !(*spt > 0) {
		fmt.Fprintf(stderr, "tailsift-convert: -spans-per-trace must be positive, got %v\n", *spt)
		return 2
	}
	in, err := readInput(fs.Arg(0), stdin)
	if err != nil {
		fmt.Fprintf(stderr, "tailsift-convert: %v\n", err)
		return 1
	}
	conv, msgs, err := Convert(in, Options{BytesPerTrace: *bpt, SpansPerTrace: *spt})
	if err != nil {
		fmt.Fprintf(stderr, "tailsift-convert: %v\n", err)
		return 1
	}
	warnings := 0
	for _, m := range msgs {
		if m.Severity == Warning {
			warnings++
		} else if *quiet {
			continue
		}
		fmt.Fprintln(stderr, m)
	}
	if err := writeOutput(*out, conv, stdout); err != nil {
		fmt.Fprintf(stderr, "tailsift-convert: %v\n", err)
		return 1
	}
	if warnings > 0 {
		fmt.Fprintf(stderr, "tailsift-convert: %d key(s) without an equivalent; review the warnings above\n", warnings)
		if *strict {
			return 1
		}
	}
	return 0
}

func readInput(name string, stdin io.Reader) ([]byte, error) {
	if name == "-" {
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("read stdin: %w", err)
		}
		return b, nil
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read the configuration: %w", err)
	}
	return b, nil
}

func writeOutput(name string, b []byte, stdout io.Writer) error {
	if name == "" {
		_, err := stdout.Write(b)
		if err != nil {
			return fmt.Errorf("write stdout: %w", err)
		}
		return nil
	}
	if err := os.WriteFile(name, b, 0o644); err != nil {
		return fmt.Errorf("write the converted configuration: %w", err)
	}
	return nil
}
