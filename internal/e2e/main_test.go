package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// collectorBin is the otelcol-tailsift binary every test runs.
var collectorBin string

// haveHealthCheck reports whether the binary includes the health_check
// extension; readiness is polled through it when it does, and through the
// OTLP ports otherwise.
var haveHealthCheck bool

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	bin, cleanup, err := obtainBinary()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	defer cleanup()
	collectorBin = bin

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "components").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %s components: %v\n%s\n", bin, err, out)
		return 1
	}
	haveHealthCheck = hasComponent(out, "health_check")
	for _, want := range []string{"otlp", "tailsift", "otlp_grpc"} {
		if !hasComponent(out, want) {
			fmt.Fprintf(os.Stderr, "e2e: %s lacks component %q:\n%s\n", bin, want, out)
			return 1
		}
	}
	return m.Run()
}

// hasComponent reports whether the output of `otelcol-tailsift components`
// lists a component of the given type.
func hasComponent(components []byte, typ string) bool {
	return regexp.MustCompile(`(?m)^\s*-?\s*name:\s*` + regexp.QuoteMeta(typ) + `\s*$`).Match(components)
}

// obtainBinary returns the collector binary: $TAILSIFT_BIN if set, else a
// fresh build of cmd/otelcol-tailsift into a temporary directory.
func obtainBinary() (string, func(), error) {
	noop := func() {}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return "", noop, fmt.Errorf("find repository root: %w", err)
	}
	if bin := os.Getenv("TAILSIFT_BIN"); bin != "" {
		// A relative path may be meant from the package directory (where
		// go test runs) or from the repository root (where make runs).
		candidates := []string{bin}
		if !filepath.IsAbs(bin) {
			candidates = append(candidates, filepath.Join(root, bin))
		}
		for _, c := range candidates {
			if abs, err := filepath.Abs(c); err == nil {
				if fi, err := os.Stat(abs); err == nil && !fi.IsDir() {
					return abs, noop, nil
				}
			}
		}
		return "", noop, fmt.Errorf("TAILSIFT_BIN=%q: no such file (looked in %s)", bin, strings.Join(candidates, ", "))
	}

	src := filepath.Join(root, "cmd", "otelcol-tailsift")
	if _, err := os.Stat(filepath.Join(src, "main.go")); err != nil {
		return "", noop, fmt.Errorf("TAILSIFT_BIN is not set and the distribution sources are missing: %w", err)
	}
	dir, err := os.MkdirTemp("", "tailsift-e2e-")
	if err != nil {
		return "", noop, fmt.Errorf("create build directory: %w", err)
	}
	cleanup := func() { _ = os.RemoveAll(dir) }
	bin := filepath.Join(dir, "otelcol-tailsift")

	goTool, err := exec.LookPath("go")
	if err != nil {
		cleanup()
		return "", noop, fmt.Errorf("find the go tool to build %s: %w", src, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool, "build", "-buildvcs=false", "-o", bin, ".")
	cmd.Dir = src
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		cleanup()
		return "", noop, fmt.Errorf("build %s: %w\n%s", src, err, strings.TrimSpace(out.String()))
	}
	fmt.Fprintf(os.Stderr, "e2e: built %s in %s\n", bin, time.Since(start).Round(time.Millisecond))
	return bin, cleanup, nil
}
