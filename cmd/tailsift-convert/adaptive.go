package main

import (
	"go.yaml.in/yaml/v3"
)

// adaptiveKeys maps the keys of contrib's adaptive_tail_sampling (formerly
// dynamic_sampling) that have a tailsift equivalent. Its module is not served
// by the Go module proxy this project builds from, so the list follows
// contrib's v0.161.0 changelog; every other key is reported and left out.
var adaptiveKeys = map[string]keyHandler{
	"trace_timeout": func(c *converter, path string, v *yaml.Node, out *yaml.Node) {
		d, ok := c.duration(path, v)
		if !ok {
			return
		}
		setIn(out, "completion", "max_wait", scalar(d), "was trace_timeout")
		c.note(path, "-> completion.max_wait: %v", d)
	},
	"num_traces": convertNumTraces,
	"span_limit": func(c *converter, path string, v *yaml.Node, out *yaml.Node) {
		var n int64
		if !c.decodeScalar(path, v, &n) {
			return
		}
		if n <= 0 {
			c.warn(path, "removed: tailsift always caps a trace's spans (completion.max_spans, default 10000)")
			return
		}
		setIn(out, "completion", "max_spans", scalar(n), "was span_limit")
		c.note(path, "-> completion.max_spans: %d", n)
	},
}

// convertAdaptive builds a tailsift block for an adaptive_tail_sampling one:
// its sizing keys map across; its rules and samplers do not, and are
// replaced by tailsift's adaptive policy, with a warning for each key.
func (c *converter) convertAdaptive(path string, in *yaml.Node) *yaml.Node {
	out := mapping()
	out.HeadComment = "converted from " + path + " by tailsift-convert: only its sizing keys carried over; " +
		"review the policies (docs/policies/adaptive.md)"
	if in.Kind == yaml.MappingNode {
		for i := 0; i < len(in.Content); i += 2 {
			k, v := in.Content[i].Value, in.Content[i+1]
			if h, ok := adaptiveKeys[k]; ok {
				h(c, path+"::"+k, v, out)
				continue
			}
			c.warn(path+"::"+k, "removed: no automatic equivalent in tailsift; see docs/policies/adaptive.md for the adaptive and dynamic policies")
		}
	}
	finishCompletion(c, path, out)
	c.warn(path+"::policies", "added: errors (status_code ERROR) and anomalies (type adaptive: slow for its route, new routes, error surges) stand in for the adaptive_tail_sampling rules; review them")
	setIn(out, "", "policies", &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{
		mapping("name", "errors", "type", "status_code", "status_code",
			mapping("status_codes", &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle, Content: []*yaml.Node{scalar("ERROR")}})),
		mapping("name", "anomalies", "type", "adaptive"),
	}}, "")
	c.check(path, out)
	return out
}
