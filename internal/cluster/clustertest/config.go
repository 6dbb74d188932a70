// Package clustertest has helpers for tests of the cluster block.
package clustertest // import "github.com/tailsift/tailsift/internal/cluster/clustertest"

import (
	"time"

	"go.opentelemetry.io/collector/config/configoptional"

	"github.com/tailsift/tailsift/internal/cluster"
)

// CustomConfig is the cluster block of the processor's and the receiver's
// testdata/config.yaml (tailsift/custom), over the defaults:
//
//	cluster:
//	  self: 127.0.0.11:4317
//	  members: {static: [127.0.0.11:4317, 127.0.0.12:4317]}
//	  drain: 5s
//	  handover: {settle: 2s, bytes_per_second: 1048576}
//	  grpc: {tls: {insecure: true}}
func CustomConfig() configoptional.Optional[cluster.Config] {
	c := cluster.NewDefaultConfig()
	c.Self = "127.0.0.11:4317"
	c.Members.Static = []string{"127.0.0.11:4317", "127.0.0.12:4317"}
	c.Drain = 5 * time.Second
	c.Handover.Settle = 2 * time.Second
	c.Handover.BytesPerSecond = 1 << 20
	c.GRPC.TLS.Insecure = true
	opt := configoptional.Default(c)
	opt.GetOrInsertDefault()
	return opt
}
