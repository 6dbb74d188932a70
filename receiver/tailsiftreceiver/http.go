package tailsiftreceiver

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sync"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
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

// readBufs are scratch buffers for bodies of unknown length (chunked or
// decompressed). The bytes handed to the trace buffer are always a copy of
// their own: the buffer keeps reading them after the handler returns.
var readBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledReadBuf keeps rare huge bodies from pinning memory in the pool.
const maxPooledReadBuf = 4 << 20

// handleTraces serves POST /v1/traces: OTLP protobuf goes to the buffer as
// it arrived; JSON is decoded with pdata and re-encoded as protobuf first.
func (r *tailsiftReceiver) handleTraces(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		writeResponse(w, "text/plain", http.StatusMethodNotAllowed,
			fmt.Appendf(nil, "%d method not allowed, supported: [POST]", http.StatusMethodNotAllowed))
		return
	}
	var isJSON bool
	switch mediaType(req.Header.Get("Content-Type")) {
	case pbContentType:
	case jsonContentType:
		isJSON = true
	default:
		writeResponse(w, "text/plain", http.StatusUnsupportedMediaType,
			fmt.Appendf(nil, "%d unsupported media type, supported: [%s, %s]",
				http.StatusUnsupportedMediaType, jsonContentType, pbContentType))
		return
	}
	body, code, err := r.readBody(req)
	if err != nil {
		writeStatus(w, isJSON, status.New(httpCodeToGRPC(code), err.Error()), code)
		return
	}
	format := formatProtobuf
	if isJSON {
		format = formatJSON
		if body, err = jsonToProto(body); err != nil {
			writeStatus(w, isJSON, status.New(codes.InvalidArgument, err.Error()), http.StatusBadRequest)
			return
		}
	}
	out := r.ingest(req.Context(), r.obsHTTP, format, body, nil)
	if out.st != nil {
		code := httpStatus(out.st.Code())
		if out.httpCode != 0 {
			code = out.httpCode
		}
		writeStatus(w, isJSON, out.st, code)
		return
	}
	if !isJSON {
		writeResponse(w, pbContentType, http.StatusOK, appendExportResponse(nil, out.rejected, out.message))
		return
	}
	if out.rejected == 0 {
		writeResponse(w, jsonContentType, http.StatusOK, []byte("{}"))
		return
	}
	resp := ptraceotlp.NewExportResponse()
	resp.PartialSuccess().SetRejectedSpans(int64(out.rejected))
	resp.PartialSuccess().SetErrorMessage(out.message)
	msg, err := resp.MarshalJSON()
	if err != nil {
		writeStatus(w, isJSON, status.New(codes.Internal, err.Error()), http.StatusInternalServerError)
		return
	}
	writeResponse(w, jsonContentType, http.StatusOK, msg)
}

// readBody reads the (already decompressed) body into a slice of its own.
// On error it returns the HTTP status to answer with. confighttp has
// already capped the body at max_request_body_size, after decompression.
func (r *tailsiftReceiver) readBody(req *http.Request) ([]byte, int, error) {
	defer func() { _ = req.Body.Close() }()
	if n := req.ContentLength; n > 0 {
		if r.maxBody > 0 && n > r.maxBody {
			return nil, http.StatusRequestEntityTooLarge,
				fmt.Errorf("request body of %d bytes is over max_request_body_size (%d)", n, r.maxBody)
		}
		body, err := readAnnounced(req.Body, n)
		if err != nil {
			return nil, readErrorStatus(err), fmt.Errorf("read request body: %w", err)
		}
		return body, 0, nil
	}
	b := readBufs.Get().(*bytes.Buffer)
	b.Reset()
	defer func() {
		if b.Cap() <= maxPooledReadBuf {
			readBufs.Put(b)
		}
	}()
	if _, err := b.ReadFrom(req.Body); err != nil {
		return nil, readErrorStatus(err), fmt.Errorf("read request body: %w", err)
	}
	return bytes.Clone(b.Bytes()), 0, nil
}

// firstRead is the most a body's buffer starts with, whatever its
// Content-Length announces.
const firstRead = 64 << 10

// readAnnounced reads a body of n announced bytes into a slice of n bytes
// that grows as the bytes arrive, doubling from firstRead: a client that
// announces more than it sends makes the receiver hold at most twice what
// it sent (plus firstRead), not what it announced.
func readAnnounced(rd io.Reader, n int64) ([]byte, error) {
	body := make([]byte, 0, min(n, firstRead))
	for int64(len(body)) < n {
		if len(body) == cap(body) {
			body = append(make([]byte, 0, min(n, 2*int64(cap(body)))), body...)
		}
		k, err := rd.Read(body[len(body):cap(body)])
		body = body[:len(body)+k]
		if errors.Is(err, io.EOF) && int64(len(body)) < n {
			err = io.ErrUnexpectedEOF
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
	}
	return body, nil
}

func readErrorStatus(err error) int {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}

// jsonToProto decodes an OTLP/JSON export request with pdata and encodes it
// as protobuf for the buffer.
func jsonToProto(body []byte) ([]byte, error) {
	// pdata's JSON decoder recurses per object and array: the nesting is
	// bounded before it runs, as in the otlp receiver's guard (wire.Scan
	// checks the protobuf only once it is decoded and encoded again).
	if err := otlpguard.CheckJSON(otlpguard.Traces, body); err != nil {
		return nil, fmt.Errorf("malformed OTLP/JSON traces request: %w", err)
	}
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalJSON(body); err != nil {
		return nil, fmt.Errorf("malformed OTLP/JSON traces request: %w", err)
	}
	return req.MarshalProto()
}

// writeStatus answers with an error: a google.rpc.Status in the request's
// encoding, as OTLP/HTTP requires, and Retry-After when the status carries
// a retry delay.
func writeStatus(w http.ResponseWriter, isJSON bool, st *status.Status, code int) {
	if code == http.StatusServiceUnavailable || code == http.StatusTooManyRequests {
		if v, ok := retryAfter(st); ok {
			w.Header().Set("Retry-After", v)
		}
	}
	var (
		msg []byte
		err error
	)
	ct := pbContentType
	if isJSON {
		ct = jsonContentType
		msg, err = protojson.Marshal(st.Proto())
	} else {
		msg, err = proto.Marshal(st.Proto())
	}
	if err != nil {
		writeResponse(w, "application/json", http.StatusInternalServerError,
			[]byte(`{"code": 13, "message": "failed to marshal error message"}`))
		return
	}
	writeResponse(w, ct, code, msg)
}

// errorHandler answers the errors confighttp raises before the handler
// (request decompression), as the otlp receiver does.
func errorHandler(w http.ResponseWriter, r *http.Request, errMsg string, code int) {
	st := status.New(httpCodeToGRPC(code), errMsg)
	switch mediaType(r.Header.Get("Content-Type")) {
	case pbContentType:
		writeStatus(w, false, st, code)
	default:
		writeStatus(w, true, st, code)
	}
}

func writeResponse(w http.ResponseWriter, contentType string, code int, msg []byte) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(code)
	_, _ = w.Write(msg) // #nosec G705 -- OTLP payload with an explicit, non-HTML content type
}

func mediaType(contentType string) string {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return ""
	}
	return mt
}
