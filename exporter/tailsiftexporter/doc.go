//go:generate go tool -modfile=../../internal/tools/mdatagen/go.mod mdatagen metadata.yaml

// Package tailsiftexporter is the agent tier's exporter: it routes every span
// by trace ID to the gateway that owns the trace, on consistent hashing over
// a static or DNS member set, and sends each gateway one OTLP request per
// batch over gRPC. It works on wire bytes: the incoming traces are marshalled
// once and split without building pdata per trace.
package tailsiftexporter // import "github.com/tailsift/tailsift/exporter/tailsiftexporter"
