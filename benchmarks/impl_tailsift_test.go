package benchmarks

import (
	"github.com/tailsift/tailsift/processor/tailsiftprocessor"
)

func init() {
	implRegistry = append(implRegistry, impl{
		name:    "tailsift",
		factory: tailsiftprocessor.NewFactory,
		config: func(shards int) map[string]any {
			return map[string]any{
				"shards": shards,
				// Long waits: every trace stays buffered for the whole run.
				"completion":     map[string]any{"quiet": "30s", "max_wait": "30s", "max_spans": 10000},
				"buffer":         map[string]any{"max_bytes": "512MiB"},
				"decision_cache": map[string]any{"kept_max_bytes": "16MiB", "dropped_max_entries": 1000000},
				"policies":       policies(),
			}
		},
	})
}
