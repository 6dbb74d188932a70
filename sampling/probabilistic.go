package sampling

import (
	"fmt"

	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
)

// ProbabilisticConfig keeps SamplingPercentage % of traces, consistently: the
// decision depends only on the trace's randomness, so every collector
// decides a trace alike.
//
// The randomness is the trace's explicit rv, or the low 56 bits of its trace
// ID, as the OpenTelemetry sampling specification defines. With HashSalt, a
// trace that arrived without OpenTelemetry sampling values (no rv nor th in
// its tracestate) takes its randomness from an FNV-1a hash of the salt and
// its trace ID instead, as contrib's probabilistic policy hashes them, and
// its kept spans carry that randomness as an explicit rv next to th, so
// that samplers downstream read the same randomness and the adjusted count
// stays right. A trace that arrived with sampling values keeps its own
// randomness (contrib does the same with its usetracestate gate).
type ProbabilisticConfig struct {
	// SamplingPercentage is in (0, 100].
	SamplingPercentage float64 `mapstructure:"sampling_percentage"`
	// HashSalt, when set, derives the randomness of traces without
	// sampling values from the salt and the trace ID. Collectors that
	// share a salt decide alike; layers of collectors with different salts
	// sample independently of each other.
	HashSalt string `mapstructure:"hash_salt"`
}

// Validate implements the config validator.
func (c *ProbabilisticConfig) Validate() error {
	if c.SamplingPercentage <= 0 || c.SamplingPercentage > 100 {
		return fmt.Errorf("sampling_percentage: must be in (0, 100], got %v", c.SamplingPercentage)
	}
	if _, err := otelsampling.ProbabilityToThreshold(c.SamplingPercentage / 100); err != nil {
		return fmt.Errorf("sampling_percentage: %w", err)
	}
	return nil
}

type probabilistic struct {
	threshold otelsampling.Threshold
	salt      uint64 // FNV-1a state after the salt's bytes
	rv        uint8  // the salt's Decision.rv; 0 without a salt
}

func newProbabilistic(settings any, b *builder) (evaluator, error) {
	c := settings.(*ProbabilisticConfig)
	th, err := otelsampling.ProbabilityToThreshold(c.SamplingPercentage / 100)
	if err != nil {
		return nil, fmt.Errorf("sampling_percentage: %w", err)
	}
	p := probabilistic{threshold: th}
	if c.HashSalt != "" {
		p.salt = fnv1a(fnvOffset, []byte(c.HashSalt))
		if p.rv, err = b.salt(p.salt); err != nil {
			return nil, fmt.Errorf("hash_salt: %w", err)
		}
	}
	return p, nil
}

func (p probabilistic) Evaluate(t *Trace) Decision {
	if p.rv != 0 && !t.HasHead && !t.explicitRV {
		if p.threshold.ShouldSample(saltedRandomness(p.salt, t.ID)) {
			return Decision{Verdict: Sampled, Threshold: p.threshold, rv: p.rv}
		}
		return Decision{Verdict: NotSampled, Threshold: p.threshold, rv: p.rv}
	}
	if t.ShouldSample(p.threshold) {
		return sampledAt(p.threshold)
	}
	// A refusal carries the threshold it was decided on, for not.
	return Decision{Verdict: NotSampled, Threshold: p.threshold}
}

// saltedRandomness derives a trace's randomness from a salt (the FNV-1a
// state after its bytes) and the trace's ID:
// contrib's hashTraceID (FNV-1a of the salt then the ID), complemented and
// cut to 56 bits. contrib keeps a trace when the hash is at most
// ratio·2^64; keeping it when this randomness reaches the threshold of
// ratio, (1-ratio)·2^56, is the same rule up to the rounding of the last
// 8 bits, so the same traces are kept as by a contrib collector with the
// same salt.
func saltedRandomness(salt uint64, id [16]byte) otelsampling.Randomness {
	rnd, _ := otelsampling.UnsignedToRandomness(^fnv1a(salt, id[:]) >> 8)
	return rnd
}

// FNV-1a, 64 bits, as hash/fnv's New64a computes it, without its
// allocation.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnv1a(h uint64, b []byte) uint64 {
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime
	}
	return h
}
