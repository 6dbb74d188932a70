package tailsiftprocessor

import (
	"context"

	"github.com/tailsift/tailsift/internal/cluster"
)

// ingestNode hands buf, an encoded batch, to the cluster node. A batch
// heavier than the whole of buffer.max_queued_bytes is cut into pieces
// within it before the node (Buffer.IngestVia), so that what the node
// forwards of it fits the owner's queue: the owner takes forwarded spans
// in whole, counted as its whole queue. A batch with a cluster control at
// its head (another gateway's: forwarded spans, a handover and its
// decisions) goes to the node whole: the control belongs to all of it.
func (p *tailsiftProcessor) ingestNode(ctx context.Context, buf []byte) error {
	if _, _, control, _ := cluster.SplitControl(buf); control {
		_, err := p.node.Ingest(ctx, buf, nil)
		return err
	}
	_, err := p.buf.IngestVia(ctx, buf, nil, p.node.Ingest)
	return err
}
