package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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
	bin, cleanup, err := Binary(filepath.Join("..", ".."))
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
