package main

import (
	"regexp"
	"slices"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// convertRulesKey converts adaptive_tail_sampling's rules into tailsift's
// rule mode: same order, names, conditions and match; each sampler to the
// nearest tailsift policy type. Contrib records the rule on every span of a
// kept trace, so output.annotate_spans is turned on.
func convertRulesKey(c *converter, path string, v *yaml.Node, out *yaml.Node) {
	if v.Kind != yaml.SequenceNode {
		c.warn(path, "expected a list of rules, got a %s; left out", kindName(v.Kind))
		return
	}
	list := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	for i, r := range v.Content {
		if conv := c.convertRule(path+"::"+strconv.Itoa(i), r); conv != nil {
			list.Content = append(list.Content, conv)
		}
	}
	if len(list.Content) == 0 {
		c.warn(path, "no rule left to convert")
		return
	}
	setIn(out, "", "rules", list, "")
	setIn(out, "output", "annotate_spans", scalar(true), "contrib attributes every kept span to its rule")
	c.warn(path, "-> rules, first match as in contrib, a trace no rule matches dropped in both; kept spans carry sampling.rule and SampleRate (output.annotate_spans), not otelcol.processor.adaptive_tail_sampling.rule and .trigger")
}

// ruleKeys is every key of contrib's RuleConfig.
var ruleKeys = map[string]bool{"name": true, "conditions": true, "match": true, "sampler": true}

// convertRule converts one rule; nil when it has no equivalent.
func (c *converter) convertRule(path string, r *yaml.Node) *yaml.Node {
	if r.Kind != yaml.MappingNode {
		c.warn(path, "expected a rule mapping, got a %s; removed", kindName(r.Kind))
		return nil
	}
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Style: r.Style}
	for i := 0; i < len(r.Content); i += 2 {
		k, v := r.Content[i], r.Content[i+1]
		switch {
		case !ruleKeys[k.Value]:
			c.warn(path+"::"+k.Value, "removed: not a key of a contrib rule (contrib would refuse it too)")
		case k.Value == "sampler":
			s := c.convertSampler(path+"::sampler", v)
			if s == nil {
				c.warn(path, "removed: its sampler has no equivalent, so the traces it matched fall to the next rule; fix it by hand")
				return nil
			}
			out.Content = append(out.Content, k, s)
		default: // name, conditions (OTTL, span context as in contrib), match (same values)
			out.Content = append(out.Content, k, v)
		}
	}
	if lookup(out, "sampler") == nil {
		c.warn(path+"::sampler", "missing: contrib refuses a rule without a sampler; the rule was removed")
		return nil
	}
	return out
}

// samplerKeys is every key of contrib's SamplerConfig, with the sampler
// types that use it.
var samplerKeys = map[string][]string{
	"type":                   nil,
	"algorithm":              {"adaptive_percentage", "adaptive_throughput"},
	"sampling_percentage":    {"probabilistic"},
	"goal_percentage":        {"adaptive_percentage"},
	"goal_throughput":        {"adaptive_throughput"},
	"fingerprint_attributes": {"adaptive_percentage", "adaptive_throughput"},
	"max_keys":               {"adaptive_percentage", "adaptive_throughput"},
	"adjustment_interval":    {"adaptive_percentage", "adaptive_throughput"},
	"weight":                 {"adaptive_percentage", "adaptive_throughput"},
	"update_frequency":       {"adaptive_throughput"},
	"lookback_frequency":     {"adaptive_throughput"},
	"shared_counters":        {"adaptive_throughput"},
}

// convertSampler converts contrib's flat sampler into tailsift's policy
// shape; nil when it has no equivalent:
//   - always_sample is the same;
//   - probabilistic: sampling_percentage, the same;
//   - adaptive_throughput: dynamic, which shares a kept rate among the keys
//     of the root span as contrib's does among fingerprints, in traces per
//     second (goal_throughput ÷ -spans-per-trace);
//   - adaptive_percentage: probabilistic at goal_percentage, the same share
//     kept but not adapted per key (tailsift has no per-key percentage).
func (c *converter) convertSampler(path string, s *yaml.Node) *yaml.Node {
	if s.Kind != yaml.MappingNode {
		c.warn(path, "expected a sampler mapping, got a %s", kindName(s.Kind))
		return nil
	}
	typNode := lookup(s, "type")
	if typNode == nil {
		c.warn(path+"::type", "missing (contrib refuses it too)")
		return nil
	}
	typ := typNode.Value
	var (
		outType string
		block   = mapping()
	)
	switch typ {
	case "always_sample":
		outType = "always_sample"
	case "probabilistic", "adaptive_percentage":
		outType = "probabilistic"
	case "adaptive_throughput":
		outType = "dynamic"
	default:
		c.warn(path+"::type", "%q is not a sampler type of contrib's adaptive_tail_sampling; tailsift has no equivalent", typ)
		return nil
	}
	if typ == "adaptive_percentage" {
		c.warn(path+"::type", "adaptive_percentage -> probabilistic at goal_percentage: the same share of traces kept, but one probability for all keys (tailsift has no per-key percentage sampler; dynamic adapts per key towards a rate)")
	}
	for i := 0; i < len(s.Content); i += 2 {
		k, v := s.Content[i].Value, s.Content[i+1]
		kp := path + "::" + k
		users, known := samplerKeys[k]
		switch {
		case !known:
			c.warn(kp, "removed: not a key of a contrib sampler (contrib would refuse it too)")
			continue
		case k == "type":
			continue
		case !slices.Contains(users, typ):
			c.warn(kp, "removed: contrib's %s does not use it (contrib would refuse it)", typ)
			continue
		}
		c.convertSamplerKey(kp, k, typ, v, block)
	}
	switch outType {
	case "probabilistic":
		if !c.fixPercentage(path, block) {
			return nil
		}
	case "dynamic":
		if lookup(block, "goal_traces_per_second") == nil {
			c.warn(path+"::goal_throughput", "missing or not positive (contrib refuses it too)")
			return nil
		}
	}
	out := mapping("type", outType)
	if len(block.Content) > 0 {
		out.Content = append(out.Content, scalar(outType), block)
	}
	return out
}

// convertSamplerKey converts one sampler key of contrib's sampler of type
// typ into the tailsift policy's block.
func (c *converter) convertSamplerKey(path, key, typ string, v, block *yaml.Node) {
	switch key {
	case "sampling_percentage", "goal_percentage":
		setIn(block, "", "sampling_percentage", v, "was "+key)
	case "goal_throughput":
		var n float64
		if !c.decodeScalar(path, v, &n) || !(n > 0) {
			return
		}
		tps := n / c.opts.SpansPerTrace
		setIn(block, "", "goal_traces_per_second", scalar(tps), "was goal_throughput")
		c.warn(path, "-> dynamic goal_traces_per_second: %v, at %v spans per trace (-spans-per-trace); tailsift's goal counts traces, contrib's spans", tps, c.opts.SpansPerTrace)
	case "fingerprint_attributes":
		c.convertFingerprint(path, typ, v, block)
	case "adjustment_interval":
		if typ == "adaptive_throughput" {
			setIn(block, "", "adjustment_interval", v, "")
		} else {
			c.warn(path, "removed with the per-key adaptation")
		}
	case "weight":
		var w float64
		if !c.decodeScalar(path, v, &w) {
			return
		}
		switch {
		case typ != "adaptive_throughput":
			c.warn(path, "removed with the per-key adaptation")
		case w == 0:
			c.note(path, "removed: 0 means 0.5 in contrib, tailsift's default")
		default:
			setIn(block, "", "weight", v, "")
		}
	case "max_keys":
		var n int64
		if !c.decodeScalar(path, v, &n) {
			return
		}
		switch {
		case typ != "adaptive_throughput":
			c.warn(path, "removed with the per-key adaptation")
		case n <= 0:
			c.warn(path, "removed: contrib's 0 is unlimited; tailsift's dynamic tracks at most max_keys (default 10000, at most 1048576)")
		default:
			setIn(block, "", "max_keys", scalar(min(n, 1<<20)), "")
		}
	case "algorithm":
		stringKey([]string{"", "ema"}, "removed: tailsift's dynamic is an EMA sampler",
			"removed: %q has no equivalent; tailsift's dynamic is an EMA sampler (adjustment_interval, weight)")(c, path, v, block)
	case "update_frequency":
		setIn(block, "", "adjustment_interval", v, "was update_frequency")
		c.warn(path, "-> adjustment_interval of tailsift's EMA sampler (contrib's windowed algorithm has no equivalent)")
	case "lookback_frequency":
		c.warn(path, "removed: tailsift's dynamic is an EMA sampler, without a lookback window")
	case "shared_counters":
		c.warn(path, "removed: tailsift shares a budget across a cluster of gateways instead (cluster::budget: shared, docs/scale-out.md); the goal is per instance")
	}
}

// selector is a contrib fingerprint selector: scope.attributes["name"].
var selector = regexp.MustCompile(`^(resource|scope|span|root|any)\.attributes\["([^"]+)"\]$`)

// convertFingerprint turns contrib's fingerprint selectors into dynamic's
// key fields, which tailsift reads from the trace's root span.
func (c *converter) convertFingerprint(path, typ string, v, block *yaml.Node) {
	if typ != "adaptive_throughput" {
		c.warn(path, "removed with the per-key adaptation")
		return
	}
	if v.Kind != yaml.SequenceNode {
		c.warn(path, "expected a list, got a %s; left out (tailsift's default key: the root's service and name)", kindName(v.Kind))
		return
	}
	key := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle}
	for i, sel := range v.Content {
		sp := path + "::" + strconv.Itoa(i)
		m := selector.FindStringSubmatch(sel.Value)
		if m == nil {
			c.warn(sp, "removed: %q is not a selector contrib reads (scope.attributes[\"name\"])", sel.Value)
			continue
		}
		switch m[1] {
		case "resource":
			key.Content = append(key.Content, scalar("resource."+m[2]))
		case "root":
			key.Content = append(key.Content, scalar("span."+m[2]))
		case "span", "any":
			key.Content = append(key.Content, scalar("span."+m[2]))
			c.warn(sp, "-> span.%s of the root span; contrib gathers the values of every span%s", m[2], map[bool]string{true: ", resource and scope"}[m[1] == "any"])
		default:
			c.warn(sp, "removed: tailsift's keys read no scope attributes")
		}
	}
	if len(key.Content) == 0 {
		c.warn(path, "no field left: tailsift's default key (the root's service and name) applies")
		return
	}
	setIn(block, "", "key", key, "was fingerprint_attributes")
}
