package tailsiftextension

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/extension"

	"github.com/tailsift/tailsift/extension/tailsiftextension/internal/metadata"
	"github.com/tailsift/tailsift/internal/store"
)

const defaultEndpoint = "127.0.0.1:13134"

// NewFactory returns the tailsift extension factory.
func NewFactory() extension.Factory {
	return extension.NewFactory(metadata.Type, createDefaultConfig, create, metadata.ExtensionStability)
}

func createDefaultConfig() component.Config {
	server := confighttp.NewDefaultServerConfig()
	server.NetAddr.Endpoint = defaultEndpoint
	return &Config{
		ServerConfig: server,
		Directory:    "./data/store",
		Retention:    10 * time.Minute,
		MaxBytes:     4 << 30,
		Compression:  store.CompressionZstd,
		// Tempo's max_bytes_per_trace is 5 MB; 4 MiB is 10 000 to 40 000
		// spans, more than a trace view shows usefully.
		MaxResponseBytes: 4 << 20,
		// Four responses of max_response_bytes at once: a trace view
		// reads one trace, and a GET of a small trace lasts milliseconds.
		MaxConcurrentResponseBytes: 16 << 20,
		// Two keeps at once, about 24 MiB: a keep is a person's click in
		// a trace view, and one of a small trace lasts milliseconds.
		MaxConcurrentKeeps: 2,
	}
}

func create(_ context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
	return newExtension(set, cfg.(*Config))
}
