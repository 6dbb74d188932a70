//go:generate go tool -modfile=../../internal/tools/mdatagen/go.mod mdatagen metadata.yaml

// Package otlpguardreceiver is the distribution's `otlp` receiver: the
// upstream OTLP receiver (go.opentelemetry.io/collector/receiver/otlpreceiver)
// with a guard in front of its decoders that refuses a request whose
// AnyValues nest deeper than otlpguard.MaxDepth, over gRPC and HTTP, for
// every signal, with no configuration. pdata decodes nested AnyValues by
// recursion, so without the guard one such request overflows the goroutine
// stack and kills the collector. See docs/hardening.md.
package otlpguardreceiver // import "github.com/tailsift/tailsift/receiver/otlpguardreceiver"
