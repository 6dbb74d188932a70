package tailsiftextension

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/store"
	"github.com/tailsift/tailsift/internal/wire"
)

type route struct {
	pattern string
	handler http.Handler
}

// builtinRoutes are the routes the extension serves itself: the status
// page and the retrieval API. Other tailsift components add theirs with
// Extension.Handle.
func builtinRoutes(e *Extension) []route {
	return append(statusRoutes(),
		route{"GET /api/v1/traces/{trace_id}", http.HandlerFunc(e.getTrace)},
		route{"POST /api/v1/traces/{trace_id}/keep", http.HandlerFunc(e.keepTrace)},
	)
}

const protobufType = "application/x-protobuf"

// Response headers carrying a stored trace's decision.
const (
	headerDecision = "Tailsift-Decision" // keep, drop or undecided
	headerPolicy   = "Tailsift-Policy"   // the policy that kept it
	headerReason   = "Tailsift-Reason"   // what decided it: quiet, max_wait, late_span, retroactive...
	// headerThreshold is a kept trace's OpenTelemetry threshold, the th
	// its exported spans carry in their tracestate (the stored spans are
	// as they arrived, without it).
	headerThreshold = "Tailsift-Threshold"
	// headerTruncated is "true" when the trace's stored spans exceed
	// max_response_bytes: the response holds the first ones recorded, and
	// headerOmitted counts the others.
	headerTruncated = "Tailsift-Truncated"
	headerOmitted   = "Tailsift-Spans-Omitted"
)

// parseTraceID reads the {trace_id} path value: 32 hex digits, not all zero.
func parseTraceID(r *http.Request) ([16]byte, error) {
	var id [16]byte
	s := r.PathValue("trace_id")
	if len(s) != 32 {
		return id, fmt.Errorf("trace ID must be 32 hex digits, got %d characters", len(s))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("trace ID must be 32 hex digits: %w", err)
	}
	if id == [16]byte{} {
		return id, errors.New("trace ID must not be all zero")
	}
	return id, nil
}

func (e *Extension) getTrace(w http.ResponseWriter, r *http.Request) {
	id, err := parseTraceID(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	st := e.Store()
	if st == nil {
		http.Error(w, "store not open", http.StatusServiceUnavailable)
		return
	}
	release, ok := e.reserveResponse(r.Context())
	if !ok {
		e.refuse(w, r, refusedGet, "other trace reads hold max_concurrent_response_bytes; retry later")
		return
	}
	defer release()
	tr, err := st.TraceMax(id, int(e.cfg.MaxResponseBytes))
	if errors.Is(err, store.ErrNotFound) {
		http.Error(w, "trace not found (unknown, or older than the retention)", http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(w, "read trace: "+err.Error(), http.StatusInternalServerError)
		return
	}
	decision := "undecided"
	if tr.Decided {
		decision = "drop"
		if tr.Decision.Keep {
			decision = "keep"
		}
		w.Header().Set(headerPolicy, tr.Decision.Policy)
		w.Header().Set(headerReason, tr.Decision.Reason)
		if th, err := otelsampling.UnsignedToThreshold(tr.Decision.Threshold); tr.Decision.Keep && err == nil {
			w.Header().Set(headerThreshold, th.TValue())
		}
	}
	w.Header().Set(headerDecision, decision)
	if tr.Omitted > 0 {
		w.Header().Set(headerTruncated, "true")
		w.Header().Set(headerOmitted, strconv.Itoa(tr.Omitted))
	}
	if strings.Contains(r.Header.Get("Accept"), protobufType) {
		// The stored spans are a TracesData already: no decoding, no
		// second copy.
		w.Header().Set("Content-Type", protobufType)
		_, _ = w.Write(tr.Request)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	writeJSON(w, tr.Request)
}

// jsonChunk is about how many bytes of stored spans writeJSON decodes at a
// time.
const jsonChunk = 256 << 10

// writeJSON writes the TracesData req as OTLP JSON, decoding and encoding
// about jsonChunk bytes of its resource spans at a time: decoded whole, a
// trace of 4 MiB took about 100 MiB of pdata and JSON at once. A chunk that
// does not decode (the stored spans were scanned when they were accepted,
// so only a corrupt store could) aborts the response: its status is sent.
func writeJSON(w http.ResponseWriter, req []byte) {
	const head, tail = `{"resourceSpans":[`, `]}`
	_, _ = io.WriteString(w, head)
	var u ptrace.ProtoUnmarshaler
	var m ptrace.JSONMarshaler
	first := true
	flush := func(chunk []byte) {
		td, err := u.UnmarshalTraces(chunk)
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		js, err := m.MarshalTraces(td)
		if err != nil || !bytes.HasPrefix(js, []byte(head)) || !bytes.HasSuffix(js, []byte(tail)) {
			panic(http.ErrAbortHandler)
		}
		js = js[len(head) : len(js)-len(tail)]
		if len(js) == 0 {
			return
		}
		if !first {
			_, _ = io.WriteString(w, ",")
		}
		first = false
		_, _ = w.Write(js)
	}
	start, end := 0, 0
	wire.ForEachResourceSpans(req, func(rs []byte, _ int) {
		// The fields follow one another in req: a chunk is a slice of it.
		end += len(rs)
		if end-start >= jsonChunk {
			flush(req[start:end])
			start = end
		}
	})
	if end > start {
		flush(req[start:end])
	}
	_, _ = io.WriteString(w, tail)
}
