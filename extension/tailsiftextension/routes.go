package tailsiftextension

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/store"
	"github.com/tailsift/tailsift/internal/tracebuf"
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
	tr, err := st.Trace(id)
	if errors.Is(err, store.ErrNotFound) {
		http.Error(w, "trace not found (unknown, or older than the retention)", http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(w, "read trace: "+err.Error(), http.StatusInternalServerError)
		return
	}
	var u ptrace.ProtoUnmarshaler
	td, err := u.UnmarshalTraces(tr.Request)
	if err != nil {
		http.Error(w, "decode stored trace: "+err.Error(), http.StatusInternalServerError)
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
	var body []byte
	if strings.Contains(r.Header.Get("Accept"), protobufType) {
		var m ptrace.ProtoMarshaler
		body, err = m.MarshalTraces(td)
		w.Header().Set("Content-Type", protobufType)
	} else {
		var m ptrace.JSONMarshaler
		body, err = m.MarshalTraces(td)
		w.Header().Set("Content-Type", "application/json")
	}
	if err != nil {
		http.Error(w, "encode trace: "+err.Error(), http.StatusInternalServerError)
		return
	}
	_, _ = w.Write(body)
}

// keepResponse is the body of a successful keep.
type keepResponse struct {
	TraceID string `json:"trace_id"`
	Spans   int    `json:"spans"`
	Rule    string `json:"sampling.rule"`
}

func (e *Extension) keepTrace(w http.ResponseWriter, r *http.Request) {
	id, err := parseTraceID(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	k := e.keeper()
	if k == nil {
		http.Error(w, "no tailsift processor or receiver uses this extension's store", http.StatusServiceUnavailable)
		return
	}
	n, err := k.KeepStored(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		http.Error(w, "trace not found (unknown, or older than the retention)", http.StatusNotFound)
		return
	case errors.Is(err, tracebuf.ErrNotDropped):
		http.Error(w, "trace is kept already, or not decided yet", http.StatusConflict)
		return
	case errors.Is(err, tracebuf.ErrShutdown):
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	case err != nil:
		http.Error(w, "keep trace: "+err.Error(), http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(keepResponse{TraceID: hex.EncodeToString(id[:]), Spans: n, Rule: tracebuf.RetroactiveRule})
}
