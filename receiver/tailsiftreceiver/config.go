package tailsiftreceiver

import (
	"encoding"
	"errors"
	"fmt"
	"net/url"
	"path"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/confmap"

	"github.com/tailsift/tailsift/internal/red"
	"github.com/tailsift/tailsift/internal/tracebuf"
)

// Config is the receiver's configuration: the OTLP protocols to serve, and
// the trace buffer's settings, which are the tailsift processor's settings
// (the same struct, tracebuf.Config) squashed in, so that a block of YAML
// moves between the two unchanged:
//
//	protocols:
//	  grpc: {endpoint: 127.0.0.1:4317}
//	  http: {endpoint: 127.0.0.1:4318}
//	shards: 0
//	completion: {quiet: 2s, max_wait: 30s, max_spans: 10000}
//	buffer: {max_bytes: 512MiB, max_queued_bytes: 64MiB}
//	decision_cache: {kept_max_bytes: 16MiB, dropped_max_entries: 1000000}
//	policies: [...]
//
// The buffer settings are promoted fields (cfg.Shards, cfg.Completion, ...).
type Config struct {
	// Protocols are the OTLP transports to serve, as in the otlp receiver.
	Protocols Protocols `mapstructure:"protocols"`

	// RED configures the request, error and duration metrics the receiver
	// sends when it is also in a metrics pipeline: from every span it
	// accepts, before sampling.
	RED red.Config `mapstructure:"red"`

	// Route, when set, makes the receiver an agent that does not sample: it
	// hands every request's bytes to a tailsift exporter, which splits them
	// by trace ID over its gateways (route.go). The buffer settings are then
	// unused.
	Route configoptional.Optional[RouteConfig] `mapstructure:"route"`

	// bufferConfig is tracebuf.Config under an unexported name: confmap
	// decodes a squashed embedded struct's exported fields all the same,
	// but confmap.Validate does not walk into it, which would prefix every
	// error with "config::", a key that does not exist. Validate checks it
	// instead, with the processor's key paths; Marshal writes it back.
	bufferConfig `mapstructure:",squash"`
}

type bufferConfig = tracebuf.Config

// Protocols is the configuration of the OTLP transports. Each is built like
// the otlp receiver's, so TLS, authentication, keepalive, message size
// limits and request decompression work the same.
type Protocols struct {
	GRPC configoptional.Optional[configgrpc.ServerConfig] `mapstructure:"grpc"`
	HTTP configoptional.Optional[HTTPConfig]              `mapstructure:"http"`
	// prevent unkeyed literal initialization
	_ struct{}
}

// HTTPConfig is the OTLP/HTTP server configuration.
type HTTPConfig struct {
	ServerConfig confighttp.ServerConfig `mapstructure:",squash"`
	// TracesURLPath is where traces are received; "/v1/traces" by default.
	TracesURLPath SanitizedURLPath `mapstructure:"traces_url_path,omitempty"`
	// prevent unkeyed literal initialization
	_ struct{}
}

// SanitizedURLPath is a URL path that always starts with a slash.
type SanitizedURLPath string

var _ encoding.TextUnmarshaler = (*SanitizedURLPath)(nil)

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *SanitizedURLPath) UnmarshalText(text []byte) error {
	u, err := url.Parse(string(text))
	if err != nil {
		return fmt.Errorf("invalid HTTP URL path set for signal: %w", err)
	}
	if !path.IsAbs(u.Path) {
		u.Path = "/" + u.Path
	}
	*s = SanitizedURLPath(u.Path)
	return nil
}

var (
	_ component.Config  = (*Config)(nil)
	_ confmap.Marshaler = Config{}
)

// Validate checks that a protocol is set, and the buffer settings with the
// same errors as the tailsift processor's.
func (c *Config) Validate() error {
	var errs []error
	if !c.Protocols.GRPC.HasValue() && !c.Protocols.HTTP.HasValue() {
		errs = append(errs, errors.New("protocols: must specify at least one of grpc or http"))
	}
	if c.Route.HasValue() {
		errs = append(errs, c.validateRoute())
	}
	berr := confmap.Validate(&c.bufferConfig)
	errs = append(errs, berr)
	if berr == nil && !c.Route.HasValue() { // an agent routes; its buffer is unused
		errs = append(errs, c.validateRequestLimits())
	}
	return errors.Join(errs...)
}

// grpcDefaultMaxRecvMsgSize is gRPC's limit on a received message when
// max_recv_msg_size_mib is not set.
const grpcDefaultMaxRecvMsgSize = 4 << 20

// httpDefaultMaxRequestBodySize is confighttp's limit on a request body
// when max_request_body_size is not set (or not positive).
const httpDefaultMaxRequestBodySize = 20 << 20

// validateRequestLimits refuses a request size limit over
// buffer::max_queued_bytes: a request that large could never be queued, and
// would be refused permanently, after it was read whole (the buffer holds
// the queue to its budget: Buffer.reserve). A request within the limit
// also takes its scan in the queue, 136 bytes a span, so a request of the
// limit's size may still be refused at run time (HTTP 413,
// INVALID_ARGUMENT) when its spans are small; a queue of a few times the
// largest request leaves room for that and for other requests.
func (c *Config) validateRequestLimits() error {
	queue := int64(c.Buffer.MaxQueuedBytes)
	var errs []error
	if c.Protocols.HTTP.HasValue() {
		limit, dflt := c.Protocols.HTTP.Get().ServerConfig.MaxRequestBodySize, ""
		if limit <= 0 {
			limit, dflt = httpDefaultMaxRequestBodySize, " (the default)"
		}
		if limit > queue {
			errs = append(errs, fmt.Errorf("protocols::http::max_request_body_size: %d bytes%s is more than buffer::max_queued_bytes (%d): "+
				"a request that large could never be queued; raise buffer::max_queued_bytes or lower protocols::http::max_request_body_size", limit, dflt, queue))
		}
	}
	if c.Protocols.GRPC.HasValue() {
		limit, dflt := int64(c.Protocols.GRPC.Get().MaxRecvMsgSizeMiB)<<20, ""
		if limit <= 0 {
			limit, dflt = grpcDefaultMaxRecvMsgSize, " (gRPC's default)"
		}
		if limit > queue {
			errs = append(errs, fmt.Errorf("protocols::grpc::max_recv_msg_size_mib: %d bytes%s is more than buffer::max_queued_bytes (%d): "+
				"a request that large could never be queued; raise buffer::max_queued_bytes or lower protocols::grpc::max_recv_msg_size_mib", limit, dflt, queue))
		}
	}
	return errors.Join(errs...)
}

// Marshal implements confmap.Marshaler, so that the buffer settings appear
// in a marshaled configuration (print-config) at the top level. It has a
// value receiver because confmap looks for it on the dereferenced struct.
func (c Config) Marshal(conf *confmap.Conf) error {
	return conf.Marshal(struct {
		Protocols       Protocols                            `mapstructure:"protocols"`
		RED             red.Config                           `mapstructure:"red"`
		Route           configoptional.Optional[RouteConfig] `mapstructure:"route"`
		tracebuf.Config `mapstructure:",squash"`
	}{Protocols: c.Protocols, RED: c.RED, Route: c.Route, Config: c.bufferConfig})
}
