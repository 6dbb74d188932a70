package tailsiftexporter

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configcompression"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/tailsift/tailsift/exporter/tailsiftexporter/internal/metadata"
	"github.com/tailsift/tailsift/internal/membership"
	"github.com/tailsift/tailsift/internal/router"
)

// NewFactory returns the tailsift exporter factory.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(
		metadata.Type,
		createDefaultConfig,
		exporter.WithTraces(createTraces, metadata.TracesStability),
	)
}

func createDefaultConfig() component.Config {
	grpc := configgrpc.NewDefaultClientConfig()
	grpc.Compression = configcompression.TypeZstd
	// A send to a gateway that cannot be reached fails at once, so that its
	// spans fail over instead of waiting for the connection.
	grpc.WaitForReady = false
	return &Config{
		Members: membership.NewDefaultConfig(),
		GRPC:    grpc,
		Failover: router.FailoverConfig{
			Attempts:      2,
			Backoff:       100 * time.Millisecond,
			ProbeInterval: time.Second,
		},
		Timeout: exporterhelper.NewDefaultTimeoutConfig(),
		Queue:   configoptional.Some(exporterhelper.NewDefaultQueueConfig()),
		Retry:   configretry.NewDefaultBackOffConfig(),
	}
}

func createTraces(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Traces, error) {
	return newExporter(ctx, set, cfg.(*Config))
}
