// Package zstdlimit bounds the memory a zstd body can make a receiver
// allocate before it has read a byte of content. A zstd frame header names
// the window its decoder must keep; klauspost/compress allows up to 512 MiB
// by default, and allocates it at once: nine bytes (a header claiming 2^29
// and an empty last block) made a receiver allocate 513 MiB, over gRPC
// (configgrpc's registered compressor) and over HTTP (confighttp's
// decoder). Frames that OTLP clients send name far less: configgrpc
// encodes with a 512 KiB window, confighttp with klauspost/compress's
// default (8 MiB at most), and the reference zstd's levels up to 19 with at
// most 8 MiB. MaxWindow is twice that.
//
// Importing the package replaces gRPC's process-wide "zstd" compressor
// with one that decodes with the window bounded (and encodes as
// configgrpc's does, by delegating to it): every gRPC server and client of
// the process then decodes bounded. HTTPDecoder is the same for a
// confighttp server (confighttp.WithDecoder). A confighttp server that
// cannot be given a decoder (the upstream otlp receiver's) decodes zstd
// with decoders from confighttp's own pool: importing the package gives
// that pool bounded decoders too (see confighttpPool).
package zstdlimit // import "github.com/tailsift/tailsift/internal/zstdlimit"

import (
	"io"
	"runtime"
	"sync"
	_ "unsafe" // go:linkname, for confighttpPool

	"github.com/klauspost/compress/zstd"
	// configgrpc registers its zstd compressor in its init, which runs
	// before this package's: this one replaces it.
	_ "go.opentelemetry.io/collector/config/configgrpc"
	_ "go.opentelemetry.io/collector/config/confighttp"
	"google.golang.org/grpc/encoding"
)

// MaxWindow is the largest window a zstd frame may name; a frame that
// names more is refused (zstd.ErrWindowSizeExceeded) before anything is
// allocated for it.
const MaxWindow = 16 << 20

// Name is zstd's content coding, in gRPC and HTTP.
const Name = "zstd"

var decoderOptions = []zstd.DOption{
	zstd.WithDecoderConcurrency(1), // one request at a time: no async decoding
	zstd.WithDecoderMaxWindow(MaxWindow),
}

// decoders are the pooled decoders of both transports.
var decoders sync.Pool

func getDecoder(r io.Reader) (*zstd.Decoder, error) {
	if d, ok := decoders.Get().(*zstd.Decoder); ok {
		if err := d.Reset(r); err != nil {
			decoders.Put(d)
			return nil, err
		}
		return d, nil
	}
	return zstd.NewReader(r, decoderOptions...)
}

func putDecoder(d *zstd.Decoder) {
	if d.Reset(nil) == nil {
		decoders.Put(d)
	}
}

// confighttpPool is confighttp's pool of zstd decoders (v0.161.0,
// compression.go): its decoder for "zstd" takes one from the pool, or makes
// one with the default 512 MiB window when the pool gives nil. The server
// runs that decoder before any middleware, and no option of the upstream
// otlp receiver replaces it, so the pool's New is this package's: Get never
// gives nil, and every decoder it gives has the window bounded. Should
// confighttp rename the pool, this fails to link rather than going
// unbounded; TestConfighttpPoolBounded checks the decoders it gives.
//
//go:linkname confighttpPool go.opentelemetry.io/collector/config/confighttp.zstdReaderPool
var confighttpPool sync.Pool

func init() {
	if c := encoding.GetCompressor(Name); c != nil {
		encoding.RegisterCompressor(&compressor{Compressor: c})
	}
	confighttpPool.New = func() any {
		d, err := zstd.NewReader(nil, decoderOptions...)
		if err != nil {
			panic(err) // the options are constants
		}
		return d
	}
}

// compressor is configgrpc's zstd compressor with a bounded decoder.
type compressor struct {
	encoding.Compressor // configgrpc's: Compress and Name
}

// Decompress implements encoding.Compressor.
func (c *compressor) Decompress(r io.Reader) (io.Reader, error) {
	d, err := getDecoder(r)
	if err != nil {
		return nil, err
	}
	w := &reader{d: d}
	// gRPC stops reading at its message limit, short of the end: the
	// decoder then goes back to the pool when the reader is collected.
	runtime.SetFinalizer(w, (*reader).release)
	return w, nil
}

// reader reads a gRPC message through a pooled decoder, which it gives back
// at the first error (io.EOF included).
type reader struct {
	d    *zstd.Decoder
	once sync.Once
}

func (r *reader) Read(p []byte) (int, error) {
	if r.d == nil {
		return 0, zstd.ErrDecoderClosed
	}
	n, err := r.d.Read(p)
	if err != nil {
		r.release()
	}
	return n, err
}

func (r *reader) release() {
	r.once.Do(func() {
		putDecoder(r.d)
		r.d = nil
	})
}

// HTTPDecoder is a confighttp decoder (confighttp.WithDecoder(Name,
// HTTPDecoder)) with the window bounded.
func HTTPDecoder(body io.ReadCloser) (io.ReadCloser, error) {
	d, err := getDecoder(body)
	if err != nil {
		return nil, err
	}
	return &httpReader{reader: reader{d: d}}, nil
}

// httpReader is reader with a Close, which gives the decoder back; the
// server closes the request's body itself.
type httpReader struct{ reader }

func (r *httpReader) Close() error {
	r.release()
	return nil
}
