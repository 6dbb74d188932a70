//go:generate go tool -modfile=../../internal/tools/mdatagen/go.mod mdatagen metadata.yaml

// Package tailsiftprocessor is a tail-sampling processor: it buffers spans by
// trace ID, decides once a trace is complete and forwards the kept traces.
package tailsiftprocessor // import "github.com/tailsift/tailsift/processor/tailsiftprocessor"
