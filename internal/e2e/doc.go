// Package e2e holds the end-to-end tests of the otelcol-tailsift
// distribution: each test starts the real collector binary as a child
// process with its own configuration, sends OTLP traffic through the
// OpenTelemetry Go SDK exporters (or raw OTLP clients), and inspects what
// the collector forwards to an in-test OTLP gRPC sink.
//
// The binary is taken from $TAILSIFT_BIN when set (the Makefile's test
// target builds bin/otelcol-tailsift and sets it), and otherwise built once
// per test run from cmd/otelcol-tailsift.
//
//	go test -race -count=1 ./internal/e2e/ -v
package e2e
