package main

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Contrib's processor types this tool converts. dynamic_sampling is the name
// adaptive_tail_sampling had before contrib renamed it.
const (
	tailSampling         = "tail_sampling"
	adaptiveTailSampling = "adaptive_tail_sampling"
	dynamicSampling      = "dynamic_sampling"
	tailsift             = "tailsift"
)

// Severity says whether a message reports a change in behaviour.
type Severity string

const (
	// Warning: the key has no equivalent, or its value cannot carry over;
	// the converted collector behaves differently there.
	Warning Severity = "warning"
	// Note: the key was mapped or removed and tailsift behaves the same (or
	// better) there; the note says how.
	Note Severity = "note"
)

// Message reports what happened to one contrib key.
type Message struct {
	Severity Severity
	// Path is the key in the input, in the collector's `a::b::0::c` form.
	Path string
	Text string
}

func (m Message) String() string { return fmt.Sprintf("%s: %s: %s", m.Severity, m.Path, m.Text) }

// Options tune the estimates the conversion has to make.
type Options struct {
	// BytesPerTrace turns contrib's num_traces into buffer.max_bytes.
	BytesPerTrace int64
	// SpansPerTrace turns adaptive_tail_sampling's goal_throughput (spans
	// per second) into the dynamic policy's goal_traces_per_second.
	SpansPerTrace float64
}

// DefaultBytesPerTrace is the trace size num_traces is multiplied by: about
// 25 spans of 400 encoded bytes each. tailsift's default budget (512MiB)
// holds about 52,000 such traces, contrib's default num_traces (50000).
const DefaultBytesPerTrace = 10 << 10

// DefaultSpansPerTrace is the trace size goal_throughput is divided by, the
// same 25 spans DefaultBytesPerTrace assumes.
const DefaultSpansPerTrace = 25

// converter gathers the messages of one conversion.
type converter struct {
	opts Options
	msgs []Message
}

func (c *converter) warn(path, format string, args ...any) {
	c.msgs = append(c.msgs, Message{Severity: Warning, Path: path, Text: fmt.Sprintf(format, args...)})
}

func (c *converter) note(path, format string, args ...any) {
	c.msgs = append(c.msgs, Message{Severity: Note, Path: path, Text: fmt.Sprintf(format, args...)})
}

// Convert rewrites a collector configuration: each tail_sampling (and
// adaptive_tail_sampling) processor becomes a tailsift processor, and the
// pipelines name the new IDs. Everything else is left as it was, comments
// included. Every contrib key is either mapped or reported in the messages.
func Convert(in []byte, opts Options) ([]byte, []Message, error) {
	if opts.BytesPerTrace <= 0 {
		opts.BytesPerTrace = DefaultBytesPerTrace
	}
	if !(opts.SpansPerTrace > 0) {
		opts.SpansPerTrace = DefaultSpansPerTrace
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(in, &doc); err != nil {
		return nil, nil, fmt.Errorf("parse the configuration: %w", err)
	}
	// What the collector would not load (a key twice in a mapping) is
	// refused, rather than written out as it was.
	var plain any
	if err := yaml.Unmarshal(in, &plain); err != nil {
		return nil, nil, fmt.Errorf("parse the configuration: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, nil, errors.New("parse the configuration: the top level must be a mapping")
	}
	// Aliases and merge keys are written out where they are used: the
	// converter edits nodes in place, and an alias node's Value is its
	// anchor's name (a percentage capped through it came out as
	// `*100`, an unknown anchor), and its content is elsewhere.
	resolveAliases(&doc, 0)
	c := &converter{opts: opts}
	root := doc.Content[0]
	renamed, err := c.convertProcessors(root)
	if err != nil {
		return nil, nil, err
	}
	if len(renamed) == 0 {
		return nil, nil, errors.New("processors: no tail_sampling or adaptive_tail_sampling processor to convert")
	}
	c.renamePipelines(root, renamed)

	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, nil, fmt.Errorf("write the converted configuration: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, nil, fmt.Errorf("write the converted configuration: %w", err)
	}
	return out.Bytes(), c.msgs, nil
}

// convertProcessors converts the processors it knows in place and returns
// the old ID → new ID renames.
func (c *converter) convertProcessors(root *yaml.Node) (map[string]string, error) {
	procs := lookup(root, "processors")
	if procs == nil || procs.Kind != yaml.MappingNode {
		return nil, errors.New("processors: missing, or not a mapping")
	}
	renamed := map[string]string{}
	taken := map[string]bool{}
	for i := 0; i < len(procs.Content); i += 2 {
		taken[procs.Content[i].Value] = true
	}
	for i := 0; i < len(procs.Content); i += 2 {
		key, val := procs.Content[i], procs.Content[i+1]
		typ, name, _ := strings.Cut(key.Value, "/")
		path := "processors::" + key.Value
		var block *yaml.Node
		switch typ {
		case tailSampling:
			block = c.convertTailSampling(path, val)
		case adaptiveTailSampling, dynamicSampling:
			block = c.convertAdaptive(path, val)
		default:
			continue
		}
		newID := tailsift
		if name != "" {
			newID += "/" + name
		}
		if taken[newID] {
			return nil, fmt.Errorf("%s: cannot rename to %q: the configuration already has a processor of that ID", path, newID)
		}
		taken[newID] = true
		renamed[key.Value] = newID
		key.Value = newID
		procs.Content[i+1] = block
	}
	return renamed, nil
}

// renamePipelines rewrites the processor lists of service::pipelines.
func (c *converter) renamePipelines(root *yaml.Node, renamed map[string]string) {
	pipelines := lookup(lookup(root, "service"), "pipelines")
	if pipelines == nil || pipelines.Kind != yaml.MappingNode {
		c.warn("service::pipelines", "missing: no pipeline names the converted processors")
		return
	}
	used := map[string]bool{}
	for i := 0; i < len(pipelines.Content); i += 2 {
		procs := lookup(pipelines.Content[i+1], "processors")
		if procs == nil || procs.Kind != yaml.SequenceNode {
			continue
		}
		for _, p := range procs.Content {
			if to, ok := renamed[p.Value]; ok {
				used[p.Value] = true
				p.Value = to
			}
		}
	}
	for from, to := range renamed {
		if !used[from] {
			c.note("processors::"+from, "no pipeline uses it; converted to %s all the same", to)
		}
	}
}

// lookup returns the value of key in a mapping node, or nil.
func lookup(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// mapping builds a mapping node from key, value pairs, in order.
func mapping(pairs ...any) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for i := 0; i < len(pairs); i += 2 {
		v, ok := pairs[i+1].(*yaml.Node)
		if !ok {
			v = scalar(pairs[i+1])
		}
		n.Content = append(n.Content, scalar(pairs[i]), v)
	}
	return n
}

// scalar builds a scalar node for a string, a number or a bool.
func scalar(v any) *yaml.Node {
	switch v := v.(type) {
	case string:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v}
	case int64:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(v, 10)}
	case int:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(v)}
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(v)}
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
			return scalar(int64(v))
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: strconv.FormatFloat(v, 'g', -1, 64)}
	case time.Duration:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v.String()}
	}
	panic(fmt.Sprintf("scalar: unsupported %T", v))
}

// setIn sets parent.key (parent a mapping, created when missing; "" is the
// block itself) to value.
func setIn(block *yaml.Node, parent, key string, value *yaml.Node, comment string) {
	p := block
	if parent != "" {
		p = lookup(block, parent)
	}
	if p == nil {
		p = mapping()
		block.Content = append(block.Content, scalar(parent), p)
	}
	value.LineComment = comment
	if old := lookup(p, key); old != nil {
		*old = *value
		return
	}
	p.Content = append(p.Content, scalar(key), value)
}

// decodeScalar decodes a scalar node into v, reporting a bad value.
func (c *converter) decodeScalar(path string, n *yaml.Node, v any) bool {
	if n.Kind != yaml.ScalarNode {
		c.warn(path, "expected a single value, got a %s; left out", kindName(n.Kind))
		return false
	}
	if err := n.Decode(v); err != nil {
		c.warn(path, "cannot read %q: %v; left out", n.Value, err)
		return false
	}
	return true
}

// duration reads a duration as the collector does (a string like 10s).
func (c *converter) duration(path string, n *yaml.Node) (time.Duration, bool) {
	var s string
	if !c.decodeScalar(path, n, &s) {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		c.warn(path, "cannot read %q as a duration: %v; left out", s, err)
		return 0, false
	}
	return d, true
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.AliasNode:
		return "alias"
	}
	return "scalar"
}

// byteSize formats n bytes the way tailsift's buffer keys read them,
// rounded up to a whole MiB (or KiB below 1MiB).
func byteSize(n int64) string {
	switch {
	case n >= 1<<20:
		return strconv.FormatInt((n+1<<20-1)>>20, 10) + "MiB"
	case n >= 1<<10:
		return strconv.FormatInt((n+1<<10-1)>>10, 10) + "KiB"
	}
	return strconv.FormatInt(n, 10)
}

// maxAliasDepth bounds the nesting of aliases resolveAliases follows: a
// document of aliases of aliases (a billion laughs) is cut there.
const maxAliasDepth = 32

// resolveAliases replaces each alias in n with a copy of its anchor's node,
// and each merge key (`<<: *a`, `<<: [*a, *b]`) with the keys it merges
// that the mapping does not set itself. Anchors are dropped: nothing
// refers to them any more.
func resolveAliases(n *yaml.Node, depth int) {
	if n == nil || depth > maxAliasDepth {
		return
	}
	n.Anchor = ""
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		*n = *deepCopy(n.Alias)
		resolveAliases(n, depth+1)
		return
	}
	for _, c := range n.Content {
		resolveAliases(c, depth)
	}
	if n.Kind != yaml.MappingNode {
		return
	}
	var content, merged []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Tag != "!!merge" && k.Value != "<<" {
			content = append(content, k, v)
			continue
		}
		sources := []*yaml.Node{v}
		if v.Kind == yaml.SequenceNode {
			sources = v.Content
		}
		for _, src := range sources {
			if src.Kind == yaml.MappingNode {
				merged = append(merged, src.Content...)
			}
		}
	}
	set := map[string]bool{}
	for i := 0; i+1 < len(content); i += 2 {
		set[content[i].Value] = true
	}
	for i := 0; i+1 < len(merged); i += 2 {
		if k := merged[i].Value; !set[k] {
			set[k] = true
			content = append(content, deepCopy(merged[i]), deepCopy(merged[i+1]))
		}
	}
	n.Content = content
}

// deepCopy copies n and what it holds.
func deepCopy(n *yaml.Node) *yaml.Node {
	c := *n
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, k := range n.Content {
		c.Content[i] = deepCopy(k)
	}
	return &c
}
