package tailsiftextension

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/config/confighttp"

	"github.com/tailsift/tailsift/internal/store"
	"github.com/tailsift/tailsift/internal/tracebuf"
)

// Config is the tailsift extension's configuration.
type Config struct {
	// ServerConfig is the HTTP server of the retrieval API (and of the
	// pages other tailsift components mount on it); TLS and auth apply.
	ServerConfig confighttp.ServerConfig `mapstructure:",squash"`
	// Directory holds the store's segment files and its lock file. Two
	// collectors cannot share one directory.
	Directory string `mapstructure:"directory"`
	// Retention is how long spans and decisions are kept on disk.
	Retention time.Duration `mapstructure:"retention"`
	// MaxBytes bounds the store on disk; when it is reached the oldest
	// segments are evicted first, even if younger than Retention.
	MaxBytes tracebuf.ByteSize `mapstructure:"max_bytes"`
	// Compression of the segment blocks: zstd (the default: 68–79 B/span
	// on the benchmark workload, busy to idle writer), s2 (88–98 B/span,
	// about 0.4 µs of CPU a span against zstd's 1 µs) or s2col (s2 of the
	// requests re-encoded column by column: 12–13 % fewer bytes than s2 at
	// about 1.5 times its CPU, half zstd's). A store reads every one,
	// whichever it writes.
	Compression string `mapstructure:"compression"`
	// MaxResponseBytes bounds the spans GET /api/v1/traces/{trace_id}
	// returns, in OTLP protobuf bytes (the protobuf body's size; the JSON
	// body of the same spans is about 1.5-2 times larger): a larger
	// trace's first spans recorded are returned, the response says
	// Tailsift-Truncated: true and counts the others in
	// Tailsift-Spans-Omitted. One request allocates a few times this,
	// whatever the trace's size.
	MaxResponseBytes tracebuf.ByteSize `mapstructure:"max_response_bytes"`
	// MaxConcurrentResponseBytes bounds the responses of all GET
	// /api/v1/traces/{trace_id} requests served at once: each takes
	// max_response_bytes of it while it reads the trace and writes its
	// response, so at most this ÷ max_response_bytes are served at once. A
	// GET that finds it taken waits up to a second (or its own deadline)
	// for room, then gets 503 with Retry-After: 1, counted in
	// extension_tailsift_api_responses_refused. Must be at least
	// max_response_bytes.
	MaxConcurrentResponseBytes tracebuf.ByteSize `mapstructure:"max_concurrent_response_bytes"`
	// MaxConcurrentKeeps bounds the POST /api/v1/traces/{trace_id}/keep
	// requests under way at once. A keep sends the stored trace in
	// requests of at most 1 MiB of stored spans and holds about 12 MiB
	// (one of them and its pdata, a store block's buffers) and the set of
	// the spans it sent (40–60 bytes a span, store.TestSpanSetBytesPerSpan), so keeps hold at most
	// about this × that. A keep that finds them all taken waits up to a
	// second (or its own deadline), then gets 503 with Retry-After: 1,
	// counted in extension_tailsift_api_responses_refused{request=keep},
	// and records nothing. A keep also ends at the server's write_timeout
	// less a tenth of it (at most a second), with 504. Between 1 and 64.
	MaxConcurrentKeeps int `mapstructure:"max_concurrent_keeps"`
}

// maxConcurrentResponseBytes is the largest max_concurrent_response_bytes.
const maxConcurrentResponseBytes = 64 << 30

// maxConcurrentKeeps is the largest max_concurrent_keeps.
const maxConcurrentKeeps = 64

// Validate checks the store settings; the HTTP server validates itself.
func (c *Config) Validate() error {
	var errs []error
	if c.Directory == "" {
		errs = append(errs, errors.New("directory: must not be empty"))
	}
	if c.Retention < time.Second || c.Retention > 7*24*time.Hour {
		errs = append(errs, fmt.Errorf("retention: must be between 1s and 168h, got %v", c.Retention))
	}
	switch c.Compression {
	case store.CompressionZstd, store.CompressionS2, store.CompressionS2Col:
	default:
		errs = append(errs, fmt.Errorf("compression: must be zstd, s2 or s2col, got %q", c.Compression))
	}
	if c.MaxBytes < 16<<20 {
		errs = append(errs, fmt.Errorf("max_bytes: must be at least 16MiB, got %d", c.MaxBytes))
	}
	if c.MaxResponseBytes < 64<<10 || c.MaxResponseBytes > 1<<30 {
		errs = append(errs, fmt.Errorf("max_response_bytes: must be between 64KiB and 1GiB, got %d", c.MaxResponseBytes))
	}
	if c.MaxConcurrentResponseBytes < c.MaxResponseBytes || c.MaxConcurrentResponseBytes > maxConcurrentResponseBytes {
		errs = append(errs, fmt.Errorf("max_concurrent_response_bytes: must be between max_response_bytes (%d) and 64GiB, got %d",
			c.MaxResponseBytes, c.MaxConcurrentResponseBytes))
	}
	if c.MaxConcurrentKeeps < 1 || c.MaxConcurrentKeeps > maxConcurrentKeeps {
		errs = append(errs, fmt.Errorf("max_concurrent_keeps: must be between 1 and %d, got %d", maxConcurrentKeeps, c.MaxConcurrentKeeps))
	}
	return errors.Join(errs...)
}
