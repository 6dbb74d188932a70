package cluster

import "context"

// The marks of a control at the head of spans sent to another gateway
// (forwarded, relayed, handed over), and what they make the node do.

// prefix is the control ahead of spans the node sends another gateway.
func (n *Node) prefix(relayed, handedOver bool) []byte {
	switch {
	case relayed && handedOver:
		return n.relayHandOver
	case relayed:
		return n.relay
	case handedOver:
		return n.handOver
	}
	return n.forward
}

// reprefix is the router's Reprefix: spans that fail over to another
// member keep their control's marks (a handover's spans are still not
// counted again there, relayed spans still stay where they land).
func (n *Node) reprefix(data []byte) []byte {
	c, _, ok, err := SplitControl(data)
	if !ok || err != nil || !c.Forwarded {
		return nil
	}
	return n.prefix(c.Relayed, c.HandedOver)
}

// downgrade is the router's Downgrade: a gateway of an older version
// refuses a control with a mark it does not know (unknown flag), and would
// lose what comes with it during an upgrade. It gets the control again in
// the form every version reads:
//   - handed-over traces marked forwarded only (the handed-over mark),
//     to be counted (RED) there a second time, as before the mark;
//   - kept decisions with their threshold only (their marks: rv, a
//     supplement), their late spans there marked with th alone, as
//     before the marks.
func downgrade(data []byte) []byte {
	c, rest, ok, err := SplitControl(data)
	if !ok || err != nil || !c.HandedOver && !c.Decisions.marked() {
		return nil
	}
	c.HandedOver = false
	if c.Decisions.marked() {
		kept := make([]Kept, len(c.Decisions.Kept))
		for i, k := range c.Decisions.Kept {
			kept[i] = Kept{ID: k.ID, Threshold: k.Threshold}
		}
		c.Decisions.Kept = kept
	}
	return append(AppendControl(nil, &c), rest...)
}

// ingestFunc is how the buffer takes spans that came with c: those handed
// over were counted (RED) by the gateway that first buffered them; those
// forwarded were acknowledged by the gateway that forwarded them, which
// drops them if they are refused (its router takes INVALID_ARGUMENT as
// permanent), so they are not refused for their size.
func (n *Node) ingestFunc(c *Control) func(ctx context.Context, buf []byte, done func()) (int, error) {
	switch {
	case c.HandedOver:
		return n.buf.IngestAgain
	case c.Forwarded:
		return n.buf.IngestForwarded
	}
	return n.buf.IngestOwned
}
