package membership

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/tailsift/tailsift/internal/clock"
	"github.com/tailsift/tailsift/internal/clock/clocktest"
	"github.com/tailsift/tailsift/internal/membership/membershiptest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func dnsConfig(server string) Config {
	cfg := NewDefaultConfig()
	d := cfg.DNS.GetOrInsertDefault()
	d.Hostname, d.Port, d.Server, d.Interval = "gateways.tailsift.svc", 4317, server, time.Minute
	return cfg
}

// changes records what a watcher hands its subscriber.
type changes chan []string

func (c changes) notify(ms []string) { c <- ms }

func TestStaticWatcher(t *testing.T) {
	cfg := NewDefaultConfig()
	cfg.Static = []string{"10.0.0.6:4317", "10.0.0.5:4317", "10.0.0.6:4317"}
	w := NewWatcher(cfg, clock.Real{}, zap.NewNop())
	got := make(changes, 1)
	require.NoError(t, w.Start(t.Context(), got.notify))
	assert.Equal(t, []string{"10.0.0.5:4317", "10.0.0.6:4317"}, <-got)
	assert.Equal(t, []string{"10.0.0.5:4317", "10.0.0.6:4317"}, w.Members())
	require.NoError(t, w.Shutdown(t.Context()))
	require.NoError(t, w.Shutdown(t.Context()), "a second Shutdown is harmless")
}

func TestDNSWatcher(t *testing.T) {
	srv := membershiptest.StartDNS(t, "127.0.0.12", "127.0.0.11", "::1")
	fake := clocktest.NewFake(time.Unix(0, 0))
	w := NewWatcher(dnsConfig(srv.Addr), fake, zap.NewNop())
	got := make(changes, 4)
	ctx := t.Context()
	require.NoError(t, w.Start(ctx, got.notify))
	defer func() { require.NoError(t, w.Shutdown(context.Background())) }()
	require.Equal(t, []string{"127.0.0.11:4317", "127.0.0.12:4317", "[::1]:4317"}, <-got, "one member per A and AAAA address")

	t.Run("unchanged set notifies nothing", func(t *testing.T) {
		require.NoError(t, w.Refresh(ctx))
		assert.Empty(t, got)
	})
	t.Run("added member", func(t *testing.T) {
		srv.Set("127.0.0.11", "127.0.0.12", "127.0.0.13", "::1")
		require.NoError(t, w.Refresh(ctx))
		assert.Equal(t, []string{"127.0.0.11:4317", "127.0.0.12:4317", "127.0.0.13:4317", "[::1]:4317"}, <-got)
	})
	t.Run("empty answer keeps the last good set", func(t *testing.T) {
		srv.Set()
		require.EqualError(t, w.Refresh(ctx), "no member found")
		srv.SetRcode(dns.RcodeNameError)
		require.EqualError(t, w.Refresh(ctx), "no member found")
		assert.Empty(t, got)
		assert.Len(t, w.Members(), 4)
	})
	t.Run("failed lookup keeps the last good set", func(t *testing.T) {
		srv.SetRcode(dns.RcodeServerFailure, "127.0.0.11")
		err := w.Refresh(ctx)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "SERVFAIL")
		assert.Empty(t, got)
		assert.Len(t, w.Members(), 4)
	})
	t.Run("the interval triggers a lookup", func(t *testing.T) {
		srv.Set("127.0.0.11")
		fake.Advance(time.Minute)
		select {
		case ms := <-got:
			assert.Equal(t, []string{"127.0.0.11:4317"}, ms)
		case <-time.After(10 * time.Second):
			t.Fatal("no lookup after the interval passed")
		}
	})
}

func TestDNSServerDown(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := pc.LocalAddr().String()
	require.NoError(t, pc.Close()) // nothing answers there
	cfg := dnsConfig(addr)
	cfg.DNS.Get().Timeout = 200 * time.Millisecond
	w := NewWatcher(cfg, clocktest.NewFake(time.Unix(0, 0)), zap.NewNop())
	got := make(changes, 1)
	require.NoError(t, w.Start(t.Context(), got.notify), "a failed first lookup is not fatal")
	assert.Empty(t, got)
	assert.Nil(t, w.Members())
	require.NoError(t, w.Shutdown(t.Context()))
}

func TestSystemResolver(t *testing.T) {
	cfg := NewDefaultConfig()
	d := cfg.DNS.GetOrInsertDefault()
	d.Hostname, d.Port = "127.0.0.7", 4317 // an address literal resolves without asking anyone
	members, err := lookupDNS(t.Context(), d)
	require.NoError(t, err)
	assert.Equal(t, []string{"127.0.0.7:4317"}, members)
}
