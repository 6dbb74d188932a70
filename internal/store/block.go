package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// A segment file is a sequence of blocks. A block is a header and the
// compression of whole records:
//
//	u32 magic | u32 compressed length | u32 CRC-32C of the compressed bytes |
//	u32 raw length | u64 highest record sequence | i64 newest record time
//
// The magic says the compression: a store reads every one, whatever it
// writes. The raw length is the records' length (for s2col, not the
// columnar form's).
const (
	magicZstd   = 0x31425354 // "TSB1"
	magicS2     = 0x32425354 // "TSB2"
	magicS2Col  = 0x33425354 // "TSB3": s2 of the records' columnar form (colblock.go)
	blockHeader = 32
)

// Compressions of blocks.
const (
	CompressionZstd  = "zstd"
	CompressionS2    = "s2"
	CompressionS2Col = "s2col"
)

// blockKind is a block's compression.
type blockKind uint8

const (
	blockZstd blockKind = iota
	blockS2
	blockS2Col
)

var blockMagic = [...]uint32{blockZstd: magicZstd, blockS2: magicS2, blockS2Col: magicS2Col}

// kindOf is the block kind a compression writes.
func kindOf(compression string) blockKind {
	switch compression {
	case CompressionS2:
		return blockS2
	case CompressionS2Col:
		return blockS2Col
	}
	return blockZstd
}

type blockInfo struct {
	kind            blockKind
	compLen, rawLen int
	crc             uint32
	maxSeq          uint64
	maxTime         int64
}

// appendBlockHeader appends the header of a block.
func appendBlockHeader(dst []byte, b blockInfo) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, blockMagic[b.kind])
	dst = binary.LittleEndian.AppendUint32(dst, uint32(b.compLen))
	dst = binary.LittleEndian.AppendUint32(dst, b.crc)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(b.rawLen))
	dst = binary.LittleEndian.AppendUint64(dst, b.maxSeq)
	return binary.LittleEndian.AppendUint64(dst, uint64(b.maxTime))
}

// parseBlockHeader reads a block header; it checks the magic and lengths,
// not the checksum.
func parseBlockHeader(buf []byte) (blockInfo, error) {
	if len(buf) < blockHeader {
		return blockInfo{}, errTruncated
	}
	magic := binary.LittleEndian.Uint32(buf)
	kind := slices.Index(blockMagic[:], magic)
	if kind < 0 {
		return blockInfo{}, errors.New("bad block magic")
	}
	b := blockInfo{
		kind:    blockKind(kind),
		compLen: int(binary.LittleEndian.Uint32(buf[4:])),
		crc:     binary.LittleEndian.Uint32(buf[8:]),
		rawLen:  int(binary.LittleEndian.Uint32(buf[12:])),
		maxSeq:  binary.LittleEndian.Uint64(buf[16:]),
		maxTime: int64(binary.LittleEndian.Uint64(buf[24:])),
	}
	if b.compLen <= 0 || b.compLen > maxRecord || b.rawLen <= 0 || b.rawLen > 4*maxRecord {
		return blockInfo{}, fmt.Errorf("bad block lengths %d/%d", b.compLen, b.rawLen)
	}
	return b, nil
}

// codec compresses and decompresses blocks. Its encoders are used by the
// writer goroutine only; the decoders are safe for concurrent use.
type codec struct {
	kind blockKind // the blocks it writes
	enc  *zstd.Encoder
	dec  *zstd.Decoder
	col  colEnc // s2col's transform
	cols []byte // its output
}

func newCodec(compression string) (*codec, error) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1),
		zstd.WithLowerEncoderMem(true), zstd.WithNoEntropyCompression(true),
		// The block holds its own CRC-32C: no second checksum in the frame.
		zstd.WithEncoderCRC(false))
	if err != nil {
		return nil, fmt.Errorf("create zstd encoder: %w", err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(2), zstd.WithDecoderMaxMemory(4*maxRecord))
	if err != nil {
		return nil, fmt.Errorf("create zstd decoder: %w", err)
	}
	return &codec{kind: kindOf(compression), enc: enc, dec: dec}, nil
}

func (c *codec) close() {
	_ = c.enc.Close()
	c.dec.Close()
}

// seal appends a block holding raw (whole records) to dst.
func (c *codec) seal(dst, raw []byte, maxSeq uint64, maxTime int64) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, blockHeader)...)
	switch c.kind {
	case blockS2, blockS2Col:
		in := raw
		if c.kind == blockS2Col {
			c.cols = c.col.encode(c.cols[:0], raw)
			in = c.cols
		}
		dst = slices.Grow(dst, s2.MaxEncodedLen(len(in)))
		n := len(s2.Encode(dst[len(dst):cap(dst)], in))
		dst = dst[:len(dst)+n]
		if cap(c.cols) > maxKeptColBuf {
			c.cols = nil
		}
	default:
		dst = c.enc.EncodeAll(raw, dst)
	}
	comp := dst[start+blockHeader:]
	appendBlockHeader(dst[start:start], blockInfo{
		kind: c.kind, compLen: len(comp), rawLen: len(raw), crc: crc32.Checksum(comp, castagnoli),
		maxSeq: maxSeq, maxTime: maxTime,
	})
	return dst
}

// readBlock checks and decompresses the block at the start of data into
// raw (its header, then its compressed bytes).
func (c *codec) readBlock(data, raw []byte) (blockInfo, []byte, error) {
	b, err := parseBlockHeader(data)
	if err != nil {
		return b, raw, err
	}
	if blockHeader+b.compLen > len(data) {
		return b, raw, errTruncated
	}
	raw, err = c.open(raw, b, data[blockHeader:blockHeader+b.compLen])
	return b, raw, err
}

// open checks and decompresses a block's compressed bytes into dst.
func (c *codec) open(dst []byte, b blockInfo, comp []byte) ([]byte, error) {
	if crc32.Checksum(comp, castagnoli) != b.crc {
		return nil, errors.New("block checksum mismatch")
	}
	var out []byte
	var err error
	switch b.kind {
	case blockS2:
		n, lerr := s2.DecodedLen(comp)
		if lerr != nil {
			return nil, fmt.Errorf("s2 block: %w", lerr)
		}
		if n != b.rawLen {
			return nil, fmt.Errorf("s2 block of %d bytes, header says %d", n, b.rawLen)
		}
		out, err = s2.Decode(slices.Grow(dst[:0], b.rawLen)[:b.rawLen], comp)
	case blockS2Col:
		out, err = openS2Col(dst, b.rawLen, comp)
	default:
		out, err = c.dec.DecodeAll(comp, dst[:0])
	}
	if err != nil {
		return nil, fmt.Errorf("decompress block: %w", err)
	}
	if len(out) != b.rawLen {
		return nil, fmt.Errorf("block decompressed to %d bytes, header says %d", len(out), b.rawLen)
	}
	return out, nil
}

// maxKeptColBuf is the largest buffer of a columnar form kept for reuse
// (the writer's, colBufs'): one block's spike does not stay held.
const maxKeptColBuf = 8 << 20

// colBufs holds the columnar forms openS2Col decompresses.
var colBufs = sync.Pool{New: func() any { return new([]byte) }}

// openS2Col decompresses an s2col block's columnar form and rebuilds its
// rawLen bytes of records into dst.
func openS2Col(dst []byte, rawLen int, comp []byte) ([]byte, error) {
	n, err := s2.DecodedLen(comp)
	if err != nil {
		return nil, fmt.Errorf("s2col block: %w", err)
	}
	// The columnar form is the records, a flag byte per request and
	// one per trace ID, and its header: never twice their length.
	if n > 2*rawLen+colHeader {
		return nil, fmt.Errorf("s2col block of %d bytes for %d bytes of records", n, rawLen)
	}
	buf := colBufs.Get().(*[]byte)
	defer colBufs.Put(buf)
	cols, err := s2.Decode(slices.Grow((*buf)[:0], n)[:n], comp)
	if err != nil {
		return nil, err
	}
	if cap(cols) <= maxKeptColBuf {
		*buf = cols
	}
	return colDecode(slices.Grow(dst[:0], rawLen), cols, rawLen)
}
