package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/gzip" // registers the "gzip" gRPC compressor
)

const (
	maxBodyBytes    = 64 << 20  // compressed HTTP body
	maxDecodedBytes = 512 << 20 // decompressed HTTP body or gRPC message
)

// zstdDecoder is shared by the HTTP handler and the gRPC compressor:
// DecodeAll may be called concurrently.
var zstdDecoder, zstdEncoder = func() (*zstd.Decoder, *zstd.Encoder) {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxDecodedBytes))
	if err != nil {
		panic(fmt.Sprintf("zstd decoder: %v", err))
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		panic(fmt.Sprintf("zstd encoder: %v", err))
	}
	return dec, enc
}()

func init() { encoding.RegisterCompressor(zstdCompressor{}) }

// zstdCompressor is the gRPC compressor named "zstd", so that the
// collector's otlp_grpc exporter can send with `compression: zstd`.
type zstdCompressor struct{}

func (zstdCompressor) Name() string { return "zstd" }

func (zstdCompressor) Compress(w io.Writer) (io.WriteCloser, error) {
	return &zstdWriter{w: w}, nil
}

func (zstdCompressor) Decompress(r io.Reader) (io.Reader, error) {
	compressed, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read zstd message: %w", err)
	}
	plain, err := zstdDecoder.DecodeAll(compressed, nil)
	if err != nil {
		return nil, fmt.Errorf("decode zstd message: %w", err)
	}
	return bytes.NewReader(plain), nil
}

// zstdWriter buffers one message and compresses it whole on Close.
type zstdWriter struct {
	w   io.Writer
	buf []byte
}

func (z *zstdWriter) Write(p []byte) (int, error) {
	z.buf = append(z.buf, p...)
	return len(p), nil
}

func (z *zstdWriter) Close() error {
	_, err := z.w.Write(zstdEncoder.EncodeAll(z.buf, nil))
	return err
}

// grpcReceiver implements the OTLP trace service.
type grpcReceiver struct {
	ptraceotlp.UnimplementedGRPCServer
	rec *recorder
}

func (g *grpcReceiver) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	g.rec.record(req.Traces(), time.Now().UnixNano())
	return ptraceotlp.NewExportResponse(), nil
}

// httpHandler serves POST /v1/traces (OTLP/HTTP, protobuf or JSON, body
// optionally gzip or zstd) and GET /stats.
func httpHandler(rec *recorder) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/traces", func(w http.ResponseWriter, r *http.Request) {
		arrival := time.Now().UnixNano()
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		isJSON, ok := mediaType(r.Header.Get("Content-Type"))
		if !ok {
			http.Error(w, "unsupported content type", http.StatusUnsupportedMediaType)
			return
		}
		body, release, status, err := readBody(r)
		if err != nil {
			http.Error(w, err.Error(), status)
			return
		}
		req := ptraceotlp.NewExportRequest()
		if isJSON {
			err = req.UnmarshalJSON(body)
		} else {
			err = req.UnmarshalProto(body)
		}
		if err != nil {
			release()
			http.Error(w, "decode request: "+err.Error(), http.StatusBadRequest)
			return
		}
		rec.record(req.Traces(), arrival)
		release()
		resp := ptraceotlp.NewExportResponse()
		var out []byte
		if isJSON {
			out, _ = resp.MarshalJSON()
			w.Header().Set("Content-Type", "application/json")
		} else {
			out, _ = resp.MarshalProto()
			w.Header().Set("Content-Type", "application/x-protobuf")
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(out)
	})
	mux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(rec.stats(time.Now()))
	})
	return mux
}

// mediaType reports whether ct is OTLP JSON (true) or protobuf (false).
func mediaType(ct string) (isJSON, ok bool) {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false, false
	}
	switch mt {
	case "application/x-protobuf", "application/protobuf":
		return false, true
	case "application/json":
		return true, true
	}
	return false, false
}

// bodyPool recycles request and decompression buffers. A buffer goes back
// once the request has been recorded: the recorder copies all it keeps.
var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

var gzipPool sync.Pool // *gzip.Reader

// readBody returns the decompressed request body and the function that
// gives its buffer back.
func readBody(r *http.Request) (body []byte, release func(), status int, err error) {
	raw := bodyPool.Get().(*bytes.Buffer)
	raw.Reset()
	if _, err := raw.ReadFrom(http.MaxBytesReader(nil, r.Body, maxBodyBytes)); err != nil {
		bodyPool.Put(raw)
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, nil, http.StatusRequestEntityTooLarge, err
		}
		return nil, nil, http.StatusBadRequest, fmt.Errorf("read body: %w", err)
	}
	enc := r.Header.Get("Content-Encoding")
	if enc == "" || enc == "identity" {
		return raw.Bytes(), func() { bodyPool.Put(raw) }, 0, nil
	}
	defer bodyPool.Put(raw)
	out := bodyPool.Get().(*bytes.Buffer)
	out.Reset()
	release = func() { bodyPool.Put(out) }
	switch enc {
	case "zstd":
		plain, err := zstdDecoder.DecodeAll(raw.Bytes(), out.Bytes())
		if err != nil {
			release()
			return nil, nil, http.StatusBadRequest, fmt.Errorf("zstd body: %w", err)
		}
		if cap(plain) > out.Cap() {
			// DecodeAll grew a new slice: keep it in the pooled buffer.
			out = bytes.NewBuffer(plain[:0])
			release = func() { bodyPool.Put(out) }
		}
		return plain, release, 0, nil
	case "gzip":
		zr, _ := gzipPool.Get().(*gzip.Reader)
		if zr == nil {
			zr, err = gzip.NewReader(bytes.NewReader(raw.Bytes()))
		} else {
			err = zr.Reset(bytes.NewReader(raw.Bytes()))
		}
		if err == nil {
			var n int64
			n, err = out.ReadFrom(io.LimitReader(zr, maxDecodedBytes+1))
			if err == nil && n > maxDecodedBytes {
				err = errors.New("decompressed body too large")
			}
			gzipPool.Put(zr)
		}
		if err != nil {
			release()
			return nil, nil, http.StatusBadRequest, fmt.Errorf("gzip body: %w", err)
		}
		return out.Bytes(), release, 0, nil
	default:
		release()
		return nil, nil, http.StatusUnsupportedMediaType, fmt.Errorf("unsupported content encoding %q", enc)
	}
}

// statsJSON is the body of GET /stats.
type statsJSON struct {
	Requests          int64   `json:"requests"`
	SpanArrivals      int64   `json:"span_arrivals"`
	Spans             int64   `json:"spans"`
	DuplicateArrivals int64   `json:"duplicate_arrivals"`
	Traces            int64   `json:"traces"`
	FirstUnixNano     int64   `json:"first_arrival_unix_nano"`
	LastUnixNano      int64   `json:"last_arrival_unix_nano"`
	IdleSeconds       float64 `json:"idle_seconds"` // since the last arrival; 0 before any
}

func (r *recorder) stats(now time.Time) statsJSON {
	s := statsJSON{
		Requests:      r.requests.Load(),
		SpanArrivals:  r.spanArrivals.Load(),
		Spans:         r.spans.Load(),
		Traces:        r.nTraces.Load(),
		FirstUnixNano: r.firstArrival.Load(),
		LastUnixNano:  r.lastArrival.Load(),
	}
	s.DuplicateArrivals = max(0, s.SpanArrivals-s.Spans) // read without the lock: clamp
	if s.LastUnixNano != 0 {
		s.IdleSeconds = now.Sub(time.Unix(0, s.LastUnixNano)).Seconds()
	}
	return s
}
