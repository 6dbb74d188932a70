package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/klauspost/compress/zstd"
)

// A segment file is a sequence of blocks. A block is a header and the zstd
// compression of whole records:
//
//	u32 magic | u32 compressed length | u32 CRC-32C of the compressed bytes |
//	u32 raw length | u64 highest record sequence | i64 newest record time
const (
	blockMagic  = 0x31425354 // "TSB1"
	blockHeader = 32
)

type blockInfo struct {
	compLen, rawLen int
	crc             uint32
	maxSeq          uint64
	maxTime         int64
}

// appendBlockHeader appends the header of a block.
func appendBlockHeader(dst []byte, b blockInfo) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, blockMagic)
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
	if binary.LittleEndian.Uint32(buf) != blockMagic {
		return blockInfo{}, errors.New("bad block magic")
	}
	b := blockInfo{
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

// codec compresses and decompresses blocks. Its encoder is used by the
// writer goroutine only; the decoder is safe for concurrent use.
type codec struct {
	enc *zstd.Encoder
	dec *zstd.Decoder
}

func newCodec() (*codec, error) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1),
		zstd.WithLowerEncoderMem(true))
	if err != nil {
		return nil, fmt.Errorf("create zstd encoder: %w", err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(2), zstd.WithDecoderMaxMemory(4*maxRecord))
	if err != nil {
		return nil, fmt.Errorf("create zstd decoder: %w", err)
	}
	return &codec{enc: enc, dec: dec}, nil
}

func (c *codec) close() {
	_ = c.enc.Close()
	c.dec.Close()
}

// seal appends a block holding raw (whole records) to dst.
func (c *codec) seal(dst, raw []byte, maxSeq uint64, maxTime int64) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, blockHeader)...)
	dst = c.enc.EncodeAll(raw, dst)
	comp := dst[start+blockHeader:]
	appendBlockHeader(dst[start:start], blockInfo{
		compLen: len(comp), rawLen: len(raw), crc: crc32.Checksum(comp, castagnoli),
		maxSeq: maxSeq, maxTime: maxTime,
	})
	return dst
}

// open checks and decompresses a block's compressed bytes into dst.
func (c *codec) open(dst []byte, b blockInfo, comp []byte) ([]byte, error) {
	if crc32.Checksum(comp, castagnoli) != b.crc {
		return nil, errors.New("block checksum mismatch")
	}
	out, err := c.dec.DecodeAll(comp, dst[:0])
	if err != nil {
		return nil, fmt.Errorf("decompress block: %w", err)
	}
	if len(out) != b.rawLen {
		return nil, fmt.Errorf("block decompressed to %d bytes, header says %d", len(out), b.rawLen)
	}
	return out, nil
}
