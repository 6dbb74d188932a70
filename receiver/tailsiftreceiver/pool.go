package tailsiftreceiver

import "github.com/tailsift/tailsift/internal/bufpool"

// recvPool is the gRPC server's buffer pool: buffers in power-of-two tiers,
// handed out without being cleared (see bufpool).
type recvPool = bufpool.Pool
