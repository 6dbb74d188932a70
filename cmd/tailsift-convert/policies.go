package main

import (
	"strconv"

	"go.yaml.in/yaml/v3"
)

// contribPolicyKeys is, for every built-in policy type of contrib's
// tail_sampling (v0.161.0), the keys of its `<type>:` block. tailsift's
// policies take the same keys; the test checks both against the structs.
// A list key holds sub-policies, converted like policies.
var contribPolicyKeys = map[string][]string{
	"always_sample":     nil,
	"latency":           {"threshold_ms", "upper_threshold_ms"},
	"numeric_attribute": {"key", "min_value", "max_value", "invert_match"},
	"probabilistic":     {"hash_salt", "sampling_percentage"},
	"status_code":       {"status_codes"},
	"string_attribute":  {"key", "values", "enabled_regex_matching", "cache_max_size", "invert_match"},
	"rate_limiting":     {"spans_per_second", "burst_capacity"},
	"bytes_limiting":    {"bytes_per_second", "burst_capacity"},
	"span_count":        {"min_spans", "max_spans"},
	"trace_state":       {"key", "values"},
	"boolean_attribute": {"key", "value", "invert_match"},
	"ottl_condition":    {"error_mode", "span", "spanevent"},
	"trace_flags":       nil,
	"composite":         {"max_total_spans_per_second", "policy_order", "composite_sub_policy", "rate_allocation"},
	"and":               {"and_sub_policy"},
	"not":               {"not_sub_policy"},
	"drop":              {"drop_sub_policy"},
}

// subPolicyKeys are the block keys that hold sub-policies: a list, or for
// not a single one.
var subPolicyKeys = map[string]bool{"and_sub_policy": true, "drop_sub_policy": true, "composite_sub_policy": true}

func convertPoliciesKey(c *converter, path string, v *yaml.Node, out *yaml.Node) {
	list := c.convertPolicyList(path, v)
	if list == nil {
		return
	}
	if len(list.Content) == 0 {
		c.warn(path, "no policy left to convert; an always_sample policy was added so that the configuration loads")
		list = alwaysSample()
	}
	setIn(out, "", "policies", list, "")
}

// convertPolicyList converts a list of policies; nil when v is not a list.
func (c *converter) convertPolicyList(path string, v *yaml.Node) *yaml.Node {
	if v.Kind != yaml.SequenceNode {
		c.warn(path, "expected a list of policies, got a %s; left out", kindName(v.Kind))
		return nil
	}
	out := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: v.Style}
	for i, p := range v.Content {
		if conv := c.convertPolicy(path+"::"+strconv.Itoa(i), p); conv != nil {
			out.Content = append(out.Content, conv)
		}
	}
	return out
}

// convertPolicy converts one policy entry; nil when it has no equivalent.
func (c *converter) convertPolicy(path string, p *yaml.Node) *yaml.Node {
	if p.Kind != yaml.MappingNode {
		c.warn(path, "expected a policy mapping, got a %s; removed", kindName(p.Kind))
		return nil
	}
	typNode := lookup(p, "type")
	if typNode == nil {
		c.warn(path+"::type", "missing; the policy was removed")
		return nil
	}
	typ := typNode.Value
	blockKeys, builtin := contribPolicyKeys[typ]
	if !builtin {
		c.warn(path+"::type", "%q is not a built-in contrib policy type (a policy extension?); tailsift has no equivalent, the policy was removed", typ)
		return nil
	}
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Style: p.Style}
	for i := 0; i < len(p.Content); i += 2 {
		k, v := p.Content[i], p.Content[i+1]
		switch k.Value {
		case "name", "type":
			out.Content = append(out.Content, k, v)
		case typ:
			block := c.convertPolicyBlock(path+"::"+typ, typ, blockKeys, v)
			if block == nil {
				return nil
			}
			out.Content = append(out.Content, k, block)
		default:
			if _, isType := contribPolicyKeys[k.Value]; isType {
				c.note(path+"::"+k.Value, "removed: contrib ignores a %s block on a %s policy; tailsift refuses it", k.Value, typ)
				continue
			}
			c.warn(path+"::"+k.Value, "removed: not a key of a contrib policy (policy extension settings have no equivalent)")
		}
	}
	if typ == "probabilistic" && lookup(out, typ) == nil {
		c.warn(path, "a probabilistic policy without sampling_percentage keeps nothing in contrib and is refused by tailsift; removed")
		return nil
	}
	return out
}

// convertPolicyBlock converts a policy's `<type>:` block; nil when the whole
// policy must go.
func (c *converter) convertPolicyBlock(path, typ string, keys []string, v *yaml.Node) *yaml.Node {
	if v.Kind != yaml.MappingNode {
		if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
			return v
		}
		c.warn(path, "expected a mapping, got a %s; left out", kindName(v.Kind))
		return mapping()
	}
	known := map[string]bool{}
	for _, k := range keys {
		known[k] = true
	}
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Style: v.Style}
	for i := 0; i < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		kp := path + "::" + k.Value
		switch {
		case !known[k.Value]:
			c.warn(kp, "removed: not a key of contrib's %s policy", typ)
			continue
		case subPolicyKeys[k.Value]:
			val = c.convertPolicyList(kp, val)
			if val == nil {
				continue
			}
			if len(val.Content) == 0 {
				c.warn(kp, "empty: contrib's %s with no sub-policy is refused by tailsift; fix it by hand", typ)
			}
		case k.Value == "not_sub_policy":
			val = c.convertPolicy(kp, val)
			if val == nil {
				c.warn(kp, "the not policy lost its sub-policy; fix it by hand")
				continue
			}
		}
		out.Content = append(out.Content, k, val)
	}
	if typ == "probabilistic" && !c.fixPercentage(path, out) {
		return nil
	}
	if typ == "rate_limiting" {
		if n := lookup(out, "spans_per_second"); n == nil || n.Value == "0" || (len(n.Value) > 0 && n.Value[0] == '-') {
			c.warn(path+"::spans_per_second", "must be positive in tailsift (contrib then keeps nothing); fix it by hand")
		}
	}
	return out
}

// fixPercentage carries sampling_percentage over: contrib takes 0 as never
// and ≥ 100 as always, tailsift takes (0, 100]. False: drop the policy.
func (c *converter) fixPercentage(path string, block *yaml.Node) bool {
	n := lookup(block, "sampling_percentage")
	var pct float64
	if n == nil || n.Decode(&pct) != nil || pct <= 0 {
		c.warn(path+"::sampling_percentage", "contrib keeps nothing at 0 (or without it); tailsift refuses it, so the policy was removed")
		return false
	}
	if pct > 100 {
		c.note(path+"::sampling_percentage", "%v -> 100: contrib takes values above 100 as 100", pct)
		n.Value, n.Tag = "100", "!!int"
	}
	return true
}
