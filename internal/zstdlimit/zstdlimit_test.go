package zstdlimit

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/encoding"
)

// windowClaim is a zstd frame of nine bytes: a header that names a 512 MiB
// window (window descriptor 0x98: exponent 19, so 2^29), and an empty raw
// last block.
var windowClaim = []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x98, 0x01, 0x00, 0x00}

// allocated returns the bytes f allocated.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestWindowClaimRefused: the frame that made a receiver allocate 513 MiB
// is refused, over gRPC's registered compressor and confighttp's decoder,
// having allocated next to nothing.
func TestWindowClaimRefused(t *testing.T) {
	c := encoding.GetCompressor(Name)
	require.IsType(t, &compressor{}, c, "the registered zstd is this package's")
	var err error
	n := allocated(func() {
		var r io.Reader
		if r, err = c.Decompress(bytes.NewReader(windowClaim)); err == nil {
			_, err = io.ReadAll(r)
		}
	})
	require.ErrorIs(t, err, zstd.ErrWindowSizeExceeded)
	assert.Less(t, n, uint64(4<<20), "bytes allocated for a gRPC message")

	n = allocated(func() {
		var r io.ReadCloser
		if r, err = HTTPDecoder(io.NopCloser(bytes.NewReader(windowClaim))); err == nil {
			_, err = io.ReadAll(r)
			require.NoError(t, r.Close())
		}
	})
	require.ErrorIs(t, err, zstd.ErrWindowSizeExceeded)
	assert.Less(t, n, uint64(4<<20), "bytes allocated for an HTTP body")
}

// TestRoundTrip: what configgrpc's compressor (still the encoder) and the
// reference window sizes make decodes, message after message through the
// pool, and a window of MaxWindow is accepted.
func TestRoundTrip(t *testing.T) {
	c := encoding.GetCompressor(Name)
	msg := bytes.Repeat([]byte("a span, and another span; "), 40000) // 1 MiB
	for range 3 {
		var buf bytes.Buffer
		w, err := c.Compress(&buf)
		require.NoError(t, err)
		_, err = w.Write(msg)
		require.NoError(t, err)
		require.NoError(t, w.Close())
		r, err := c.Decompress(&buf)
		require.NoError(t, err)
		got, err := io.ReadAll(r)
		require.NoError(t, err)
		require.Equal(t, msg, got)
	}
	for _, window := range []int{8 << 20, MaxWindow} {
		enc, err := zstd.NewWriter(nil, zstd.WithWindowSize(window), zstd.WithSingleSegment(false))
		require.NoError(t, err)
		frame := enc.EncodeAll(msg, nil)
		body, err := HTTPDecoder(io.NopCloser(bytes.NewReader(frame)))
		require.NoError(t, err)
		got, err := io.ReadAll(body)
		require.NoError(t, err, "window %d", window)
		require.Equal(t, msg, got)
		require.NoError(t, body.Close())
	}
	// Headers naming MaxWindow and twice it (window descriptors 0x70, 2^24,
	// and 0x78, 2^25), each with an empty last block.
	for desc, ok := range map[byte]bool{0x70: true, 0x78: false} {
		body, err := HTTPDecoder(io.NopCloser(bytes.NewReader([]byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, desc, 0x01, 0x00, 0x00})))
		if err == nil {
			_, err = io.ReadAll(body)
		}
		if ok {
			require.NoError(t, err, "a window of MaxWindow")
		} else {
			require.True(t, errors.Is(err, zstd.ErrWindowSizeExceeded), "a window over MaxWindow: %v", err)
		}
	}
}

// TestConfighttpPoolBounded: confighttp's own pool of zstd decoders, which
// the upstream otlp receiver's HTTP server decodes with, gives decoders
// with the window bounded, and they decode what clients send.
func TestConfighttpPoolBounded(t *testing.T) {
	for range 2 {
		d, ok := confighttpPool.Get().(*zstd.Decoder)
		require.True(t, ok, "confighttp's pool gives a decoder, never nil")
		var err error
		n := allocated(func() {
			if err = d.Reset(bytes.NewReader(windowClaim)); err == nil {
				_, err = io.ReadAll(d)
			}
		})
		require.ErrorIs(t, err, zstd.ErrWindowSizeExceeded)
		assert.Less(t, n, uint64(4<<20), "bytes allocated for an HTTP body")

		enc, err := zstd.NewWriter(nil, zstd.WithWindowSize(8<<20), zstd.WithSingleSegment(false))
		require.NoError(t, err)
		msg := bytes.Repeat([]byte("a span; "), 1000)
		require.NoError(t, d.Reset(bytes.NewReader(enc.EncodeAll(msg, nil))))
		got, err := io.ReadAll(d)
		require.NoError(t, err)
		require.Equal(t, msg, got)
		confighttpPool.Put(d)
	}
}
