// Package membership tells which collectors belong to a cluster: the members
// block shared by the tailsift exporter (the gateways an agent routes to) and
// the gateways' cluster block (the peers a gateway hands traces to).
//
//	members:
//	  static: [10.0.0.5:4317, 10.0.0.6:4317]                   # or:
//	  dns: {hostname: gateways.tailsift.svc, port: 4317, interval: 5s, server: ""}
//
// Config is that block and its Validate; a Watcher resolves it to a sorted
// list of "host:port" members and tells its subscriber every time the list
// changes. Build a ring (internal/ring) from each list it hands out.
package membership // import "github.com/tailsift/tailsift/internal/membership"

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode"

	"go.opentelemetry.io/collector/config/configoptional"
)

// Config is the members block: exactly one of static and dns.
type Config struct {
	// Static lists the members as host:port.
	Static []string `mapstructure:"static"`
	// DNS resolves the members from a hostname: one member per A or AAAA
	// address, each with Port. A Kubernetes headless Service is this case.
	DNS configoptional.Optional[DNSConfig] `mapstructure:"dns"`
}

// DNSConfig is the members block's dns form.
type DNSConfig struct {
	// Hostname is looked up for A and AAAA records: a DNS name (letters,
	// digits, hyphens and underscores; a trailing dot makes it absolute) or
	// an IP address.
	Hostname string `mapstructure:"hostname"`
	// Port is the port every resolved address listens on.
	Port int `mapstructure:"port"`
	// Interval is the time between two lookups.
	Interval time.Duration `mapstructure:"interval"`
	// Timeout bounds one lookup.
	Timeout time.Duration `mapstructure:"timeout"`
	// Server, as host:port, is the DNS server to ask. Empty uses the
	// system's resolver. Either way the search list and ndots of
	// /etc/resolv.conf apply to Hostname.
	Server string `mapstructure:"server"`
}

// NewDefaultConfig returns a members block with neither form set and the dns
// form's defaults (interval 5s, timeout 1s) for when it is set.
func NewDefaultConfig() Config {
	return Config{DNS: configoptional.Default(DNSConfig{Interval: 5 * time.Second, Timeout: time.Second})}
}

// Validate checks that exactly one form is set and that static lists
// host:port addresses.
func (c *Config) Validate() error {
	hasDNS := c.DNS.HasValue()
	switch {
	case len(c.Static) == 0 && !hasDNS:
		return errors.New("static or dns: one must be set")
	case len(c.Static) > 0 && hasDNS:
		return errors.New("static and dns: set one, not both")
	}
	for i, m := range c.Static {
		if err := ValidateHostPort(m); err != nil {
			return fmt.Errorf("static[%d]: %w", i, err)
		}
	}
	return nil
}

// minInterval is the shortest dns::interval.
const minInterval = 10 * time.Millisecond

// Validate checks the dns form.
func (c *DNSConfig) Validate() error {
	switch {
	case c.Hostname == "":
		return errors.New("hostname: must not be empty")
	case c.Port < 1 || c.Port > 65535:
		return fmt.Errorf("port: must be between 1 and 65535, got %d", c.Port)
	case c.Interval < minInterval:
		// 1ns passed, and made a watcher ask about 12 000 times a second.
		return fmt.Errorf("interval: must be at least %v, got %v", minInterval, c.Interval)
	case c.Timeout <= 0:
		return fmt.Errorf("timeout: must be positive, got %v", c.Timeout)
	}
	if err := validateHostname(c.Hostname); err != nil {
		return fmt.Errorf("hostname: %w", err)
	}
	if c.Server != "" {
		if err := ValidateHostPort(c.Server); err != nil {
			return fmt.Errorf("server: %w", err)
		}
	}
	return nil
}

// validateHostname checks that h is a name the system resolver would look
// up: an IP address, or a DNS name of at most 253 bytes (and one trailing
// dot) whose labels are 1 to 63 letters, digits, hyphens and underscores,
// neither starting nor ending with a hyphen, not all digits (RFC 1123;
// underscores for SRV-style names such as _grpc._tcp.gw.svc, which Go's
// resolver and CoreDNS accept). Go's resolver refuses any other name
// without asking ("no such host"), so a watcher given one would never find
// a member.
func validateHostname(h string) error {
	if _, err := netip.ParseAddr(h); err == nil {
		return nil
	}
	name := strings.TrimSuffix(h, ".")
	if len(name) > 253 {
		return fmt.Errorf("%q is not a DNS name: %d bytes, more than 253", h, len(name))
	}
	digits := true
	for label := range strings.SplitSeq(name, ".") {
		switch {
		case label == "":
			return fmt.Errorf("%q is not a DNS name: empty label", h)
		case len(label) > 63:
			return fmt.Errorf("%q is not a DNS name: label %q is longer than 63 bytes", h, label)
		case label[0] == '-' || label[len(label)-1] == '-':
			return fmt.Errorf("%q is not a DNS name: label %q starts or ends with a hyphen", h, label)
		}
		for _, r := range label {
			switch {
			case '0' <= r && r <= '9':
			case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', r == '-', r == '_':
				digits = false
			default:
				return fmt.Errorf("%q is not a DNS name: %q is not an ASCII letter, digit, hyphen or underscore", h, r)
			}
		}
	}
	if digits {
		return fmt.Errorf("%q is not a DNS name: all digits, and not an IP address", h)
	}
	return nil
}

// ValidateHostPort checks that s is host:port with a host and a numeric
// port; the cluster block's self uses it too.
func ValidateHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", s, err)
	}
	if host == "" {
		return fmt.Errorf("%q has no host", s)
	}
	if strings.ContainsFunc(host, unicode.IsSpace) {
		return fmt.Errorf("%q: the host has a space in it", s)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%q: port must be a number between 1 and 65535", s)
	}
	return nil
}

// Canonical writes host:port s (valid for ValidateHostPort) the one way
// every tier writes it: an IP address as its shortest form (an IPv4 address
// mapped into IPv6 as IPv4), a host name in lower case, the port without
// sign or leading zeros. The ring hashes members as written, so that one
// gateway written two ways (`[::1]:4317` by DNS, `[0:0:0:0:0:0:0:1]:4317`
// in a static list; `GW-0:4317` and `gw-0:4317`) put agents and gateways on
// different rings, a third of the traces apart.
func Canonical(s string) string {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return s
	}
	if a, err := netip.ParseAddr(host); err == nil {
		host = a.Unmap().String()
	} else {
		host = strings.ToLower(strings.TrimSuffix(host, "."))
	}
	if p, err := strconv.Atoi(port); err == nil {
		port = strconv.Itoa(p)
	}
	return net.JoinHostPort(host, port)
}
