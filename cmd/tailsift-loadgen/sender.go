package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
)

const exportMethod = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

// result is the outcome of one request.
type result struct {
	code     string // "" when accepted, else the refusal reason ("Unavailable", "http_503", ...)
	rejected int64  // spans rejected through partial_success of an accepted request
	retries  int
}

// sender sends one encoded ExportTraceServiceRequest. Send takes ownership
// of buf (it returns it to the pool when the transport is done with it).
type sender interface {
	Send(ctx context.Context, buf *[]byte) result
	Close() error
}

// ---- buffer pool ----

// bufPool is a size-classed pool of request buffers (powers of two from
// 4 KiB). Unlike gRPC's default pool it does not clear buffers on Get: every
// byte of a request is written before it is sent.
type bufPool struct{ classes [13]sync.Pool }

const minPoolShift = 12

func (p *bufPool) class(n int) int {
	if n <= 1<<minPoolShift {
		return 0
	}
	return bits.Len(uint(n-1)) - minPoolShift
}

func (p *bufPool) Get(length int) *[]byte {
	c := p.class(length)
	if c < len(p.classes) {
		if v, ok := p.classes[c].Get().(*[]byte); ok {
			*v = (*v)[:length]
			return v
		}
		b := make([]byte, length, 1<<(c+minPoolShift))
		return &b
	}
	b := make([]byte, length)
	return &b
}

func (p *bufPool) Put(b *[]byte) {
	c := cap(*b)
	if c < 1<<minPoolShift || c&(c-1) != 0 {
		return
	}
	if k := bits.Len(uint(c)) - 1 - minPoolShift; k < len(p.classes) {
		*b = (*b)[:0]
		p.classes[k].Put(b)
	}
}

var pool = &bufPool{}

// ---- gRPC ----

// rawMsg carries pre-encoded request bytes through gRPC.
type rawMsg struct{ buf mem.Buffer }

// respMsg receives the ExportTraceServiceResponse.
type respMsg struct {
	rejected int64
	msg      string
}

// rawCodec sends rawMsg bytes as they are (no marshalling) and decodes only
// the partial_success of the response. Its name is "proto", so the wire
// content type is the ordinary application/grpc+proto.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(*rawMsg)
	if !ok {
		return nil, fmt.Errorf("rawCodec: cannot marshal %T", v)
	}
	return mem.BufferSlice{m.buf}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	r, ok := v.(*respMsg)
	if !ok {
		return fmt.Errorf("rawCodec: cannot unmarshal into %T", v)
	}
	if data.Len() == 0 {
		return nil
	}
	r.rejected, r.msg = parseExportResponse(data.Materialize())
	return nil
}

// parseExportResponse reads ExportTraceServiceResponse.partial_success.
func parseExportResponse(b []byte) (rejected int64, msg string) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return
		}
		b = b[n:]
		if num == 1 && typ == protowire.BytesType {
			ps, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return
			}
			b = b[n:]
			for len(ps) > 0 {
				num, typ, n := protowire.ConsumeTag(ps)
				if n < 0 {
					return
				}
				ps = ps[n:]
				switch {
				case num == 1 && typ == protowire.VarintType:
					v, n := protowire.ConsumeVarint(ps)
					if n < 0 {
						return
					}
					rejected, ps = int64(v), ps[n:]
				case num == 2 && typ == protowire.BytesType:
					s, n := protowire.ConsumeString(ps)
					if n < 0 {
						return
					}
					msg, ps = s, ps[n:]
				default:
					n := protowire.ConsumeFieldValue(num, typ, ps)
					if n < 0 {
						return
					}
					ps = ps[n:]
				}
			}
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return
		}
		b = b[n:]
	}
	return
}

type grpcSender struct {
	conns   []*grpc.ClientConn
	next    atomic.Uint32
	timeout time.Duration
	retry   bool
}

func newGRPCSender(endpoint string, conns int, timeout time.Duration, retry bool) (*grpcSender, error) {
	s := &grpcSender{timeout: timeout, retry: retry}
	for range conns {
		// Each ClientConn is its own HTTP/2 connection.
		cc, err := grpc.NewClient(endpoint,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodec{})),
			// Large requests in few syscalls.
			grpc.WithWriteBufferSize(256<<10),
		)
		if err != nil {
			_ = s.Close()
			return nil, err
		}
		s.conns = append(s.conns, cc)
	}
	return s, nil
}

// warmup connects every ClientConn and waits up to d for them to be ready.
func (s *grpcSender) warmup(ctx context.Context, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for _, cc := range s.conns {
		cc.Connect()
		for st := cc.GetState(); st != connectivity.Ready; st = cc.GetState() {
			if !cc.WaitForStateChange(ctx, st) {
				return fmt.Errorf("grpc connection not ready: %v", st)
			}
		}
	}
	return nil
}

func (s *grpcSender) Send(ctx context.Context, buf *[]byte) result {
	cc := s.conns[int(s.next.Add(1))%len(s.conns)]
	b := mem.NewBuffer(buf, pool) // our reference; gRPC frees its own
	defer b.Free()
	var res result
	for attempt := 0; ; attempt++ {
		b.Ref()
		var resp respMsg
		cctx, cancel := context.WithTimeout(ctx, s.timeout)
		err := cc.Invoke(cctx, exportMethod, &rawMsg{buf: b}, &resp)
		cancel()
		if err == nil {
			res.code, res.rejected = "", resp.rejected
			return res
		}
		code := status.Code(err)
		res.code = code.String()
		if !s.retry || !retryableGRPC(code) || attempt >= maxRetries || ctx.Err() != nil {
			return res
		}
		res.retries++
		sleepBackoff(ctx, attempt)
	}
}

func retryableGRPC(c codes.Code) bool {
	switch c {
	case codes.Unavailable, codes.ResourceExhausted, codes.DeadlineExceeded, codes.Aborted,
		codes.Canceled, codes.OutOfRange, codes.DataLoss:
		return true
	}
	return false
}

func (s *grpcSender) Close() error {
	var errs []error
	for _, cc := range s.conns {
		errs = append(errs, cc.Close())
	}
	return errors.Join(errs...)
}

// ---- HTTP ----

type httpSender struct {
	url     string
	client  *http.Client
	retry   bool
	timeout time.Duration
}

func newHTTPSender(url string, conns int, timeout time.Duration, retry bool) *httpSender {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxConnsPerHost:     conns,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		WriteBufferSize:     64 << 10,
		ReadBufferSize:      16 << 10,
	}
	return &httpSender{url: url, client: &http.Client{Transport: tr}, retry: retry, timeout: timeout}
}

// reqBody is a request body over a pooled buffer that records whether the
// transport has closed it (after which the buffer may be reused).
type reqBody struct {
	b      []byte
	off    int
	closed atomic.Bool
}

func (r *reqBody) Read(p []byte) (int, error) {
	if r.off >= len(r.b) {
		return 0, io.EOF
	}
	n := copy(p, r.b[r.off:])
	r.off += n
	return n, nil
}

func (r *reqBody) Close() error { r.closed.Store(true); return nil }

var discardBufs = sync.Pool{New: func() any { b := make([]byte, 4096); return &b }}

func (s *httpSender) Send(ctx context.Context, buf *[]byte) result {
	var res result
	reusable := true
	for attempt := 0; ; attempt++ {
		body := &reqBody{b: *buf}
		cctx, cancel := context.WithTimeout(ctx, s.timeout)
		req, err := http.NewRequestWithContext(cctx, http.MethodPost, s.url, body)
		if err != nil {
			cancel()
			res.code = "request_error"
			return res
		}
		req.ContentLength = int64(len(*buf))
		req.Header.Set("Content-Type", "application/x-protobuf")
		resp, err := s.client.Do(req)
		retryable := false
		if err != nil {
			res.code = "conn_error"
			if errors.Is(err, context.DeadlineExceeded) {
				res.code = "timeout"
			}
			retryable = true
		} else {
			rb := readLimited(resp.Body, 1<<20)
			_ = resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				res.code = ""
				if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/x-protobuf") {
					res.rejected, _ = parseExportResponse(rb)
				}
			} else {
				res.code = fmt.Sprintf("http_%d", resp.StatusCode)
				switch resp.StatusCode {
				case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
					retryable = true
				}
			}
		}
		cancel()
		reusable = reusable && res.code == "" && body.closed.Load()
		if res.code == "" || !s.retry || !retryable || attempt >= maxRetries || ctx.Err() != nil {
			break
		}
		res.retries++
		sleepBackoff(ctx, attempt)
	}
	if reusable {
		pool.Put(buf)
	}
	return res
}

func readLimited(r io.Reader, limit int) []byte {
	var out []byte
	tmp := discardBufs.Get().(*[]byte)
	defer discardBufs.Put(tmp)
	for len(out) < limit {
		n, err := r.Read(*tmp)
		out = append(out, (*tmp)[:n]...)
		if err != nil {
			break
		}
	}
	return out
}

func (s *httpSender) Close() error {
	s.client.CloseIdleConnections()
	return nil
}

// ---- retry ----

const maxRetries = 5

func sleepBackoff(ctx context.Context, attempt int) {
	d := 50 * time.Millisecond << attempt
	if d > time.Second {
		d = time.Second
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
