package main

import (
	"go.opentelemetry.io/collector/confmap"
	"go.yaml.in/yaml/v3"

	"github.com/tailsift/tailsift/processor/tailsiftprocessor"
)

// check loads the converted block as the collector would, and reports why
// it would not start, so that a conversion left incomplete is never silent.
func (c *converter) check(path string, block *yaml.Node) {
	var raw map[string]any
	if err := block.Decode(&raw); err != nil {
		c.warn(path, "the converted block does not read back: %v", err)
		return
	}
	cfg := tailsiftprocessor.NewFactory().CreateDefaultConfig()
	if err := confmap.NewFromStringMap(raw).Unmarshal(cfg); err != nil {
		c.warn(path, "the converted block does not load; fix it by hand: %v", err)
		return
	}
	if err := confmap.Validate(cfg); err != nil {
		c.warn(path, "the converted block does not validate; fix it by hand: %v", err)
	}
}
