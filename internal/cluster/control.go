package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// ControlKey is the resource attribute that makes a ResourceSpans a control
// message between gateways. A request whose first ResourceSpans has no
// ScopeSpans and a resource whose only attribute is ControlKey carries a
// control: the gateway that receives it strips it before buffering (it is
// never exported), and it applies to the whole request. In-band, so that it
// reaches the tailsift receiver and, through the otlp receiver, the tailsift
// processor alike; the otlp receiver passes an empty ResourceSpans through
// unchanged.
const ControlKey = "tailsift.cluster"

// controlVersion is the first byte of a control payload.
const controlVersion = 1

const (
	flagForwarded = 1 << iota
	flagRelayed
	flagDemand
	flagHandedOver
	// flagMarks: each kept decision is followed by its mark word (markRV,
	// markSupplement). Set only when some kept decision has a mark, so
	// that decisions without one go in the form every version reads.
	flagMarks
)

// A kept decision's mark word: the randomness its spans carry as rv (low
// 56 bits) with markRV, and its supplement from markSupplementShift.
const (
	markRV              = 1 << 56
	markSupplementShift = 57
	markSupplementMask  = 3 << markSupplementShift
	maxSupplement       = 2 // sampling.SupplementRetro
)

// maxFrom bounds Demand.From: a host:port.
const maxFrom = 255

// maxThreshold bounds an OpenTelemetry threshold: 56 bits.
const maxThreshold = 1 << 56

const (
	keptSize    = 16 + 8 // trace ID, threshold
	markSize    = 8      // a kept decision's mark word, with flagMarks
	droppedSize = 8      // trace ID hash
)

// Control is what one gateway tells another in a request.
type Control struct {
	// Forwarded marks the request's spans as sent by a gateway (misrouted
	// spans, or a handover): the receiving gateway keeps them, it never
	// forwards them again.
	Forwarded bool
	// HandedOver marks spans a gateway had buffered and hands over (a
	// handover after a ring change or at shutdown), as opposed to spans
	// it forwarded as they came: the gateway that first buffered them
	// counted them in its RED metrics, and the receiving gateway does not
	// count them again. It implies Forwarded.
	HandedOver bool
	// Relayed marks what a draining gateway passed on (forwarded spans,
	// handed-over traces and decisions that reached it after it began to
	// drain): the receiving gateway keeps it even when it drains too, so
	// that two draining gateways that still list each other do not pass
	// it back and forth. It implies Forwarded.
	Relayed bool
	// Decisions are decisions handed over to the receiving gateway, the
	// new owner of their traces.
	Decisions Decisions
	// Demand, when set, is the sender's budget demand, for a budget the
	// cluster shares.
	Demand *Demand
}

// Decisions are decided traces whose owner changed.
type Decisions struct {
	// Kept are kept traces with the threshold they were kept with.
	Kept []Kept
	// Dropped are the hashes (ring.Hash) of dropped traces, which is all a
	// gateway remembers of them.
	Dropped []uint64
}

// Len is the number of decisions.
func (d *Decisions) Len() int { return len(d.Kept) + len(d.Dropped) }

// Kept is a kept trace's decision: how its spans were marked, so that its
// late spans at the new owner are marked the same (docs/policies/counts.md).
type Kept struct {
	ID        [16]byte
	Threshold uint64 // the unsigned OpenTelemetry threshold (th)
	// RV, with HasRV, is the randomness (56 bits) the trace was kept on
	// when a policy derived it (a hash_salt, not's reflection, the
	// union's R*): its spans carry it as an explicit rv next to th.
	RV    uint64
	HasRV bool
	// Supplement, when not 0, is the sampling.Supplement its spans carry
	// instead of th (a rescue, a retroactive keep: they count 0).
	Supplement uint8
}

// marked reports whether k has a mark besides its threshold.
func (k *Kept) marked() bool { return k.HasRV || k.Supplement != 0 }

// marked reports whether some kept decision of d has a mark.
func (d *Decisions) marked() bool {
	for i := range d.Kept {
		if d.Kept[i].marked() {
			return true
		}
	}
	return false
}

// word returns k's mark word.
func (k *Kept) word() uint64 {
	w := uint64(k.Supplement) << markSupplementShift
	if k.HasRV {
		w |= markRV | k.RV&(markRV-1)
	}
	return w
}

// setWord sets k's mark from word w.
func (k *Kept) setWord(w uint64) error {
	if w>>(markSupplementShift+2) != 0 || (w>>markSupplementShift)&3 > maxSupplement {
		return fmt.Errorf("kept mark %#x out of range", w)
	}
	if w&markRV == 0 && w&(markRV-1) != 0 {
		return fmt.Errorf("kept mark %#x: randomness without its flag", w)
	}
	k.Supplement = uint8((w & markSupplementMask) >> markSupplementShift)
	k.HasRV, k.RV = w&markRV != 0, w&(markRV-1)
	return nil
}

// AppendControl appends c to dst as a TracesData.resource_spans field, to be
// the first of a request.
func AppendControl(dst []byte, c *Control) []byte {
	marks := c.Decisions.marked()
	perKept := keptSize
	if marks {
		perKept += markSize
	}
	payload := make([]byte, 0, 2+2*binary.MaxVarintLen64+len(c.Decisions.Kept)*perKept+len(c.Decisions.Dropped)*droppedSize)
	var flags byte
	if c.Forwarded || c.Relayed || c.HandedOver {
		flags |= flagForwarded
	}
	if c.HandedOver {
		flags |= flagHandedOver
	}
	if c.Relayed {
		flags |= flagRelayed
	}
	if c.Demand != nil {
		flags |= flagDemand
	}
	if marks {
		flags |= flagMarks
	}
	payload = append(payload, controlVersion, flags)
	if d := c.Demand; d != nil {
		payload = binary.AppendUvarint(payload, uint64(len(d.From)))
		payload = append(payload, d.From...)
		payload = binary.LittleEndian.AppendUint64(payload, math.Float64bits(d.PerSecond))
	}
	payload = binary.AppendUvarint(payload, uint64(len(c.Decisions.Kept)))
	for _, k := range c.Decisions.Kept {
		payload = append(payload, k.ID[:]...)
		payload = binary.LittleEndian.AppendUint64(payload, k.Threshold)
		if marks {
			payload = binary.LittleEndian.AppendUint64(payload, k.word())
		}
	}
	payload = binary.AppendUvarint(payload, uint64(len(c.Decisions.Dropped)))
	for _, h := range c.Decisions.Dropped {
		payload = binary.LittleEndian.AppendUint64(payload, h)
	}
	anyValue := protowire.AppendBytes(protowire.AppendTag(nil, 7, protowire.BytesType), payload)
	kv := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), ControlKey)
	kv = protowire.AppendBytes(protowire.AppendTag(kv, 2, protowire.BytesType), anyValue)
	resource := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), kv)
	rs := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), resource)
	dst = protowire.AppendTag(dst, 1, protowire.BytesType)
	return protowire.AppendBytes(dst, rs)
}

// errControl is wrapped by SplitControl's errors.
var errControl = errors.New("malformed tailsift.cluster control")

// SplitControl reads the control at the head of buf, an encoded TracesData or
// ExportTraceServiceRequest. ok is false, and rest is buf, when buf does not
// start with one. Otherwise rest is buf without it. A control whose payload
// is malformed is an error: nothing of buf should be taken then.
func SplitControl(buf []byte) (c Control, rest []byte, ok bool, err error) {
	num, typ, n := protowire.ConsumeTag(buf)
	if n < 0 || num != 1 || typ != protowire.BytesType {
		return c, buf, false, nil
	}
	rs, m := protowire.ConsumeBytes(buf[n:])
	if m < 0 {
		return c, buf, false, nil // the scan reports it
	}
	payload, ok := controlPayload(rs)
	if !ok {
		return c, buf, false, nil
	}
	if err := c.decode(payload); err != nil {
		return Control{}, buf, true, fmt.Errorf("%w: %w", errControl, err)
	}
	return c, buf[n+m:], true, nil
}

// controlPayload returns the payload of rs when rs, an encoded
// ResourceSpans, is a control: nothing but a resource whose only attribute
// is ControlKey, with a bytes value.
func controlPayload(rs []byte) ([]byte, bool) {
	resource, ok := onlyField(rs, 1)
	if !ok {
		return nil, false
	}
	kv, ok := onlyField(resource, 1)
	if !ok {
		return nil, false
	}
	var key, value []byte
	var keys, values int
	for len(kv) > 0 {
		num, typ, n := protowire.ConsumeTag(kv)
		if n < 0 || typ != protowire.BytesType {
			return nil, false
		}
		v, m := protowire.ConsumeBytes(kv[n:])
		if m < 0 {
			return nil, false
		}
		switch num {
		case 1:
			key, keys = v, keys+1
		case 2:
			value, values = v, values+1
		default:
			return nil, false
		}
		kv = kv[n+m:]
	}
	if keys != 1 || values != 1 || string(key) != ControlKey {
		return nil, false
	}
	return onlyField(value, 7)
}

// onlyField returns the value of msg's field num, length-delimited, when it
// is msg's one and only field.
func onlyField(msg []byte, num protowire.Number) ([]byte, bool) {
	got, typ, n := protowire.ConsumeTag(msg)
	if n < 0 || got != num || typ != protowire.BytesType {
		return nil, false
	}
	v, m := protowire.ConsumeBytes(msg[n:])
	if m < 0 || n+m != len(msg) {
		return nil, false
	}
	return v, true
}

func (c *Control) decode(p []byte) error {
	if len(p) < 2 {
		return errors.New("payload too short")
	}
	if p[0] != controlVersion {
		return fmt.Errorf("version %d, want %d", p[0], controlVersion)
	}
	if p[1]&^(flagForwarded|flagRelayed|flagDemand|flagHandedOver|flagMarks) != 0 {
		return fmt.Errorf("unknown flags %#x", p[1])
	}
	c.Forwarded = p[1]&flagForwarded != 0
	c.Relayed = p[1]&flagRelayed != 0
	c.HandedOver = p[1]&flagHandedOver != 0
	if c.Relayed && !c.Forwarded {
		return errors.New("relayed without forwarded")
	}
	if c.HandedOver && !c.Forwarded {
		return errors.New("handed over without forwarded")
	}
	hasDemand := p[1]&flagDemand != 0
	perKept := uint64(keptSize)
	if p[1]&flagMarks != 0 {
		perKept += markSize
	}
	p = p[2:]
	if hasDemand {
		var err error
		if p, err = c.decodeDemand(p); err != nil {
			return err
		}
	}
	nKept, n := binary.Uvarint(p)
	if n <= 0 || nKept > uint64(len(p)-n)/perKept {
		return errors.New("bad kept count")
	}
	p = p[n:]
	if nKept > 0 {
		c.Decisions.Kept = make([]Kept, nKept)
		for i := range c.Decisions.Kept {
			k := &c.Decisions.Kept[i]
			copy(k.ID[:], p)
			k.Threshold = binary.LittleEndian.Uint64(p[16:])
			if k.Threshold >= maxThreshold {
				return fmt.Errorf("kept threshold %#x out of range", k.Threshold)
			}
			if perKept > keptSize {
				if err := k.setWord(binary.LittleEndian.Uint64(p[keptSize:])); err != nil {
					return err
				}
			}
			p = p[perKept:]
		}
	}
	nDropped, n := binary.Uvarint(p)
	if n <= 0 || nDropped != uint64(len(p)-n)/droppedSize || uint64(len(p)-n)%droppedSize != 0 {
		return errors.New("bad dropped count")
	}
	p = p[n:]
	if nDropped > 0 {
		c.Decisions.Dropped = make([]uint64, nDropped)
		for i := range c.Decisions.Dropped {
			c.Decisions.Dropped[i] = binary.LittleEndian.Uint64(p[i*droppedSize:])
		}
	}
	return nil
}

// decodeDemand reads Demand from the head of p and returns the rest.
func (c *Control) decodeDemand(p []byte) ([]byte, error) {
	l, n := binary.Uvarint(p)
	if n <= 0 || l > maxFrom || l+8 > uint64(len(p)-n) {
		return nil, errors.New("bad demand sender")
	}
	p = p[n:]
	d := &Demand{From: string(p[:l]), PerSecond: math.Float64frombits(binary.LittleEndian.Uint64(p[l:]))}
	if d.PerSecond < 0 || math.IsNaN(d.PerSecond) || math.IsInf(d.PerSecond, 0) {
		return nil, fmt.Errorf("demand %v is not a finite number at least 0", d.PerSecond)
	}
	c.Demand = d
	return p[l+8:], nil
}
