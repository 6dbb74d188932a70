package router

import (
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
	"google.golang.org/grpc"
)

// fastZstd is the zstd compressor of the members' connections: each
// message in one EncodeAll call, at zstd's fastest level, into a recycled
// buffer. configgrpc's own zstd compressor (what `compression: zstd` gives
// any other exporter, and contrib's load_balancing) streams each message
// through a pooled Encoder at the default level, which costs an agent about
// twice as much CPU per byte for a few percent smaller messages; and the
// bytes a router sends are already batched, so there is little for the
// slower level to find. Two more options cut the encoder's CPU by about a
// quarter (BenchmarkFastZstdOptions: 80-85 to 61-67 µs for a 750-span
// batch): literals are stored, not Huffman-coded (WithNoEntropyCompression;
// the sequences still are), and the frames carry no xxhash checksum of
// their content (WithEncoderCRC(false); gRPC over TCP already guards the
// bytes, and the checksum is optional in zstd). Messages are 7-8 % larger
// on that benchmark's spans, and the same size on SDK-shaped ones, whose
// literals are mostly random IDs that Huffman coding cannot shrink. The
// frames are plain zstd: any zstd-capable OTLP receiver reads them. Its
// window is configgrpc's, so a gateway needs no more memory to decode them.
//
// gRPC's compressor registry is process-wide and keyed by the name sent on
// the wire ("zstd"), so the per-connection compressor is the one way to use
// another encoder for the same content coding without changing what every
// other component of the process sends.
type fastZstd struct{}

// grpc.Compressor is deprecated in favour of the registry, which cannot do
// this (see fastZstd).
var _ grpc.Compressor = fastZstd{} //nolint:staticcheck // SA1019: see fastZstd

// fastZstdOptions are fastZstd's encoder settings (see fastZstd).
var fastZstdOptions = []zstd.EOption{
	zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithWindowSize(512 << 10),
	zstd.WithNoEntropyCompression(true), zstd.WithEncoderCRC(false),
}

var fastZstdEncoder = sync.OnceValues(func() (*zstd.Encoder, error) {
	return zstd.NewWriter(nil, fastZstdOptions...)
})

// zstdBuffers recycle the compressed output between messages.
var zstdBuffers = sync.Pool{New: func() any { return new([]byte) }}

// Do implements grpc.Compressor: it writes p compressed to w.
func (fastZstd) Do(w io.Writer, p []byte) error {
	enc, err := fastZstdEncoder()
	if err != nil {
		return err
	}
	bp := zstdBuffers.Get().(*[]byte)
	*bp = enc.EncodeAll(p, (*bp)[:0])
	_, err = w.Write(*bp)
	zstdBuffers.Put(bp)
	return err
}

// Type implements grpc.Compressor: the content coding on the wire.
func (fastZstd) Type() string { return zstdName }

// zstdName is the content coding configgrpc registers its zstd under. The
// registered compressor still decodes what members answer in zstd.
const zstdName = "zstd"
