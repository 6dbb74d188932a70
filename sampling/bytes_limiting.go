package sampling

// BytesLimitingConfig keeps traces while a token bucket of bytes allows them,
// as contrib's bytes_limiting policy does: the bucket refills at
// BytesPerSecond, holds at most BurstCapacity bytes, and a trace takes as many
// tokens as its size. A trace larger than BurstCapacity never passes.
//
// Mode consistent (the default) samples with a threshold, as rate_limiting
// does.
//
// The size is Trace.SizeBytes, the encoded OTLP bytes of the trace's span
// messages. contrib measures the protobuf size of all the batches it
// received for the trace, which also counts each batch's resource and scope
// and their framing, so the same traffic weighs less here.
type BytesLimitingConfig struct {
	// BytesPerSecond is the sustained rate, in bytes per second.
	BytesPerSecond int64 `mapstructure:"bytes_per_second"`
	// BurstCapacity is the bucket size in bytes; 0 means 2×BytesPerSecond.
	BurstCapacity int64 `mapstructure:"burst_capacity"`
	// Mode is consistent (the default) or strict, as for rate_limiting.
	Mode LimitMode `mapstructure:"mode"`
}

// Validate implements the config validator.
func (c *BytesLimitingConfig) Validate() error {
	if err := validateBucket("bytes_per_second", c.BytesPerSecond, c.BurstCapacity); err != nil {
		return err
	}
	return c.Mode.validate()
}

func newBytesLimiting(settings any, b *builder) (evaluator, error) {
	c := settings.(*BytesLimitingConfig)
	return newLimiter(b, c.BytesPerSecond, c.BurstCapacity, true, c.Mode)
}
