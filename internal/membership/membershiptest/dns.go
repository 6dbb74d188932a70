// Package membershiptest runs a DNS server in process, for tests of the
// members block's dns form (never edit /etc/hosts).
package membershiptest

import (
	"net"
	"sync"
	"testing"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"
)

// DNSServer answers A and AAAA queries, for any name, with the addresses it
// was last given. Addr is its host:port, for the dns block's server key.
type DNSServer struct {
	Addr string

	mu    sync.Mutex
	ips   []net.IP
	rcode int
	srv   *dns.Server
}

// StartDNS starts a server on 127.0.0.1 answering with addrs (IPv4 or IPv6
// literals); it stops when the test ends.
func StartDNS(t testing.TB, addrs ...string) *DNSServer {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	d := &DNSServer{Addr: pc.LocalAddr().String()}
	d.Set(addrs...)
	started := make(chan struct{})
	d.srv = &dns.Server{PacketConn: pc, Handler: d, NotifyStartedFunc: func() { close(started) }}
	go func() { _ = d.srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = d.srv.Shutdown() })
	return d
}

// Set makes the server answer with addrs.
func (d *DNSServer) Set(addrs ...string) { d.SetRcode(dns.RcodeSuccess, addrs...) }

// SetRcode makes the server answer with rcode (dns.RcodeServerFailure,
// dns.RcodeNameError, …) and addrs.
func (d *DNSServer) SetRcode(rcode int, addrs ...string) {
	ips := make([]net.IP, 0, len(addrs))
	for _, a := range addrs {
		ips = append(ips, net.ParseIP(a))
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rcode, d.ips = rcode, ips
}

// ServeDNS implements dns.Handler.
func (d *DNSServer) ServeDNS(w dns.ResponseWriter, q *dns.Msg) {
	d.mu.Lock()
	defer d.mu.Unlock()
	resp := new(dns.Msg)
	resp.SetRcode(q, d.rcode)
	question := q.Question[0]
	for _, ip := range d.ips {
		hdr := dns.RR_Header{Name: question.Name, Class: dns.ClassINET, Ttl: 5}
		switch {
		case ip.To4() != nil && question.Qtype == dns.TypeA:
			hdr.Rrtype = dns.TypeA
			resp.Answer = append(resp.Answer, &dns.A{Hdr: hdr, A: ip})
		case ip.To4() == nil && question.Qtype == dns.TypeAAAA:
			hdr.Rrtype = dns.TypeAAAA
			resp.Answer = append(resp.Answer, &dns.AAAA{Hdr: hdr, AAAA: ip})
		}
	}
	_ = w.WriteMsg(resp)
}
