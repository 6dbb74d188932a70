package membership

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// resolvConf is the file whose search and ndots options apply to a name
// asked of dns::server (tests point it elsewhere).
var resolvConf = "/etc/resolv.conf"

// lookupDNS returns one member per A and AAAA address of c.Hostname, asking
// c.Server when set and the system resolver otherwise.
func lookupDNS(ctx context.Context, c *DNSConfig) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	var ips []net.IP
	if c.Server == "" {
		addrs, err := net.DefaultResolver.LookupIPAddr(ctx, c.Hostname)
		if err != nil {
			return nil, fmt.Errorf("look up %q: %w", c.Hostname, err)
		}
		for _, a := range addrs {
			ips = append(ips, a.IP)
		}
	} else {
		var err error
		if ips, err = askServer(ctx, c); err != nil {
			return nil, err
		}
	}
	port := strconv.Itoa(c.Port)
	members := make([]string, 0, len(ips))
	for _, ip := range ips {
		members = append(members, net.JoinHostPort(ip.String(), port))
	}
	return normalize(members), nil
}

// askServer asks c.Server for the addresses of c.Hostname under the names
// the system resolver would try (searchNames): the first name that has
// addresses gives them. A name that does not exist or has no address moves
// on to the next; any other failure (SERVFAIL, a timeout) fails the lookup,
// as with a resolver's strict errors, so that a failure for one name never
// swaps the members for another name's. An IP address is its own answer.
func askServer(ctx context.Context, c *DNSConfig) ([]net.IP, error) {
	if a, err := netip.ParseAddr(c.Hostname); err == nil {
		return []net.IP{a.AsSlice()}, nil
	}
	for _, name := range searchNames(c.Hostname, readResolvConf()) {
		ips, err := askName(ctx, c.Server, name)
		if err != nil || len(ips) > 0 {
			return ips, err
		}
	}
	return nil, nil
}

// askName asks server for the A and AAAA records of name.
func askName(ctx context.Context, server, name string) ([]net.IP, error) {
	var ips []net.IP
	for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
		got, err := exchange(ctx, server, name, qtype)
		var rc rcodeError
		if errors.As(err, &rc) && rc.unsupported() {
			// A server that does not do AAAA (or A) answers so every
			// time: the other type's addresses are the members, as
			// with the system resolver. (A failure that may pass,
			// SERVFAIL or a timeout, keeps the last set instead: the
			// one type's addresses alone would be a ring change.)
			continue
		}
		if err != nil {
			return nil, err
		}
		ips = append(ips, got...)
	}
	return ips, nil
}

// readResolvConf reads resolvConf, or returns nil when it cannot.
func readResolvConf() *dns.ClientConfig {
	conf, err := dns.ClientConfigFromFile(resolvConf)
	if err != nil {
		return nil
	}
	return conf
}

// searchNames returns the absolute names to ask for host, in the order the
// system resolver (Go's and glibc's) tries them with conf's search list
// and ndots: a name with a trailing dot as written only; a name with at
// least ndots dots as written, then under each search domain; a name with
// fewer under each search domain first, then as written. Without conf
// (no resolv.conf) the name is asked as written.
func searchNames(host string, conf *dns.ClientConfig) []string {
	name := dns.Fqdn(host)
	if dns.IsFqdn(host) || conf == nil {
		return []string{name}
	}
	names := make([]string, 0, len(conf.Search)+1)
	asWritten := strings.Count(host, ".") >= conf.Ndots
	if asWritten {
		names = append(names, name)
	}
	for _, domain := range conf.Search {
		domain = dns.Fqdn(domain)
		if domain == "." {
			continue
		}
		if n := name + domain; len(n) <= 254 { // 253 bytes and the dot
			names = append(names, n)
		}
	}
	if !asWritten {
		names = append(names, name)
	}
	return names
}

// exchange asks server for the qtype records of host, over UDP and again over
// TCP when the answer was truncated. A name that does not exist has no
// address; any other failure is an error.
func exchange(ctx context.Context, server, host string, qtype uint16) ([]net.IP, error) {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(host), qtype)
	// Answers up to 4 KiB over UDP: without EDNS0 an answer over 512 bytes
	// that a server does not mark truncated (dozens of gateways) fails.
	q.SetEdns0(4096, false)
	client := &dns.Client{}
	resp, _, err := client.ExchangeContext(ctx, q, server)
	if err == nil && resp.Truncated {
		client.Net = "tcp"
		resp, _, err = client.ExchangeContext(ctx, q, server)
	}
	if err != nil {
		return nil, fmt.Errorf("ask %s for %s %s: %w", server, dns.TypeToString[qtype], host, err)
	}
	if resp.Rcode != dns.RcodeSuccess && resp.Rcode != dns.RcodeNameError {
		return nil, fmt.Errorf("ask %s for %s %s: %w", server, dns.TypeToString[qtype], host, rcodeError(resp.Rcode))
	}
	var ips []net.IP
	for _, rr := range resp.Answer {
		switch r := rr.(type) {
		case *dns.A:
			ips = append(ips, r.A)
		case *dns.AAAA:
			ips = append(ips, r.AAAA)
		}
	}
	return ips, nil
}

// rcodeError is a DNS answer's error code.
type rcodeError int

func (e rcodeError) Error() string { return dns.RcodeToString[int(e)] }

// unsupported reports whether the code says that the server does not
// answer this kind of question at all (not implemented, refused, or a
// format error), rather than that it failed this time.
func (e rcodeError) unsupported() bool {
	switch int(e) {
	case dns.RcodeNotImplemented, dns.RcodeRefused, dns.RcodeFormatError:
		return true
	}
	return false
}
