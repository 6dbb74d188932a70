package store

import (
	"encoding/binary"
	"errors"

	"google.golang.org/protobuf/encoding/protowire"
)

// The inverse of the columnar transform (colblock.go): the records back
// from the streams, by the rules the forward walk follows.

var errColumnar = errors.New("bad columnar block")

// colDecode appends the records src (the columnar form of rawLen bytes of
// records) holds to dst. It never panics on any input.
func colDecode(dst, src []byte, rawLen int) ([]byte, error) {
	var d colDec
	return d.decode(dst, src, rawLen)
}

// colDec is the inverse transform's state. It walks the records it
// rebuilds by the rules colEnc's walk follows, written once more as one
// generic function (msg), so that the round-trip tests check both.
type colDec struct {
	s, t, v, i []byte
	out        []byte
	prevTID    [16]byte
	prevStart  uint64
}

func (d *colDec) decode(dst, src []byte, rawLen int) ([]byte, error) {
	if len(src) < colHeader || rawLen < 0 {
		return nil, errColumnar
	}
	ls := uint64(binary.LittleEndian.Uint32(src))
	lt := uint64(binary.LittleEndian.Uint32(src[4:]))
	lv := uint64(binary.LittleEndian.Uint32(src[8:]))
	src = src[colHeader:]
	if ls+lt+lv > uint64(len(src)) {
		return nil, errColumnar
	}
	d.s, src = src[:ls], src[ls:]
	d.t, src = src[:lt], src[lt:]
	d.v, d.i = src[:lv], src[lv:]
	d.out = dst
	base := len(dst)
	for len(d.out)-base < rawLen {
		left := rawLen - (len(d.out) - base)
		if left < frameHeader+payloadHeader {
			if !d.copyFrom(&d.s, left) {
				return nil, errColumnar
			}
			break
		}
		if len(d.s) < frameHeader+payloadHeader {
			return nil, errColumnar
		}
		n := int(binary.LittleEndian.Uint32(d.s))
		if n < payloadHeader || n > left-frameHeader {
			if !d.copyFrom(&d.s, left) {
				return nil, errColumnar
			}
			break
		}
		kind := d.s[frameHeader]
		d.copyFrom(&d.s, frameHeader+payloadHeader)
		body := n - payloadHeader
		if kind != kindRequest && kind != kindBlockRequest {
			if !d.copyFrom(&d.s, body) {
				return nil, errColumnar
			}
			continue
		}
		if len(d.s) == 0 {
			return nil, errColumnar
		}
		flag := d.s[0]
		d.s = d.s[1:]
		switch flag {
		case 0:
			if !d.copyFrom(&d.s, body) {
				return nil, errColumnar
			}
		case 1:
			d.prevTID, d.prevStart = [16]byte{}, 0
			if !d.msg(body, colRequest) {
				return nil, errColumnar
			}
		default:
			return nil, errColumnar
		}
	}
	if len(d.s)+len(d.t)+len(d.v)+len(d.i) != 0 || len(d.out)-base != rawLen {
		return nil, errColumnar
	}
	return d.out, nil
}

// varint moves a varint from the stream *p to the output.
func (d *colDec) varint(p *[]byte) (uint64, bool) {
	if b := *p; len(b) > 0 && b[0] < 0x80 {
		d.out, *p = append(d.out, b[0]), b[1:]
		return uint64(b[0]), true
	}
	v, n := protowire.ConsumeVarint(*p)
	if n < 0 {
		return 0, false
	}
	d.out, *p = append(d.out, (*p)[:n]...), (*p)[n:]
	return v, true
}

// copyFrom moves n bytes from the stream *p to the output.
func (d *colDec) copyFrom(p *[]byte, n int) bool {
	if n < 0 || n > len(*p) {
		return false
	}
	d.out, *p = append(d.out, (*p)[:n]...), (*p)[n:]
	return true
}

// msg rebuilds a message of size bytes at level.
func (d *colDec) msg(size, level int) bool {
	end := len(d.out) + size
	for len(d.out) < end {
		tag, ok := d.varint(&d.s)
		if !ok || tag>>3 == 0 {
			return false
		}
		num, typ := tag>>3, protowire.Type(tag&7)
		val := &d.s // where a scalar's payload comes from
		if level == colAny {
			val = &d.v
		}
		switch typ {
		case protowire.VarintType:
			if _, ok := d.varint(val); !ok {
				return false
			}
		case protowire.Fixed64Type:
			if level == colSpan && (num == 7 || num == 8) {
				z, n := binary.Uvarint(d.t)
				if n <= 0 {
					return false
				}
				d.t = d.t[n:]
				v := unzigzag(z) + d.prevStart
				if num == 7 {
					d.prevStart = v
				}
				d.out = binary.LittleEndian.AppendUint64(d.out, v)
			} else if !d.copyFrom(val, 8) {
				return false
			}
		case protowire.Fixed32Type:
			if !d.copyFrom(val, 4) {
				return false
			}
		case protowire.BytesType:
			l, ok := d.varint(&d.s)
			if !ok || l > uint64(end-len(d.out)) {
				return false
			}
			switch {
			case colDescend(level, num):
				if !d.msg(int(l), level+1) {
					return false
				}
			case level == colSpan && num == 1 && l == 16:
				if len(d.s) == 0 {
					return false
				}
				flag := d.s[0]
				d.s = d.s[1:]
				switch flag {
				case 0:
				case 1:
					if len(d.i) < 16 {
						return false
					}
					d.prevTID, d.i = [16]byte(d.i), d.i[16:]
				default:
					return false
				}
				d.out = append(d.out, d.prevTID[:]...)
			case level == colSpan && (num == 2 || num == 4) && l == 8:
				if !d.copyFrom(&d.i, 8) {
					return false
				}
			case level == colSpan || level == colKV && num != 1 || level == colAny:
				if !d.copyFrom(&d.v, int(l)) {
					return false
				}
			default:
				if !d.copyFrom(&d.s, int(l)) {
					return false
				}
			}
		default:
			return false
		}
	}
	return len(d.out) == end
}
