package membership

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
)

func TestConfigUnmarshal(t *testing.T) {
	tests := []struct {
		name string
		yaml map[string]any
		want func(*Config)
	}{
		{
			name: "static",
			yaml: map[string]any{"static": []any{"10.0.0.5:4317", "10.0.0.6:4317"}},
			want: func(c *Config) { c.Static = []string{"10.0.0.5:4317", "10.0.0.6:4317"} },
		},
		{
			name: "dns with defaults",
			yaml: map[string]any{"dns": map[string]any{"hostname": "gw.svc", "port": 4317}},
			want: func(c *Config) {
				d := c.DNS.GetOrInsertDefault()
				d.Hostname, d.Port = "gw.svc", 4317
			},
		},
		{
			name: "dns with everything",
			yaml: map[string]any{"dns": map[string]any{"hostname": "gw.svc", "port": 4317, "interval": "2s", "timeout": "300ms", "server": "127.0.0.1:53"}},
			want: func(c *Config) {
				d := c.DNS.GetOrInsertDefault()
				*d = DNSConfig{Hostname: "gw.svc", Port: 4317, Interval: 2 * time.Second, Timeout: 300 * time.Millisecond, Server: "127.0.0.1:53"}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := NewDefaultConfig()
			require.NoError(t, confmap.NewFromStringMap(tt.yaml).Unmarshal(&got))
			require.NoError(t, confmap.Validate(&got))
			want := NewDefaultConfig()
			tt.want(&want)
			assert.Equal(t, want, got)
		})
	}
}

func TestConfigInvalid(t *testing.T) {
	tests := []struct {
		name string
		yaml map[string]any
		err  string
	}{
		{name: "empty", yaml: map[string]any{}, err: "static or dns: one must be set"},
		{
			name: "both",
			yaml: map[string]any{"static": []any{"a:1"}, "dns": map[string]any{"hostname": "gw", "port": 1}},
			err:  "static and dns: set one, not both",
		},
		{name: "no port", yaml: map[string]any{"static": []any{"a:1", "b"}}, err: `static[1]: "b" is not host:port: address b: missing port in address`},
		{name: "bad port", yaml: map[string]any{"static": []any{"a:http"}}, err: `static[0]: "a:http": port must be a number between 1 and 65535`},
		{name: "no host", yaml: map[string]any{"static": []any{":4317"}}, err: `static[0]: ":4317" has no host`},
		{name: "dns without hostname", yaml: map[string]any{"dns": map[string]any{"port": 4317}}, err: "dns: hostname: must not be empty"},
		{name: "dns without port", yaml: map[string]any{"dns": map[string]any{"hostname": "gw"}}, err: "dns: port: must be between 1 and 65535, got 0"},
		{
			name: "dns zero interval",
			yaml: map[string]any{"dns": map[string]any{"hostname": "gw", "port": 1, "interval": "0s"}},
			err:  "dns: interval: must be at least 10ms, got 0s",
		},
		{
			name: "dns zero timeout",
			yaml: map[string]any{"dns": map[string]any{"hostname": "gw", "port": 1, "timeout": "0s"}},
			err:  "dns: timeout: must be positive, got 0s",
		},
		{
			name: "dns bad server",
			yaml: map[string]any{"dns": map[string]any{"hostname": "gw", "port": 1, "server": "10.0.0.1"}},
			err:  `dns: server: "10.0.0.1" is not host:port: address 10.0.0.1: missing port in address`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := NewDefaultConfig()
			require.NoError(t, confmap.NewFromStringMap(tt.yaml).Unmarshal(&cfg))
			err := confmap.Validate(&cfg)
			require.Error(t, err)
			assert.Equal(t, tt.err, err.Error())
		})
	}
}

// TestDNSHostnameChecked: dns::hostname was only checked for being empty,
// so a name no resolver asks for ("gw svc", "a..b", a label of 64 bytes, a
// name of 254) passed validation, and the collector started to fail every
// lookup with "no such host" and never find a member. Such a name is now
// refused at validation, naming the key. Names are checked as the system
// resolver (Go's) checks them: RFC 1123 labels of letters, digits and
// hyphens, plus underscores (SRV-style names such as _grpc._tcp.gw.svc), one
// trailing dot (an absolute name), or an IP address.
func TestDNSHostnameChecked(t *testing.T) {
	label63 := strings.Repeat("a", 63)
	name253 := strings.Repeat(label63+".", 3) + strings.Repeat("b", 61) // 253 bytes
	require.Len(t, name253, 253)
	valid := []string{
		"gw", "tailsift-gateway", "gateways.tailsift.svc.cluster.local", "gateways.tailsift.svc.cluster.local.",
		"GW-0.Svc", "_grpc._tcp.gw.svc", "gw_1.svc", "0gw.svc", "10-0-0-5.svc",
		label63 + ".svc", name253, name253 + ".", "127.0.0.7", "::1", "2001:db8::1",
	}
	for _, h := range valid {
		cfg := NewDefaultConfig()
		require.NoError(t, confmap.NewFromStringMap(map[string]any{"dns": map[string]any{"hostname": h, "port": 4317}}).Unmarshal(&cfg))
		assert.NoError(t, confmap.Validate(&cfg), "%q", h)
	}
	invalid := []struct{ name, host, err string }{
		{"space", "gw svc", `dns: hostname: "gw svc" is not a DNS name: ' ' is not an ASCII letter, digit, hyphen or underscore`},
		{"leading space", " gw.svc", `dns: hostname: " gw.svc" is not a DNS name: ' ' is not an ASCII letter, digit, hyphen or underscore`},
		{"empty label", "a..b", `dns: hostname: "a..b" is not a DNS name: empty label`},
		{"leading dot", ".gw.svc", `dns: hostname: ".gw.svc" is not a DNS name: empty label`},
		{"root", ".", `dns: hostname: "." is not a DNS name: empty label`},
		{"two trailing dots", "gw.svc..", `dns: hostname: "gw.svc.." is not a DNS name: empty label`},
		{"long label", label63 + "a.svc", `dns: hostname: "` + label63 + `a.svc" is not a DNS name: label "` + label63 + `a" is longer than 63 bytes`},
		{"long name", name253 + "b", `dns: hostname: "` + name253 + `b" is not a DNS name: 254 bytes, more than 253`},
		{"leading hyphen", "-gw.svc", `dns: hostname: "-gw.svc" is not a DNS name: label "-gw" starts or ends with a hyphen`},
		{"trailing hyphen", "gw-.svc", `dns: hostname: "gw-.svc" is not a DNS name: label "gw-" starts or ends with a hyphen`},
		{"url", "http://gw.svc", `dns: hostname: "http://gw.svc" is not a DNS name: ':' is not an ASCII letter, digit, hyphen or underscore`},
		{"host:port", "gw.svc:4317", `dns: hostname: "gw.svc:4317" is not a DNS name: ':' is not an ASCII letter, digit, hyphen or underscore`},
		{"all digits", "1.2.3", `dns: hostname: "1.2.3" is not a DNS name: all digits, and not an IP address`},
		{"not ASCII", "gâteway.svc", `dns: hostname: "gâteway.svc" is not a DNS name: 'â' is not an ASCII letter, digit, hyphen or underscore`},
	}
	for _, tc := range invalid {
		t.Run(tc.name, func(t *testing.T) {
			cfg := NewDefaultConfig()
			require.NoError(t, confmap.NewFromStringMap(map[string]any{"dns": map[string]any{"hostname": tc.host, "port": 4317}}).Unmarshal(&cfg))
			err := confmap.Validate(&cfg)
			require.Error(t, err)
			assert.Equal(t, tc.err, err.Error())
		})
	}
}
