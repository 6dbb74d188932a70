package membership

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.uber.org/zap"

	"github.com/tailsift/tailsift/internal/clock/clocktest"
)

// handlerServer is a DNS server on UDP and TCP (same port) with a handler
// function, for answers membershiptest cannot give.
type handlerServer struct {
	addr string
	mu   sync.Mutex
	fn   func(w dns.ResponseWriter, q *dns.Msg, tcp bool)
}

func startHandlerDNS(t *testing.T, fn func(w dns.ResponseWriter, q *dns.Msg, tcp bool)) *handlerServer {
	t.Helper()
	var pc net.PacketConn
	var ln net.Listener
	for range 20 {
		var err error
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		require.NoError(t, err)
		ln, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		_ = pc.Close()
	}
	require.NotNil(t, ln)
	s := &handlerServer{addr: pc.LocalAddr().String(), fn: fn}
	mk := func(tcp bool) dns.HandlerFunc {
		return func(w dns.ResponseWriter, q *dns.Msg) {
			s.mu.Lock()
			f := s.fn
			s.mu.Unlock()
			f(w, q, tcp)
		}
	}
	u := &dns.Server{PacketConn: pc, Handler: mk(false)}
	tc := &dns.Server{Listener: ln, Handler: mk(true)}
	go func() { _ = u.ActivateAndServe() }()
	go func() { _ = tc.ActivateAndServe() }()
	time.Sleep(50 * time.Millisecond)
	t.Cleanup(func() { _ = u.Shutdown(); _ = tc.Shutdown() })
	return s
}

func answer(q *dns.Msg, rcode int, ips ...string) *dns.Msg {
	resp := new(dns.Msg)
	resp.SetRcode(q, rcode)
	qs := q.Question[0]
	for _, a := range ips {
		ip := net.ParseIP(a)
		hdr := dns.RR_Header{Name: qs.Name, Class: dns.ClassINET, Ttl: 5}
		switch {
		case ip.To4() != nil && qs.Qtype == dns.TypeA:
			hdr.Rrtype = dns.TypeA
			resp.Answer = append(resp.Answer, &dns.A{Hdr: hdr, A: ip})
		case ip.To4() == nil && qs.Qtype == dns.TypeAAAA:
			hdr.Rrtype = dns.TypeAAAA
			resp.Answer = append(resp.Answer, &dns.AAAA{Hdr: hdr, AAAA: ip})
		}
	}
	return resp
}

func handlerDNSConfig(server string) *DNSConfig {
	return &DNSConfig{Hostname: "gw.svc", Port: 4317, Interval: time.Minute, Timeout: time.Second, Server: server}
}

// A truncated UDP answer is asked again over TCP.
func TestDNSTruncatedFallsBackToTCP(t *testing.T) {
	s := startHandlerDNS(t, func(w dns.ResponseWriter, q *dns.Msg, tcp bool) {
		if !tcp {
			r := answer(q, dns.RcodeSuccess)
			r.Truncated = true
			_ = w.WriteMsg(r)
			return
		}
		_ = w.WriteMsg(answer(q, dns.RcodeSuccess, "10.0.0.1", "10.0.0.2"))
	})
	ms, err := lookupDNS(t.Context(), handlerDNSConfig(s.addr))
	require.NoError(t, err)
	assert.Equal(t, []string{"10.0.0.1:4317", "10.0.0.2:4317"}, ms)
}

// Many gateways: an answer above 512 bytes, which a server that does not
// mark it truncated sends whole over UDP. Without EDNS0 the lookup failed.
func TestDNSLargeAnswer(t *testing.T) {
	var ips []string
	for i := range 60 {
		ips = append(ips, net.IPv4(10, 0, 1, byte(i+1)).String())
	}
	s := startHandlerDNS(t, func(w dns.ResponseWriter, q *dns.Msg, _ bool) {
		_ = w.WriteMsg(answer(q, dns.RcodeSuccess, ips...))
	})
	ms, err := lookupDNS(t.Context(), handlerDNSConfig(s.addr))
	require.NoError(t, err)
	assert.Len(t, ms, 60)
}

// TestDNSAAAAUnsupported: a server that answers A but not AAAA (NOTIMP,
// REFUSED, FORMERR) failed every lookup, so that an agent never learnt a
// gateway. The A records are the members now, as with the system resolver;
// a SERVFAIL, which may pass, still fails the lookup (the last set stays).
func TestDNSAAAAUnsupported(t *testing.T) {
	for _, rc := range []int{dns.RcodeNotImplemented, dns.RcodeRefused, dns.RcodeFormatError, dns.RcodeServerFailure} {
		s := startHandlerDNS(t, func(w dns.ResponseWriter, q *dns.Msg, _ bool) {
			if q.Question[0].Qtype == dns.TypeAAAA {
				_ = w.WriteMsg(answer(q, rc))
				return
			}
			_ = w.WriteMsg(answer(q, dns.RcodeSuccess, "10.0.0.1"))
		})
		ms, err := lookupDNS(t.Context(), handlerDNSConfig(s.addr))
		if rc == dns.RcodeServerFailure {
			require.Error(t, err)
			continue
		}
		require.NoError(t, err, dns.RcodeToString[rc])
		assert.Equal(t, []string{"10.0.0.1:4317"}, ms, dns.RcodeToString[rc])
	}
}

// TestDNSTimeoutBounds: each lookup is bounded by timeout, with a server
// that never answers AAAA.
func TestDNSTimeoutBounds(t *testing.T) {
	s := startHandlerDNS(t, func(w dns.ResponseWriter, q *dns.Msg, tcp bool) {
		if q.Question[0].Qtype == dns.TypeAAAA {
			return // no answer
		}
		_ = w.WriteMsg(answer(q, dns.RcodeSuccess, "10.0.0.1"))
	})
	cfg := handlerDNSConfig(s.addr)
	cfg.Timeout = 300 * time.Millisecond
	start := time.Now()
	_, err := lookupDNS(t.Context(), cfg)
	el := time.Since(start)
	require.Error(t, err)
	assert.Less(t, el, 2*time.Second, "lookup took %v", el)
}

// TestWatcherNoFlap: after a good answer, NXDOMAIN, SERVFAIL, no answer and
// a reordered answer with duplicates and other spellings of the same
// addresses: the member set never empties nor changes.
func TestWatcherNoFlap(t *testing.T) {
	mode := "good"
	var mu sync.Mutex
	s := startHandlerDNS(t, func(w dns.ResponseWriter, q *dns.Msg, tcp bool) {
		mu.Lock()
		m := mode
		mu.Unlock()
		switch m {
		case "good":
			_ = w.WriteMsg(answer(q, dns.RcodeSuccess, "10.0.0.2", "10.0.0.1", "::1"))
		case "reorder":
			_ = w.WriteMsg(answer(q, dns.RcodeSuccess, "::1", "10.0.0.1", "10.0.0.2", "10.0.0.1", "::ffff:10.0.0.2", "0:0::1"))
		case "nx":
			_ = w.WriteMsg(answer(q, dns.RcodeNameError))
		case "servfail":
			_ = w.WriteMsg(answer(q, dns.RcodeServerFailure))
		case "silent":
		}
	})
	cfg := NewDefaultConfig()
	d := cfg.DNS.GetOrInsertDefault()
	d.Hostname, d.Port, d.Server, d.Interval, d.Timeout = "gw.svc", 4317, s.addr, time.Minute, 200*time.Millisecond
	w := NewWatcher(cfg, clocktest.NewFake(time.Unix(0, 0)), zap.NewNop())
	var got [][]string
	require.NoError(t, w.Start(t.Context(), func(ms []string) { got = append(got, ms) }))
	defer func() { require.NoError(t, w.Shutdown(context.Background())) }()
	for _, m := range []string{"nx", "servfail", "silent", "reorder", "good"} {
		mu.Lock()
		mode = m
		mu.Unlock()
		_ = w.Refresh(t.Context())
		require.Len(t, w.Members(), 3, m)
	}
	assert.Len(t, got, 1, "notifications: %v", got)
}

// TestMembersWrittenAlike: the ring hashes members as written, so that one
// gateway written two ways (by DNS and in a static list, or in two static
// lists) put agents and gateways on different rings: about a third of the
// trace IDs had different owners. Every list is written canonically now.
func TestMembersWrittenAlike(t *testing.T) {
	pairs := [][2][]string{
		{{"[::1]:4317", "10.0.0.1:4317"}, {"[0:0:0:0:0:0:0:1]:4317", "10.0.0.1:4317"}},
		{{"[2001:db8::1]:4317", "10.0.0.1:4317"}, {"[2001:DB8::1]:4317", "10.0.0.1:4317"}},
		{{"10.0.0.5:4317", "10.0.0.1:4317"}, {"[::ffff:10.0.0.5]:4317", "10.0.0.1:4317"}},
		{{"10.0.0.5:4317", "10.0.0.1:4317"}, {"10.0.0.5:04317", "10.0.0.1:4317"}},
		{{"10.0.0.5:4317", "10.0.0.1:4317"}, {"10.0.0.5:+4317", "10.0.0.1:4317"}},
		{{"gw-0.svc:4317", "gw-1.svc:4317"}, {"GW-0.svc.:4317", "gw-1.svc:4317"}},
	}
	for _, p := range pairs {
		for _, side := range p {
			cfg := NewDefaultConfig()
			require.NoError(t, confmap.NewFromStringMap(map[string]any{"static": toAny(side)}).Unmarshal(&cfg))
			require.NoError(t, confmap.Validate(&cfg), "%v", side)
		}
		a := NewWatcher(Config{Static: p[0]}, nil, zap.NewNop())
		b := NewWatcher(Config{Static: p[1]}, nil, zap.NewNop())
		require.NoError(t, a.Start(t.Context(), nil))
		require.NoError(t, b.Start(t.Context(), nil))
		assert.Equal(t, a.Members(), b.Members(), "%v and %v", p[0], p[1])
		require.NoError(t, a.Shutdown(t.Context()))
		require.NoError(t, b.Shutdown(t.Context()))
	}
	cfg := NewDefaultConfig()
	require.NoError(t, confmap.NewFromStringMap(map[string]any{"static": []any{" 10.0.0.5:4317"}}).Unmarshal(&cfg))
	require.ErrorContains(t, confmap.Validate(&cfg), "the host has a space in it")
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// TestTinyIntervalRefused: interval 1ns was accepted, and made a watcher
// ask its server about 12 000 times a second.
func TestTinyIntervalRefused(t *testing.T) {
	cfg := NewDefaultConfig()
	require.NoError(t, confmap.NewFromStringMap(map[string]any{"dns": map[string]any{
		"hostname": "gw.svc", "port": 4317, "interval": "1ns", "server": "127.0.0.1:53",
	}}).Unmarshal(&cfg))
	require.ErrorContains(t, confmap.Validate(&cfg), "dns: interval: must be at least 10ms, got 1ns")
}

// useResolvConf makes the lookups of this test read a resolv.conf holding
// text.
func useResolvConf(t *testing.T, text string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "resolv.conf")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
	prev := resolvConf
	resolvConf = path
	t.Cleanup(func() { resolvConf = prev })
}

// TestDNSServerSearchDomains: with dns::server set, the name was asked as
// written, made absolute, while the system resolver applies resolv.conf's
// search list and ndots. In a Kubernetes pod (search
// <ns>.svc.cluster.local svc.cluster.local cluster.local, ndots:5) the
// headless Service's short name found every member without server and none
// with it. The names are now tried in the system resolver's order; the
// first that has addresses gives the members; a name with a trailing dot is
// asked as written only; a failure other than "no such name" or "no
// address" fails the lookup (the last set stays) rather than moving on to
// another name, whose answer could be another member set.
func TestDNSServerSearchDomains(t *testing.T) {
	useResolvConf(t, "nameserver 10.96.0.10\nsearch tailsift.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n")
	const full = "tailsift-gateway.tailsift.svc.cluster.local."
	var mu sync.Mutex
	var asked []string
	servfail := ""
	s := startHandlerDNS(t, func(w dns.ResponseWriter, q *dns.Msg, _ bool) {
		name := q.Question[0].Name
		mu.Lock()
		defer mu.Unlock()
		if q.Question[0].Qtype == dns.TypeA {
			asked = append(asked, name)
		}
		switch name {
		case servfail:
			_ = w.WriteMsg(answer(q, dns.RcodeServerFailure))
		case full:
			_ = w.WriteMsg(answer(q, dns.RcodeSuccess, "10.0.0.1", "10.0.0.2"))
		case "tailsift-gateway.": // another set under the bare name
			_ = w.WriteMsg(answer(q, dns.RcodeSuccess, "10.9.9.9"))
		default:
			_ = w.WriteMsg(answer(q, dns.RcodeNameError))
		}
	})
	for _, tc := range []struct {
		name, host, servfail string
		want, wantAsked      []string
		wantErr              bool
	}{
		{
			name: "short name", host: "tailsift-gateway",
			want: []string{"10.0.0.1:4317", "10.0.0.2:4317"}, wantAsked: []string{full},
		},
		{
			name: "name and namespace", host: "tailsift-gateway.tailsift",
			want:      []string{"10.0.0.1:4317", "10.0.0.2:4317"},
			wantAsked: []string{"tailsift-gateway.tailsift.tailsift.svc.cluster.local.", full},
		},
		{
			name: "fewer dots than ndots: the search list first", host: "tailsift-gateway.tailsift.svc.cluster.local",
			want: []string{"10.0.0.1:4317", "10.0.0.2:4317"},
			wantAsked: []string{
				"tailsift-gateway.tailsift.svc.cluster.local.tailsift.svc.cluster.local.",
				"tailsift-gateway.tailsift.svc.cluster.local.svc.cluster.local.",
				"tailsift-gateway.tailsift.svc.cluster.local.cluster.local.",
				full,
			},
		},
		{name: "absolute name", host: full, want: []string{"10.0.0.1:4317", "10.0.0.2:4317"}, wantAsked: []string{full}},
		{name: "absolute short name: not searched", host: "tailsift-gateway.", want: []string{"10.9.9.9:4317"}, wantAsked: []string{"tailsift-gateway."}},
		{
			name: "SERVFAIL does not move on to the next name", host: "tailsift-gateway", servfail: full,
			wantErr: true, wantAsked: []string{full},
		},
		{name: "an IP address is not asked", host: "10.0.0.7", want: []string{"10.0.0.7:4317"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			asked, servfail = nil, tc.servfail
			mu.Unlock()
			cfg := handlerDNSConfig(s.addr)
			cfg.Hostname = tc.host
			ms, err := lookupDNS(t.Context(), cfg)
			if tc.wantErr {
				require.ErrorContains(t, err, "SERVFAIL")
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tc.want, ms)
			mu.Lock()
			defer mu.Unlock()
			assert.Equal(t, tc.wantAsked, asked)
		})
	}
}

// TestDNSServerNdotsOne: with ndots:1 (the default) a name with a dot is
// asked as written first, then with the search list.
func TestDNSServerNdotsOne(t *testing.T) {
	useResolvConf(t, "search example.internal\n")
	var mu sync.Mutex
	var asked []string
	s := startHandlerDNS(t, func(w dns.ResponseWriter, q *dns.Msg, _ bool) {
		if q.Question[0].Qtype == dns.TypeA {
			mu.Lock()
			asked = append(asked, q.Question[0].Name)
			mu.Unlock()
		}
		if q.Question[0].Name == "gw.svc.example.internal." {
			_ = w.WriteMsg(answer(q, dns.RcodeSuccess, "10.0.0.1"))
			return
		}
		_ = w.WriteMsg(answer(q, dns.RcodeSuccess)) // no address (NODATA)
	})
	cfg := handlerDNSConfig(s.addr)
	ms, err := lookupDNS(t.Context(), cfg)
	require.NoError(t, err)
	assert.Equal(t, []string{"10.0.0.1:4317"}, ms)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"gw.svc.", "gw.svc.example.internal."}, asked)
}
