package workload

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
)

// Label attribute keys carried by every span the load generator sends. They
// are the contract between tailsift-loadgen and tailsift-sink.
const (
	// AttrClass is a string span attribute holding the trace's class
	// (one of the Class* constants).
	AttrClass = "tailsift.test.class"
	// AttrSeq is an int64 span attribute holding the trace instance's
	// sequence number in this run (1-based, unique per trace instance).
	// It is encoded as an int_value padded to a fixed 8-byte varint so the
	// generator can patch it in place; any protobuf decoder reads it as int64.
	AttrSeq = "tailsift.test.seq"
)

// Trace classes (values of AttrClass and ManifestTrace.Class).
const (
	ClassFast    = "fast"    // ordinary trace, root < 1 s
	ClassSlow    = "slow"    // root latency >= 1 s
	ClassError   = "error"   // one leaf at depth >= 2 has STATUS_CODE_ERROR, root OK
	ClassAnomaly = "anomaly" // root route latency x5-10 of its normal, still < 1 s
	ClassHuge    = "huge"    // 1000-5000 spans
)

// Classes lists every class, in a stable order.
var Classes = []string{ClassFast, ClassSlow, ClassError, ClassAnomaly, ClassHuge}

// ManifestHeader is the first line of a manifest file.
type ManifestHeader struct {
	Header          bool    `json:"header"` // always true
	Seed            int64   `json:"seed"`
	Rate            float64 `json:"rate"`       // offered spans/s
	DurationS       float64 `json:"duration_s"` // configured run duration in seconds
	ErrorPct        float64 `json:"error_pct"`  // percent of error traces
	StartedUnixNano int64   `json:"started_unix_nano"`
	// Informational extras (may be absent).
	Protocol  string `json:"protocol,omitempty"`  // "grpc" or "http"
	Templates int    `json:"templates,omitempty"` // template pool size
	// Mix is the class mix in effect (Mix.Error equals ErrorPct). Absent
	// in manifests written before it was recorded.
	Mix *Mix `json:"mix,omitempty"`
	// Shape is the request shape (ShapeBench or ShapeSDK); absent in
	// manifests written before it was recorded.
	Shape string `json:"shape,omitempty"`
}

// ManifestTrace is one line per trace instance sent, written as soon as the
// request carrying the trace's last span (late spans included) has been sent.
type ManifestTrace struct {
	Seq     int64   `json:"seq"`      // equals the AttrSeq span attribute
	TraceID string  `json:"trace_id"` // 32 lowercase hex chars
	Class   string  `json:"class"`    // equals the AttrClass span attribute
	Spans   int     `json:"spans"`    // number of spans of the trace
	Route   string  `json:"route"`    // root route, "svc-07/op-03"
	RootMs  float64 `json:"root_ms"`  // root span duration in milliseconds
	// LastSendUnixNano is the send time of the request carrying the trace's
	// last span (late spans included).
	LastSendUnixNano int64 `json:"last_send_unix_nano"`
	// Late is true when some of the trace's spans were held back and sent
	// 10-30 s later in a separate request.
	Late bool `json:"late"`
	// RefusedSpans counts this trace's spans that were in requests the
	// receiver refused or that failed (or that the loadgen shed because all
	// its connections were busy). Omitted when zero, i.e. in a clean run.
	// Spans rejected via OTLP partial_success are not attributable to a trace
	// and are only counted in the run summary.
	RefusedSpans int `json:"refused_spans,omitempty"`
}

// ReadManifest reads a JSON Lines manifest: a header object, then one
// ManifestTrace per line. Blank lines are ignored. A truncated final line
// (e.g. loadgen killed mid-write) is reported as an error together with the
// traces read so far.
func ReadManifest(r io.Reader) (ManifestHeader, []ManifestTrace, error) {
	var hdr ManifestHeader
	var traces []ManifestTrace
	br := bufio.NewReaderSize(r, 1<<16)
	lineNo := 0
	sawHeader := false
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			lineNo++
			trimmed := trimSpace(line)
			if len(trimmed) > 0 {
				if !sawHeader {
					if e := json.Unmarshal(trimmed, &hdr); e != nil {
						return hdr, traces, fmt.Errorf("manifest line %d: header: %w", lineNo, e)
					}
					if !hdr.Header {
						return hdr, traces, fmt.Errorf("manifest line %d: first line is not a header object", lineNo)
					}
					sawHeader = true
				} else {
					var t ManifestTrace
					if e := json.Unmarshal(trimmed, &t); e != nil {
						return hdr, traces, fmt.Errorf("manifest line %d: %w", lineNo, e)
					}
					traces = append(traces, t)
				}
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return hdr, traces, err
		}
	}
	if !sawHeader {
		return hdr, traces, errors.New("manifest: missing header line")
	}
	return hdr, traces, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r' || b[0] == '\n') {
		b = b[1:]
	}
	for len(b) > 0 {
		c := b[len(b)-1]
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			break
		}
		b = b[:len(b)-1]
	}
	return b
}

// ManifestWriter writes a manifest. It is safe for concurrent use. Trace
// lines are formatted by hand (no reflection) to keep it cheap.
type ManifestWriter struct {
	mu  sync.Mutex
	w   *bufio.Writer
	buf []byte
	err error
}

// NewManifestWriter writes hdr (with Header forced true) and returns a writer
// for the trace lines. Call Flush at the end.
func NewManifestWriter(w io.Writer, hdr ManifestHeader) (*ManifestWriter, error) {
	hdr.Header = true
	b, err := json.Marshal(hdr)
	if err != nil {
		return nil, err
	}
	mw := &ManifestWriter{w: bufio.NewWriterSize(w, 1<<16)}
	b = append(b, '\n')
	if _, err := mw.w.Write(b); err != nil {
		return nil, err
	}
	return mw, nil
}

// AppendManifestTrace appends t as one JSON line (with trailing newline).
func AppendManifestTrace(b []byte, t *ManifestTrace) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendInt(b, t.Seq, 10)
	b = append(b, `,"trace_id":`...)
	b = strconv.AppendQuote(b, t.TraceID)
	b = append(b, `,"class":`...)
	b = strconv.AppendQuote(b, t.Class)
	b = append(b, `,"spans":`...)
	b = strconv.AppendInt(b, int64(t.Spans), 10)
	b = append(b, `,"route":`...)
	b = strconv.AppendQuote(b, t.Route)
	b = append(b, `,"root_ms":`...)
	b = strconv.AppendFloat(b, t.RootMs, 'f', 3, 64)
	b = append(b, `,"last_send_unix_nano":`...)
	b = strconv.AppendInt(b, t.LastSendUnixNano, 10)
	b = append(b, `,"late":`...)
	b = strconv.AppendBool(b, t.Late)
	if t.RefusedSpans != 0 {
		b = append(b, `,"refused_spans":`...)
		b = strconv.AppendInt(b, int64(t.RefusedSpans), 10)
	}
	b = append(b, "}\n"...)
	return b
}

// Write appends one trace line. Errors are sticky and returned by Flush.
func (m *ManifestWriter) Write(t *ManifestTrace) {
	m.mu.Lock()
	m.buf = AppendManifestTrace(m.buf[:0], t)
	if m.err == nil {
		_, m.err = m.w.Write(m.buf)
	}
	m.mu.Unlock()
}

// Flush flushes buffered lines and returns the first error seen.
func (m *ManifestWriter) Flush() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err == nil {
		m.err = m.w.Flush()
	}
	return m.err
}
