package main

import (
	"math"
	"slices"
	"time"

	"go.yaml.in/yaml/v3"
)

// tailsift's defaults that the conversion reasons about (tracebuf.DefaultConfig).
const (
	defaultQuiet     = 2 * time.Second
	keptEntryBytes   = 96 // per kept decision: tailsift's kept cache remembers at least kept_max_bytes/85 of the last ones
	minKeptBytes     = 64 << 10
	minBufferBytes   = 1 << 20
	guideAnchor      = "docs/migrating-from-contrib.md"
	contribBlockNote = "contrib's tail_sampling key"
)

// keyHandler converts one key of a contrib block into the tailsift block.
type keyHandler func(c *converter, path string, v *yaml.Node, out *yaml.Node)

// tailSamplingKeys is every key of contrib's tail_sampling Config (v0.161.0,
// processor/tailsamplingprocessor/config.go), each with what becomes of it.
// The test walks contrib's Config and fails on a key missing here.
var tailSamplingKeys = map[string]keyHandler{
	"decision_wait":                     convertDecisionWait,
	"decision_wait_after_root_received": quietKey("decision_wait_after_root_received"),
	"num_traces":                        convertNumTraces,
	"block_on_overflow": flagKey(false,
		"removed: no equivalent; tailsift never evicts undecided traces: when full it decides the oldest early, and when behind it refuses with a retryable error instead",
		"removed: tailsift always applies back-pressure when full (buffer.max_queued_bytes, then a retryable error)"),
	"expected_new_traces_per_sec": func(c *converter, path string, _ *yaml.Node, _ *yaml.Node) {
		c.note(path, "removed: it only pre-sized contrib's maps; tailsift has nothing to pre-size")
	},
	"policies":       convertPoliciesKey,
	"decision_cache": convertDecisionCache,
	"tail_storage": func(c *converter, path string, v *yaml.Node, _ *yaml.Node) {
		c.warn(path, "removed: the storage extension %q is not used; tailsift's durable store is its own `tailsift` extension with `storage: tailsift` on the processor (docs/store.md), which records every span and decision on disk rather than spilling traces", v.Value)
	},
	"sample_on_first_match": func(c *converter, path string, v *yaml.Node, out *yaml.Node) {
		var on bool
		if !c.decodeScalar(path, v, &on) {
			return
		}
		if !on {
			c.note(path, "removed: false is tailsift's default (every policy is evaluated)")
			return
		}
		setIn(out, "", "sample_on_first_match", scalar(true), "contrib's sample_on_first_match")
		c.note(path, "-> sample_on_first_match: true; the first policy that samples decides, and the trace carries the most permissive threshold of the policies that would keep it, so adjusted counts stay right")
	},
	"sampling_strategy": stringKey([]string{"trace-complete"},
		"removed: trace-complete is tailsift's only strategy",
		"removed: %q has no processor-wide equivalent; tailsift decides on the complete trace, and for error traces `keep_on_arrival: true` on a status_code policy keeps a trace the moment its first ERROR span arrives"),
	"drop_pending_traces_on_shutdown": flagKey(true,
		"removed: no equivalent; tailsift decides every buffered trace on shutdown and exports the kept ones",
		"removed: false is tailsift's only behaviour (buffered traces are decided on shutdown)"),
	"maximum_trace_size_bytes": func(c *converter, path string, v *yaml.Node, out *yaml.Node) {
		var n int64
		if !c.decodeScalar(path, v, &n) {
			return
		}
		setIn(out, "completion", "max_trace_bytes", scalar(n), "was maximum_trace_size_bytes")
		if n > 0 {
			c.note(path, "-> completion.max_trace_bytes: %d; a trace past it is decided on what has arrived instead of dropped", n)
			return
		}
		c.note(path, "-> completion.max_trace_bytes: 0, off in both")
	},
	"num_shards": func(c *converter, path string, v *yaml.Node, out *yaml.Node) {
		var n int64
		if !c.decodeScalar(path, v, &n) {
			return
		}
		setIn(out, "", "shards", scalar(n), "was num_shards")
		c.note(path, "-> shards: %d; per-second policy limits stay global whatever the shard count, as contrib's aggregate", n)
	},
}

// convertTailSampling builds the tailsift block for a tail_sampling one.
func (c *converter) convertTailSampling(path string, in *yaml.Node) *yaml.Node {
	out := mapping()
	if in.Kind != yaml.MappingNode {
		if in.Kind != yaml.ScalarNode || in.Tag != "!!null" {
			c.warn(path, "expected a mapping, got a %s; converted to tailsift's defaults", kindName(in.Kind))
		}
		c.warn(path+"::policies", "missing: contrib keeps every trace without policies; tailsift needs one, so an always_sample policy was added")
		setIn(out, "", "policies", alwaysSample(), "")
		return out
	}
	out.HeadComment = "converted from " + path + " by tailsift-convert; see " + guideAnchor
	c.convertBlock(path, in, out, tailSamplingKeys, contribBlockNote)
	finishCompletion(c, path, out, "decision_wait")
	if lookup(out, "policies") == nil {
		c.warn(path+"::policies", "missing: contrib keeps every trace without policies; tailsift needs one, so an always_sample policy was added")
		setIn(out, "", "policies", alwaysSample(), "")
	}
	c.check(path, out)
	return out
}

// convertBlock runs the handler of every key of in; a key without one is
// reported and left out.
func (c *converter) convertBlock(path string, in, out *yaml.Node, handlers map[string]keyHandler, what string) {
	for i := 0; i < len(in.Content); i += 2 {
		k, v := in.Content[i].Value, in.Content[i+1]
		h, ok := handlers[k]
		if !ok {
			c.warn(path+"::"+k, "removed: not a %s (contrib would refuse it too)", what)
			continue
		}
		h(c, path+"::"+k, v, out)
	}
}

func convertDecisionWait(c *converter, path string, v *yaml.Node, out *yaml.Node) {
	d, ok := c.duration(path, v)
	if !ok {
		return
	}
	setIn(out, "completion", "max_wait", scalar(d), "was decision_wait")
	c.note(path, "-> completion.max_wait: %v; tailsift decides at the latest then, usually earlier (completion.quiet after the root span)", d)
}

// quietKey maps a contrib delay counted from the root span's arrival to
// completion.quiet.
func quietKey(key string) keyHandler {
	return func(c *converter, path string, v *yaml.Node, out *yaml.Node) {
		d, ok := c.duration(path, v)
		if !ok {
			return
		}
		if d <= 0 {
			c.note(path, "removed: contrib's wait after the root is off; tailsift's completion.quiet is always on (default %v after the last span once the root has arrived)", defaultQuiet)
			return
		}
		setIn(out, "completion", "quiet", scalar(d), "was "+key)
		c.note(path, "-> completion.quiet: %v, counted from the last span once the root has arrived (contrib counts from the root)", d)
	}
}

// finishCompletion keeps quiet ≤ max_wait, which tailsift requires;
// maxWaitKey is the contrib key max_wait came from.
func finishCompletion(c *converter, path string, out *yaml.Node, maxWaitKey string) {
	comp := lookup(out, "completion")
	maxWaitNode := lookup(comp, "max_wait")
	if maxWaitNode == nil {
		return
	}
	maxWait, _ := time.ParseDuration(maxWaitNode.Value)
	quiet := defaultQuiet
	if q := lookup(comp, "quiet"); q != nil {
		quiet, _ = time.ParseDuration(q.Value)
	}
	if quiet > maxWait {
		setIn(out, "completion", "quiet", scalar(maxWait), "capped at max_wait")
		c.note(path+"::"+maxWaitKey, "completion.quiet set to %v: it cannot exceed max_wait", maxWait)
	}
}

func convertNumTraces(c *converter, path string, v *yaml.Node, out *yaml.Node) {
	var n int64
	if !c.decodeScalar(path, v, &n) {
		return
	}
	if n < 0 {
		c.warn(path, "is negative (%d), which contrib refuses; buffer.max_bytes is left at its default", n)
		return
	}
	b := max(mulCapped(n, c.opts.BytesPerTrace), minBufferBytes)
	if b > maxConvertedBytes {
		b = maxConvertedBytes
		c.warn(path, "%d traces at %d bytes each is more than %s: buffer.max_bytes is set to that; size it to the host's memory", n, c.opts.BytesPerTrace, byteSize(maxConvertedBytes))
	}
	size := byteSize(b)
	setIn(out, "buffer", "max_bytes", scalar(size), "was num_traces")
	c.note(path, "-> buffer.max_bytes: %s, estimated at %d bytes per trace (-bytes-per-trace); size it to your traces: tailsift bounds bytes, not traces", size, c.opts.BytesPerTrace)
}

// flagKey handles a boolean contrib key that tailsift has no key for: its
// value warnOn changes behaviour (a warning), the other is what tailsift
// always does (a note).
func flagKey(warnOn bool, warning, note string) keyHandler {
	return func(c *converter, path string, v *yaml.Node, _ *yaml.Node) {
		var on bool
		if !c.decodeScalar(path, v, &on) {
			return
		}
		if on == warnOn {
			c.warn(path, "%s", warning)
			return
		}
		c.note(path, "%s", note)
	}
}

// stringKey handles a string contrib key that tailsift has no key for: a
// value among same is what tailsift always does (a note); any other changes
// behaviour (a warning, whose %q is the value).
func stringKey(same []string, note, warning string) keyHandler {
	return func(c *converter, path string, v *yaml.Node, _ *yaml.Node) {
		var s string
		if !c.decodeScalar(path, v, &s) {
			return
		}
		if slices.Contains(same, s) {
			c.note(path, "%s", note)
			return
		}
		c.warn(path, warning, s)
	}
}

// nestedBlock handles a contrib key holding a mapping, whose keys handlers
// convert; what names them in the report of an unknown one.
func nestedBlock(handlers map[string]keyHandler, what string) keyHandler {
	return func(c *converter, path string, v *yaml.Node, out *yaml.Node) {
		if v.Kind != yaml.MappingNode {
			c.warn(path, "expected a mapping, got a %s; left out", kindName(v.Kind))
			return
		}
		c.convertBlock(path, v, out, handlers, what)
	}
}

var convertDecisionCache = nestedBlock(decisionCacheKeys, "key of contrib's decision_cache")

// decisionCacheKeys is every key of contrib's DecisionCacheConfig.
var decisionCacheKeys = map[string]keyHandler{
	"sampled_cache_size": func(c *converter, path string, v *yaml.Node, out *yaml.Node) {
		var n int64
		if !c.decodeScalar(path, v, &n) {
			return
		}
		if n <= 0 {
			c.note(path, "removed: contrib's kept-ID cache is off; tailsift's cannot be turned off (decision_cache.kept_max_bytes, default 16MiB)")
			return
		}
		size := byteSize(min(max(mulCapped(n, keptEntryBytes), minKeptBytes), maxConvertedBytes))
		setIn(out, "decision_cache", "kept_max_bytes", scalar(size), "was sampled_cache_size")
		c.note(path, "-> decision_cache.kept_max_bytes: %s (%d bytes per kept trace ID)", size, keptEntryBytes)
	},
	"non_sampled_cache_size": func(c *converter, path string, v *yaml.Node, out *yaml.Node) {
		var n int64
		if !c.decodeScalar(path, v, &n) {
			return
		}
		setIn(out, "decision_cache", "dropped_max_entries", scalar(n), "was non_sampled_cache_size")
		c.note(path, "-> decision_cache.dropped_max_entries: %d", n)
	},
}

func alwaysSample() *yaml.Node {
	return &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{
		mapping("name", "always", "type", "always_sample"),
	}}
}

// maxConvertedBytes caps a size converted from a count: 1 TiB, beyond any
// host's memory for one processor.
const maxConvertedBytes = 1 << 40

// mulCapped is a×b for a, b ≥ 0, or math.MaxInt64 when that overflows:
// num_traces: 1e15 became buffer.max_bytes: 1MiB (the product wrapped
// negative, and the floor took it).
func mulCapped(a, b int64) int64 {
	if a != 0 && b > math.MaxInt64/a {
		return math.MaxInt64
	}
	return a * b
}
