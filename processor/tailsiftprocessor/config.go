package tailsiftprocessor

import (
	"github.com/tailsift/tailsift/internal/tracebuf"
)

// Config is the processor's configuration. It is the same struct the
// tailsift receiver uses, so a block of YAML moves between them unchanged:
//
//	shards: 0              # 0 = GOMAXPROCS
//	completion: {quiet: 2s, max_wait: 30s, max_spans: 10000}
//	buffer: {max_bytes: 512MiB, max_queued_bytes: 64MiB}
//	decision_cache: {kept_max_bytes: 16MiB, dropped_max_entries: 1000000}
//	policies: [...]
type Config = tracebuf.Config
