package tracebuf

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"

	"github.com/tailsift/tailsift/internal/cluster"
	"github.com/tailsift/tailsift/sampling"
)

// Config is the user-facing configuration of the trace buffer and its
// engine. The tailsift processor and receiver share it, so a block of YAML
// moves between them unchanged.
type Config struct {
	// Shards is the number of buffer shards, each owned by one goroutine;
	// 0 means GOMAXPROCS. Trace IDs are hashed with xxhash to pick a shard.
	Shards int `mapstructure:"shards"`
	// Completion says when a trace is complete enough to decide.
	Completion CompletionConfig `mapstructure:"completion"`
	// Buffer bounds the memory held for undecided traces.
	Buffer BufferConfig `mapstructure:"buffer"`
	// DecisionCache remembers decisions so late spans follow their trace.
	DecisionCache DecisionCacheConfig `mapstructure:"decision_cache"`
	// Output batches what is kept before handing it to the next consumer.
	Output OutputConfig `mapstructure:"output"`
	// Rescue holds dropped traces for a while, so that a late span with an
	// ERROR status (or one that makes the trace slow) still keeps the whole
	// trace; off unless Rescue.Window is set. It is the fallback without a
	// store: with Storage the store does this without the memory, and
	// Rescue.Window must not be set.
	Rescue RescueConfig `mapstructure:"rescue"`
	// Policies are all evaluated, drop policies first; the trace is kept if
	// any keeps it, at the highest probability among those that do.
	Policies []sampling.PolicyConfig `mapstructure:"policies"`
	// Rules replace Policies with first-match rule mode, as contrib's
	// adaptive_tail_sampling decides: the first rule whose OTTL conditions
	// match a trace decides it with its sampler; no match drops it
	// (docs/policies/rules.md). Set rules or policies, not both; the
	// default policies are ignored when rules are set.
	Rules []sampling.RuleConfig `mapstructure:"rules"`
	// Budget caps the kept traces or spans per second, shared among
	// priority classes of the policies; off when absent.
	Budget sampling.BudgetConfig `mapstructure:"budget"`
	// Cluster makes this gateway one of a ring of gateways (docs/scale-out.md);
	// absent, it samples alone.
	Cluster configoptional.Optional[cluster.Config] `mapstructure:"cluster"`
	// SampleOnFirstMatch: the first policy that samples a trace decides,
	// the later ones are not evaluated (contrib's sample_on_first_match;
	// see sampling.WithFirstMatch for the threshold the trace carries).
	SampleOnFirstMatch bool `mapstructure:"sample_on_first_match"`
	// RootSpanCondition: OTTL span conditions that make a span count as
	// its trace's root for keyed policies, for traces whose true root
	// never arrives (sampling.WithRootSpanCondition).
	RootSpanCondition []string `mapstructure:"root_span_condition"`
	// Storage names the tailsift extension (e.g. `tailsift`) whose durable
	// store records every accepted span and decision, so that a restart
	// resumes the buffer and late errors keep dropped traces; off when
	// absent.
	Storage *component.ID `mapstructure:"storage"`
}

// CompletionConfig holds the completion rules; the first to fire decides.
type CompletionConfig struct {
	// Quiet: once the root span has arrived, decide after this long with no
	// new span of the trace.
	Quiet time.Duration `mapstructure:"quiet"`
	// MaxWait: decide at the latest this long after the trace's first span.
	// A trace whose root never arrives is decided then.
	MaxWait time.Duration `mapstructure:"max_wait"`
	// MaxSpans: a trace with this many spans is decided at once on what has
	// arrived; its later spans follow that decision.
	MaxSpans int `mapstructure:"max_spans"`
	// MaxTraceBytes: a trace whose spans' encoded bytes exceed this is
	// decided at once on what has arrived, as with MaxSpans, and its later
	// spans follow that decision; so one giant trace cannot make its shard
	// decide every older trace early for memory, and an ERROR among what has
	// arrived still keeps it. Contrib's maximum_trace_size_bytes drops such a
	// trace instead. A shard applies at most half its share of
	// buffer.max_bytes, so that one trace never fills a shard. 0 turns the
	// cap off (the memory rule still applies).
	MaxTraceBytes ByteSize `mapstructure:"max_trace_bytes"`
	// Learn sets quiet per route from how late each route's spans arrive
	// after its root (docs/completion.md).
	Learn LearnConfig `mapstructure:"learn"`
}

// LearnConfig learns, per route (the root span's service and name, the key
// of the adaptive policy), the largest gap between a trace's arrivals from
// its root on, late spans included, and decides the route's traces after
// clamp(quantile of that gap × margin, min, max) with no new span instead of
// quiet. A route is learned once it has 32 traces in a shard; until then,
// and for routes beyond max_routes, quiet applies. A learned value below
// quiet decides every trace when a dropped trace can be rescued by a late
// ERROR span (a store, or rescue.window); otherwise it only probes a trace
// without an ERROR span: kept, it leaves; dropped, it waits out quiet
// (completion.safe).
type LearnConfig struct {
	// Enabled applies the learned quiet. Off, the routes are still tracked
	// for the per-route completion metrics.
	Enabled bool `mapstructure:"enabled"`
	// Min and Max bound the learned quiet; max_wait bounds both (a trace
	// is decided max_wait after its first span whatever its quiet), so a
	// max above it counts as max_wait.
	Min time.Duration `mapstructure:"min"`
	Max time.Duration `mapstructure:"max"`
	// Quantile of the per-trace largest gap the learned quiet covers.
	Quantile float64 `mapstructure:"quantile"`
	// Margin multiplies the learned quantile.
	Margin float64 `mapstructure:"margin"`
	// MaxRoutes bounds the routes each shard learns; the least recently
	// seen route makes room for a new one.
	MaxRoutes int `mapstructure:"max_routes"`
}

// Validate checks the learning bounds.
func (c *LearnConfig) Validate() error {
	switch {
	case c.Min <= 0:
		return fmt.Errorf("min: must be positive, got %v", c.Min)
	case c.Max < c.Min:
		return fmt.Errorf("max: must be at least min (%v), got %v", c.Min, c.Max)
	case !(c.Quantile >= 0.5 && c.Quantile < 1):
		return fmt.Errorf("quantile: must be in [0.5, 1), got %v", c.Quantile)
	case !(c.Margin >= 1 && c.Margin <= 10):
		return fmt.Errorf("margin: must be between 1 and 10, got %v", c.Margin)
	case c.MaxRoutes < 1 || c.MaxRoutes > 1<<20:
		return fmt.Errorf("max_routes: must be between 1 and 1048576, got %d", c.MaxRoutes)
	}
	return nil
}

// BufferConfig bounds the buffer.
type BufferConfig struct {
	// MaxBytes is the budget for buffered spans across all shards. When it is
	// reached, the oldest traces are decided early; nothing is dropped
	// undecided. Accepts sizes like 512MiB.
	MaxBytes ByteSize `mapstructure:"max_bytes"`
	// MaxQueuedBytes bounds the requests accepted but not yet taken in by the
	// shards, each counted with its scan (queueWeight). When it is reached,
	// callers block until their context ends and then get a retryable error.
	// A request heavier than all of it is taken in as pieces within it
	// (split.go); only a span heavier than all of it with its resource and
	// scope is refused, permanently (TooLargeError).
	MaxQueuedBytes ByteSize `mapstructure:"max_queued_bytes"`
}

// DecisionCacheConfig sizes the caches of past decisions.
type DecisionCacheConfig struct {
	// KeptMaxBytes bounds the caches of kept trace IDs.
	KeptMaxBytes ByteSize `mapstructure:"kept_max_bytes"`
	// DroppedMaxEntries bounds the filter of dropped trace IDs.
	DroppedMaxEntries int `mapstructure:"dropped_max_entries"`
}

// OutputConfig batches kept spans. Each shard gathers the traces it keeps
// (and the late spans it forwards) into requests, each handed on when it
// holds BatchMaxSpans spans or at the latest BatchTimeout after its first trace
// (at the shard's last wake-up within it), so the exporter compresses and
// sends a few large requests instead of one per kept trace.
type OutputConfig struct {
	// BatchTimeout is the longest a kept trace waits for others to join
	// its request; 0 hands each kept trace on at once.
	BatchTimeout time.Duration `mapstructure:"batch_timeout"`
	// BatchMaxSpans is the most spans a request holds, unless it is one
	// kept trace larger than that (a trace is never split); it is handed on
	// once it holds this many, or once the next kept trace would not fit.
	BatchMaxSpans int `mapstructure:"batch_max_spans"`
	// AnnotateRoots adds two attributes to each kept trace's root spans,
	// for backends that read them: sampling.rule, the name of the policy
	// that kept the trace, and SampleRate, the number of traces it stands
	// for (1/probability, rounded), as Honeycomb and Refinery use it.
	AnnotateRoots bool `mapstructure:"annotate_roots"`
	// AnnotateSpans adds those attributes to every span of a kept trace,
	// its late spans included, not just to its roots.
	AnnotateSpans bool `mapstructure:"annotate_spans"`
	// ShutdownTimeout bounds Shutdown: the time it has to decide every
	// buffered trace and hand the kept ones on, retrying while the next
	// consumer refuses. Kept spans not handed on by then are counted as
	// export failures and dropped. A shorter deadline on Shutdown's context
	// wins; the collector gives none, and an orchestrator kills a process
	// that takes too long (Kubernetes: 30s after SIGTERM by default).
	ShutdownTimeout time.Duration `mapstructure:"shutdown_timeout"`
	// Exporter, when set, names a tailsift exporter of this component's
	// pipeline that takes the kept spans as the bytes the buffer holds:
	// they are not decoded to pdata, and the exporter does not marshal
	// them again (wireout.go). Whatever follows this component in the
	// pipeline does not see them. Absent, kept spans go to the next
	// consumer as pdata.
	Exporter *component.ID `mapstructure:"exporter"`
}

// wireExporterType is the type output::exporter must name.
var wireExporterType = component.MustNewType("tailsift")

// RescueConfig holds the traces dropped at completion (quiet or max_wait)
// in memory for Window after their decision. A late span of a held trace
// joins it; when the span brings the trace's first ERROR status or lengthens
// it, the policies decide the trace again, and if they keep it now, the
// whole trace, late span included, is kept with the new decision's
// threshold. Traces dropped early (for memory, max_spans or shutdown) are not
// held.
type RescueConfig struct {
	// Window is how long a dropped trace is held; 0 turns rescue off. Late
	// spans arriving later than this after the decision are dropped.
	Window time.Duration `mapstructure:"window"`
	// MaxBytes bounds the held traces across shards, apart from
	// buffer.max_bytes; when it is reached the oldest held traces are let go
	// first. Holding every dropped trace for Window takes about
	// spans/s × Window × bytes per span.
	MaxBytes ByteSize `mapstructure:"max_bytes"`
}

// Validate checks the rescue window and budget.
func (c *RescueConfig) Validate() error {
	if c.Window < 0 || c.Window > 10*time.Minute {
		return fmt.Errorf("window: must be between 0 (off) and 10m, got %v", c.Window)
	}
	if c.Window > 0 && c.MaxBytes < 1<<20 {
		return fmt.Errorf("max_bytes: must be at least 1MiB when window is set, got %d", c.MaxBytes)
	}
	return nil
}

// Validate checks the batching bounds.
func (c *OutputConfig) Validate() error {
	if c.BatchTimeout < 0 || c.BatchTimeout > time.Minute {
		return fmt.Errorf("batch_timeout: must be between 0 and 1m, got %v", c.BatchTimeout)
	}
	if c.BatchMaxSpans <= 0 {
		return fmt.Errorf("batch_max_spans: must be positive, got %d", c.BatchMaxSpans)
	}
	if c.ShutdownTimeout <= 0 || c.ShutdownTimeout > 10*time.Minute {
		return fmt.Errorf("shutdown_timeout: must be positive and at most 10m, got %v", c.ShutdownTimeout)
	}
	if c.Exporter != nil && c.Exporter.Type() != wireExporterType {
		return fmt.Errorf("exporter: %q is not a tailsift exporter; name one (e.g. tailsift/backend) that is in this pipeline's exporters, or remove the key to hand kept spans to the pipeline", c.Exporter.String())
	}
	return nil
}

// DefaultConfig returns the defaults shared by the tailsift processor and
// receiver: the values documented in the README.
func DefaultConfig() Config {
	return Config{
		Shards: 0,
		Completion: CompletionConfig{
			Quiet:         2 * time.Second,
			MaxWait:       30 * time.Second,
			MaxSpans:      10000,
			MaxTraceBytes: 16 << 20,
			Learn: LearnConfig{
				Enabled: true, Min: 200 * time.Millisecond, Max: 10 * time.Second,
				Quantile: 0.95, Margin: 1, MaxRoutes: 1000,
			},
		},
		Buffer: BufferConfig{
			MaxBytes:       512 << 20,
			MaxQueuedBytes: 64 << 20,
		},
		DecisionCache: DecisionCacheConfig{
			KeptMaxBytes:      16 << 20,
			DroppedMaxEntries: 1_000_000,
		},
		Output: OutputConfig{
			BatchTimeout:    50 * time.Millisecond,
			BatchMaxSpans:   8192,
			ShutdownTimeout: 10 * time.Second,
		},
		Rescue:  RescueConfig{MaxBytes: 256 << 20},
		Cluster: configoptional.Default(cluster.NewDefaultConfig()),
		Policies: []sampling.PolicyConfig{
			sampling.NewPolicyConfig("errors", "status_code", &sampling.StatusCodeConfig{StatusCodes: []string{"ERROR"}}),
			sampling.NewPolicyConfig("slow", "latency", &sampling.LatencyConfig{ThresholdMs: 1000}),
			sampling.NewPolicyConfig("baseline", "probabilistic", &sampling.ProbabilisticConfig{SamplingPercentage: 0.01}),
		},
	}
}

// Validate implements component.ConfigValidator.
func (c *Config) Validate() error {
	if c.Shards < 0 || c.Shards > 4096 {
		return fmt.Errorf("shards: must be between 0 (GOMAXPROCS) and 4096, got %d", c.Shards)
	}
	policies, err := c.validatePolicies()
	if err != nil {
		return err
	}
	if err := sampling.ValidateRootSpanCondition(c.RootSpanCondition); err != nil {
		return err
	}
	if err := sampling.ValidateBudget(&c.Budget, policies); err != nil {
		return err
	}
	if c.Storage != nil && c.Rescue.Window > 0 {
		return fmt.Errorf("rescue::window: not used with storage (%s): the store keeps a dropped trace for a late ERROR span without holding it in memory; remove rescue::window, the fallback without a store", c.Storage)
	}
	if cl := c.Cluster.Get(); c.Cluster.HasValue() && cl != nil && cl.Budget == cluster.BudgetShared && !c.Budget.Enabled() {
		return errors.New("cluster::budget: shared, but there is no budget to share (set budget::traces_per_second or budget::spans_per_second)")
	}
	return nil
}

// validatePolicies checks the policies, or in rule mode the rules, and
// returns what the budget's classes name: the policies, or the rules'
// samplers named after their rules.
func (c *Config) validatePolicies() ([]sampling.PolicyConfig, error) {
	if len(c.Rules) == 0 {
		return c.Policies, sampling.ValidatePolicies(c.Policies)
	}
	if len(c.enginePolicies()) > 0 {
		return nil, errors.New("rules: set rules or policies, not both (rules decide first-match, in place of the policies)")
	}
	if c.SampleOnFirstMatch {
		return nil, errors.New("sample_on_first_match: rules are first-match already; remove it")
	}
	return sampling.RulePolicies(c.Rules), sampling.ValidateRules(c.Rules)
}

// enginePolicies is the policy list the engine gets: none in rule mode
// when the policies are the defaults, which rules replace.
func (c *Config) enginePolicies() []sampling.PolicyConfig {
	if len(c.Rules) > 0 && reflect.DeepEqual(c.Policies, DefaultConfig().Policies) {
		return nil
	}
	return c.Policies
}

// maxMaxWait bounds completion.max_wait, and through it quiet and the
// learned quiet (both at most max_wait). The shards add max_wait to a
// trace's first arrival in nanoseconds: near time.Duration's maximum the sum
// overflowed, and a trace was decided for max_wait at its first span. A
// trace held a day is already far past what a buffer's memory holds at
// any real rate.
const maxMaxWait = 24 * time.Hour

// Validate checks the completion rules.
func (c *CompletionConfig) Validate() error {
	if c.Quiet <= 0 {
		return fmt.Errorf("quiet: must be positive, got %v", c.Quiet)
	}
	if c.MaxWait < c.Quiet {
		return fmt.Errorf("max_wait: must be at least quiet (%v), got %v", c.Quiet, c.MaxWait)
	}
	if c.MaxWait > maxMaxWait {
		return fmt.Errorf("max_wait: must be at most %v, got %v", maxMaxWait, c.MaxWait)
	}
	if c.MaxSpans <= 0 {
		return fmt.Errorf("max_spans: must be positive, got %d", c.MaxSpans)
	}
	if c.MaxTraceBytes < 0 {
		return fmt.Errorf("max_trace_bytes: must not be negative (0 turns it off), got %d", c.MaxTraceBytes)
	}
	return nil
}

// Validate checks the buffer bounds.
func (c *BufferConfig) Validate() error {
	if c.MaxBytes < 1<<20 {
		return fmt.Errorf("max_bytes: must be at least 1MiB, got %d", c.MaxBytes)
	}
	if c.MaxQueuedBytes < 1<<20 {
		return fmt.Errorf("max_queued_bytes: must be at least 1MiB, got %d", c.MaxQueuedBytes)
	}
	return nil
}

// Validate checks the cache sizes.
func (c *DecisionCacheConfig) Validate() error {
	if c.KeptMaxBytes < 64<<10 {
		return fmt.Errorf("kept_max_bytes: must be at least 64KiB, got %d", c.KeptMaxBytes)
	}
	if c.DroppedMaxEntries < 0 {
		return fmt.Errorf("dropped_max_entries: must not be negative, got %d", c.DroppedMaxEntries)
	}
	return nil
}

// ByteSize is a number of bytes that reads from YAML as an integer or as a
// string with a unit: B, KB, MB, GB (powers of 1000) or KiB, MiB, GiB
// (powers of 1024).
type ByteSize int64

// UnmarshalText implements encoding.TextUnmarshaler.
func (b *ByteSize) UnmarshalText(text []byte) error {
	n, err := ParseByteSize(string(text))
	if err != nil {
		return err
	}
	*b = n
	return nil
}

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
}

// ParseByteSize parses sizes like "512MiB", "16MB" or "1048576".
func ParseByteSize(s string) (ByteSize, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	num := s
	for _, u := range byteUnits {
		if strings.HasSuffix(s, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("invalid byte size %q (want e.g. 512MiB, 16MB or a number of bytes)", s)
	}
	v := f * float64(mult)
	if v > float64(1<<62) {
		return 0, errors.New("byte size too large")
	}
	return ByteSize(v), nil
}
