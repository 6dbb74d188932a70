package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Binary returns the collector binary the end-to-end tests run:
// $TAILSIFT_BIN if set, else a fresh build of cmd/otelcol-tailsift into a
// temporary directory that the returned func removes. repo is the
// repository root, relative to the test's package directory or absolute.
func Binary(repo string) (string, func(), error) {
	noop := func() {}
	root, err := filepath.Abs(repo)
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
