package sampling_test

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tailsift/tailsift/sampling"
)

// FuzzAdaptiveModel feeds any bytes to adaptive's state_file, the one
// parser of a file the collector only reads back (a model saved by an older
// run, a copy from another host, a file damaged on disk). The engine must
// start, judge traces of the model's own keys and of new ones, at the
// model's own times and after them, and save a model that loads again,
// without panicking and with a probability in [0, 1] for every kept trace.
func FuzzAdaptiveModel(f *testing.F) {
	seedDir := f.TempDir()
	seedFile := filepath.Join(seedDir, "m")
	withFile := func(path string) sampling.PolicyConfig {
		return adaptivePolicy(func(c *sampling.AdaptiveConfig) {
			c.MaxShare = 1
			c.StateFile = path
		})
	}
	// Seeds: a learnt model of three keys, one damaged in its floats, one
	// cut short, and non-models.
	{
		e := newEngine(f, withFile(seedFile))
		rng := rand.New(rand.NewPCG(1, 2))
		now := epoch
		for key := uint64(1); key <= 3; key++ {
			feed(e, rng, key, &now, int64(time.Millisecond), 300, float64(key)*10e6)
		}
		require.NoError(f, e.SaveState())
		model, err := os.ReadFile(seedFile)
		require.NoError(f, err)
		require.Greater(f, len(model), 12+sampling.ModelKeyBytes)
		f.Add(model)
		nan := append([]byte(nil), model...)
		for off := 12 + 24; off < 12+24+6*8; off += 8 {
			binary.LittleEndian.PutUint64(nan[off:], math.Float64bits(math.NaN()))
		}
		f.Add(nan)
		inf := append([]byte(nil), model...)
		binary.LittleEndian.PutUint64(inf[12+24:], math.Float64bits(math.Inf(1)))
		binary.LittleEndian.PutUint64(inf[12+8:], uint64(math.MaxInt64)) // epoch far ahead
		f.Add(inf)
		f.Add(model[:len(model)-1])
	}
	f.Add([]byte{})
	f.Add([]byte("tsam"))
	f.Add([]byte("tsam\x01\x00\x00\x00\xff\xff\xff\xff"))

	dir := f.TempDir()
	path := filepath.Join(dir, "m")
	f.Fuzz(func(t *testing.T, data []byte) {
		require.NoError(t, os.WriteFile(path, data, 0o600))
		e := newEngine(t, withFile(path))
		keys := []uint64{1, 42}
		times := []int64{epoch}
		for i := 0; i < 3 && 12+(i+1)*sampling.ModelKeyBytes <= len(data); i++ {
			k := data[12+i*sampling.ModelKeyBytes:]
			keys = append(keys, binary.LittleEndian.Uint64(k))
			times = append(times, int64(binary.LittleEndian.Uint64(k[16:])))
		}
		rng := rand.New(rand.NewPCG(3, 4))
		for _, key := range keys {
			for _, now := range times {
				for _, at := range []int64{now, now + int64(time.Hour)} {
					for _, dur := range []uint64{0, uint64(time.Millisecond), uint64(10 * time.Second)} {
						for _, status := range []uint8{sampling.StatusOKBit, sampling.StatusErrorBit} {
							d := e.Decide(keyed(rng, key, at, dur, status))
							if p := d.Probability(); d.Keep() && !(p > 0 && p <= 1) {
								t.Fatalf("key %x at %d, %d ns: kept with probability %v", key, at, dur, p)
							}
						}
					}
				}
			}
		}
		require.NoError(t, e.SaveState())
		newEngine(t, withFile(path)) // the saved model loads
	})
}
