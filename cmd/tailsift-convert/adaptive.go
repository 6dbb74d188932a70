package main

import (
	"go.yaml.in/yaml/v3"
)

// adaptiveKeys is every key of contrib's adaptive_tail_sampling Config
// (formerly dynamic_sampling; processor/adaptivetailsamplingprocessor/
// config.go), each with what becomes of it. Its module is not served by the
// Go module proxy this project builds from, so the list follows its
// config.go and README; testdata/adaptive-all-keys.yaml sets every key, and
// the test checks each one is mapped or reported. Its rules become
// tailsift's rule mode (adaptiverules.go).
var adaptiveKeys = map[string]keyHandler{
	"trace_timeout": func(c *converter, path string, v *yaml.Node, out *yaml.Node) {
		d, ok := c.duration(path, v)
		if !ok {
			return
		}
		setIn(out, "completion", "max_wait", scalar(d), "was trace_timeout")
		c.note(path, "-> completion.max_wait: %v", d)
	},
	"decision_delay": quietKey("decision_delay"),
	"num_traces":     convertNumTraces,
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
	"decision_cache":      convertDecisionCache,
	"rules":               convertRulesKey,
	"root_span_condition": convertRootSpanCondition,
	"record_fingerprint": stringKey([]string{"", "none"},
		"removed: none is tailsift's only behaviour",
		"removed: %q has no equivalent: tailsift records no fingerprint on kept spans (only sampling.rule and SampleRate)"),
	"eviction": nestedBlock(evictionKeys, "key of contrib's eviction"),
}

// evictionKeys is every key of contrib's EvictionConfig.
var evictionKeys = map[string]keyHandler{
	"policy": stringKey([]string{"", "evaluate"},
		"removed: when buffer.max_bytes is reached tailsift decides the oldest traces early through the rules, as evaluate does",
		"removed: %q has no equivalent; when buffer.max_bytes is reached tailsift decides the oldest traces early through the rules (contrib's evaluate)"),
	"sampling_percentage": func(c *converter, path string, _ *yaml.Node, _ *yaml.Node) {
		c.warn(path, "removed: tailsift has no probabilistic eviction; evicted traces go through the rules")
	},
}

// convertRootSpanCondition carries contrib's one condition over as
// tailsift's list. Contrib's also starts the decision delay; tailsift's
// only names the root keyed samplers read their key from.
func convertRootSpanCondition(c *converter, path string, v *yaml.Node, out *yaml.Node) {
	var s string
	if !c.decodeScalar(path, v, &s) {
		return
	}
	if s == "" || s == "IsRootSpan()" {
		c.note(path, "removed: a span without a parent is tailsift's root")
		return
	}
	cond := scalar(s)
	cond.LineComment = "was root_span_condition"
	setIn(out, "", "root_span_condition", &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{cond}}, "")
	c.warn(path, "-> root_span_condition: [%q]; in tailsift it only says where keyed samplers (dynamic) read their key; completion.quiet still starts at a span without a parent, else the trace waits completion.max_wait", s)
}

// convertAdaptive builds a tailsift block for an adaptive_tail_sampling one:
// its rules become tailsift's rules (first match, as in contrib), its
// sizing keys map across.
func (c *converter) convertAdaptive(path string, in *yaml.Node) *yaml.Node {
	out := mapping()
	out.HeadComment = "converted from " + path + " by tailsift-convert; see " + guideAnchor + " and docs/policies/rules.md"
	if in.Kind == yaml.MappingNode {
		c.convertBlock(path, in, out, adaptiveKeys, "key of contrib's adaptive_tail_sampling")
	} else if in.Kind != yaml.ScalarNode || in.Tag != "!!null" {
		c.warn(path, "expected a mapping, got a %s; converted to tailsift's defaults", kindName(in.Kind))
	}
	finishCompletion(c, path, out, "trace_timeout")
	if lookup(out, "rules") == nil {
		c.warn(path+"::rules", "missing: contrib requires rules; errors (status_code ERROR) and anomalies (type adaptive: slow for its route, new routes, error surges) stand in as policies; review them (docs/policies/adaptive.md)")
		setIn(out, "", "policies", &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{
			mapping("name", "errors", "type", "status_code", "status_code",
				mapping("status_codes", &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle, Content: []*yaml.Node{scalar("ERROR")}})),
			mapping("name", "anomalies", "type", "adaptive"),
		}}, "")
	}
	c.check(path, out)
	return out
}
