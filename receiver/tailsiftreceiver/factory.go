package tailsiftreceiver

import (
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configtls"
	"go.opentelemetry.io/collector/receiver"

	"github.com/tailsift/tailsift/internal/red"
	"github.com/tailsift/tailsift/internal/tracebuf"
	"github.com/tailsift/tailsift/receiver/tailsiftreceiver/internal/metadata"
)

const (
	defaultGRPCEndpoint  = "localhost:4317"
	defaultHTTPEndpoint  = "localhost:4318"
	defaultTracesURLPath = "/v1/traces"
	// defaultReadHeaderTimeout bounds reading a request's headers, and
	// defaultReadTimeout the whole request, body included (20MiB at the
	// default max_request_body_size is 5.6 Mbit/s), on OTLP/HTTP.
	defaultReadHeaderTimeout = 10 * time.Second
	defaultReadTimeout       = 30 * time.Second
)

// NewFactory returns the tailsift receiver factory.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(
		metadata.Type,
		createDefaultConfig,
		receiver.WithTraces(createTraces, metadata.TracesStability),
		receiver.WithMetrics(createMetrics, metadata.MetricsStability),
	)
}

// createDefaultConfig serves OTLP on the otlp receiver's default endpoints,
// with the same gRPC and HTTP server defaults, and takes the buffer and
// policy defaults from the tailsift processor, so the two never drift apart.
func createDefaultConfig() component.Config {
	grpcCfg := configgrpc.NewDefaultServerConfig()
	grpcCfg.NetAddr.Endpoint = defaultGRPCEndpoint
	grpcCfg.ReadBufferSize = 512 * 1024

	httpCfg := confighttp.NewDefaultServerConfig()
	httpCfg.NetAddr.Endpoint = defaultHTTPEndpoint
	httpCfg.TLS = configoptional.None[configtls.ServerConfig]()
	httpCfg.WriteTimeout = 0
	// Unlike the otlp receiver, a connection that is slow to send its
	// request is cut off: it would hold its buffer and its handler forever.
	httpCfg.ReadHeaderTimeout = defaultReadHeaderTimeout
	httpCfg.ReadTimeout = defaultReadTimeout
	httpCfg.IdleTimeout = 0 //nolint:staticcheck // SA1019: as the otlp receiver, for keepalive composition

	return &Config{
		Protocols: Protocols{
			GRPC: configoptional.Default(grpcCfg),
			HTTP: configoptional.Default(HTTPConfig{
				ServerConfig:  httpCfg,
				TracesURLPath: defaultTracesURLPath,
			}),
		},
		RED:          red.DefaultConfig(),
		bufferConfig: tracebuf.DefaultConfig(),
	}
}
