package otlpguardreceiver

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"

	"go.opentelemetry.io/collector/extension/extensionmiddleware"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/tailsift/tailsift/internal/otlpguard"
)

const (
	pbContentType   = "application/x-protobuf"
	jsonContentType = "application/json"
)

var _ extensionmiddleware.HTTPServer = (*guard)(nil)

// GetHTTPHandler wraps the upstream receiver's handler. confighttp applies
// server middlewares inside its decompression handler, so the guard reads
// the body after gzip, zstd, deflate, snappy or lz4 are undone, and within
// max_request_body_size.
func (g *guard) GetHTTPHandler(context.Context) (extensionmiddleware.WrapHTTPHandlerFunc, error) {
	return func(_ context.Context, next http.Handler) (http.Handler, error) {
		// A mux with the upstream receiver's patterns finds a request's
		// signal exactly as the upstream mux routes it.
		routes := http.NewServeMux()
		signals := map[string]otlpguard.Signal{}
		for path, sig := range g.paths {
			if _, dup := signals[path]; !dup && path != "" {
				routes.Handle(path, next)
				signals[path] = sig
			}
		}
		return &httpGuard{next: next, routes: routes, signals: signals}, nil
	}, nil
}

// httpGuard checks the depth of a POSTed OTLP request before the upstream
// handler decodes it, and answers 400 with an OTLP Status when too deep.
type httpGuard struct {
	next    http.Handler
	routes  *http.ServeMux
	signals map[string]otlpguard.Signal
}

func (h *httpGuard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		h.next.ServeHTTP(w, r) // the upstream receiver decodes nothing
		return
	}
	_, pattern := h.routes.Handler(r)
	sig, ok := h.signals[pattern]
	if !ok {
		h.next.ServeHTTP(w, r)
		return
	}
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var check func(otlpguard.Signal, []byte) error
	switch mediaType {
	case pbContentType:
		check = otlpguard.Check
	case jsonContentType:
		check = otlpguard.CheckJSON
	default:
		h.next.ServeHTTP(w, r) // refused upstream as an unsupported media type
		return
	}
	body, err := io.ReadAll(r.Body)
	if closeErr := r.Body.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		// The upstream receiver answers a body it cannot read the same way.
		writeStatus(w, mediaType, fmt.Errorf("read %v request body: %w", sig, err))
		return
	}
	if err := check(sig, body); err != nil {
		writeStatus(w, mediaType, err)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	h.next.ServeHTTP(w, r)
}

// writeStatus answers 400 Bad Request with a google.rpc.Status in the
// request's encoding, as OTLP/HTTP asks for a refused request.
func writeStatus(w http.ResponseWriter, mediaType string, err error) {
	st := status.New(codes.InvalidArgument, err.Error()).Proto()
	var msg []byte
	var marshalErr error
	if mediaType == jsonContentType {
		msg, marshalErr = protojson.Marshal(st)
	} else {
		msg, marshalErr = proto.Marshal(st)
	}
	if marshalErr != nil {
		mediaType, msg = "text/plain", []byte(err.Error())
	}
	w.Header().Set("Content-Type", mediaType)
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write(msg)
}
