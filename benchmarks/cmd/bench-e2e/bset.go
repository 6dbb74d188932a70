package main

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// bSetting is one -b-set: a key path in the collector config (its keys
// joined by dots) and the value variant b's runs get there.
type bSetting struct {
	path  []string
	value any
}

// parseBSet reads "key.path=value"; the value is YAML (200ms, 5, true,
// {a: 1}, [x, y]).
func parseBSet(arg string) (bSetting, error) {
	k, v, ok := strings.Cut(arg, "=")
	if !ok || k == "" {
		return bSetting{}, fmt.Errorf("-b-set %q: want key.path=value", arg)
	}
	path := strings.Split(k, ".")
	for _, p := range path {
		if p == "" {
			return bSetting{}, fmt.Errorf("-b-set %q: empty key in %q", arg, k)
		}
	}
	var value any
	if err := yaml.Unmarshal([]byte(v), &value); err != nil {
		return bSetting{}, fmt.Errorf("-b-set %q: the value is not YAML: %w", arg, err)
	}
	return bSetting{path: path, value: value}, nil
}

// parseBSets parses every -b-set argument.
func parseBSets(args []string) ([]bSetting, error) {
	sets := make([]bSetting, 0, len(args))
	for _, a := range args {
		s, err := parseBSet(a)
		if err != nil {
			return nil, err
		}
		sets = append(sets, s)
	}
	return sets, nil
}

// applySettings returns config with each setting applied. Every key of a
// path but the last must name a map that the config already has, so that
// a path meant for one collector (receivers.tailsift... for the fast
// path, processors.tailsift... for the processor) is refused, not added
// unused, in the other's config.
func applySettings(config string, sets []bSetting) (string, error) {
	if len(sets) == 0 {
		return config, nil
	}
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(config), &doc); err != nil {
		return "", fmt.Errorf("parse the collector config: %w", err)
	}
	for _, s := range sets {
		m := doc
		for i, k := range s.path[:len(s.path)-1] {
			next, ok := m[k].(map[string]any)
			if !ok {
				return "", fmt.Errorf("-b-set %s: the config has no %s", strings.Join(s.path, "."), strings.Join(s.path[:i+1], "."))
			}
			m = next
		}
		m[s.path[len(s.path)-1]] = s.value
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		return "", err
	}
	return string(out), nil
}
