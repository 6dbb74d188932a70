//go:generate go tool -modfile=../../internal/tools/mdatagen/go.mod mdatagen metadata.yaml

// Package tailsiftreceiver is an OTLP trace receiver with tail sampling built
// in: it takes OTLP/gRPC and OTLP/HTTP export requests, hands their encoded
// bytes to the tailsift trace buffer without decoding them into pdata, and
// passes only the kept traces to the next consumer.
package tailsiftreceiver // import "github.com/tailsift/tailsift/receiver/tailsiftreceiver"
