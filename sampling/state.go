package sampling

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
)

// StateStore keeps a policy's learnt state across restarts, as bytes under
// a key. FileStore (state_file) is the one implementation today; the
// interface is what a durable store extension has to provide to take over.
type StateStore interface {
	// Load returns the bytes last saved under key, or nil and no error
	// when nothing was.
	Load(key string) ([]byte, error)
	// Save replaces the bytes under key.
	Save(key string, data []byte) error
}

// FileStore is a StateStore holding each key in a file of that name under
// Dir (a key is a file name). Save writes a temporary file and renames it,
// so that a crash leaves the previous state or the new one.
type FileStore struct{ Dir string }

// Load implements StateStore.
func (f FileStore) Load(key string) ([]byte, error) {
	data, err := os.ReadFile(filepath.Join(f.Dir, key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return data, err
}

// Save implements StateStore.
func (f FileStore) Save(key string, data []byte) error {
	path := filepath.Join(f.Dir, key)
	tmp, err := os.CreateTemp(f.Dir, key+".tmp*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync() // on disk before the rename makes it the model
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return errors.Join(err, os.Remove(tmp.Name()))
	}
	return nil
}

// stateful is a policy with state to keep across restarts.
type stateful interface {
	// saveState saves the policy's state to its store.
	saveState() error
}

// SaveState saves the state of every policy that keeps one (adaptive with
// state_file). The buffer calls it on shutdown, once no trace is decided
// any more.
func (e *Engine) SaveState() error {
	var errs []error
	for i, p := range e.policies {
		if s, ok := p.(stateful); ok {
			if err := s.saveState(); err != nil {
				errs = append(errs, fmt.Errorf("policies::%d (%s): save state: %w", i, e.names[i], err))
			}
		}
	}
	return errors.Join(errs...)
}

// The adaptive model's encoding: a magic and version, the key count, then
// per key its hash, landmark and last observation, the decayed sums, the
// lowest bucket and the buckets, all little-endian.
const (
	modelMagic   = "tsam"
	modelVersion = 1
	keyFloats    = 6
	keyBytes     = 8 + 8 + 8 + keyFloats*8 + 4 + numBuckets*4
)

// encode appends the table's keys to b.
func (t *keyTable) encode(b []byte) []byte {
	b = append(b, modelMagic...)
	b = binary.LittleEndian.AppendUint32(b, modelVersion)
	countAt := len(b)
	b = binary.LittleEndian.AppendUint32(b, 0)
	n := 0
	for i := range t.stripes {
		s := &t.stripes[i]
		s.mu.Lock()
		for j := range s.data.keys {
			b = s.data.keys[j].append(b)
			n++
		}
		s.mu.Unlock()
	}
	binary.LittleEndian.PutUint32(b[countAt:], uint32(n))
	return b
}

func (k *keyState) append(b []byte) []byte {
	b = binary.LittleEndian.AppendUint64(b, k.hash)
	b = binary.LittleEndian.AppendUint64(b, uint64(k.epoch))
	b = binary.LittleEndian.AppendUint64(b, uint64(k.lastSeen))
	for _, f := range [keyFloats]float64{k.total, k.errLong, k.histTotal, k.totShort, k.errShort, k.anomShort} {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(k.lo))
	for _, c := range k.buckets {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(c))
	}
	return b
}

// decode adds the keys encoded in b to the table (up to its capacity),
// and returns how many it added. A model with any key out of range (a
// lowest bucket past the buckets, a sum or bucket negative, infinite or
// NaN: a file damaged on disk) adds none.
func (t *keyTable) decode(b []byte) (int, error) {
	if len(b) < 12 || string(b[:4]) != modelMagic {
		return 0, errors.New("not an adaptive model")
	}
	if v := binary.LittleEndian.Uint32(b[4:]); v != modelVersion {
		return 0, fmt.Errorf("model version %d, want %d", v, modelVersion)
	}
	n := int(binary.LittleEndian.Uint32(b[8:]))
	b = b[12:]
	if len(b) != n*keyBytes {
		return 0, fmt.Errorf("%d bytes for %d keys, want %d", len(b), n, n*keyBytes)
	}
	keys := make([]keyState, n)
	for i := range keys {
		k := &keys[i]
		k.hash = binary.LittleEndian.Uint64(b)
		k.epoch = int64(binary.LittleEndian.Uint64(b[8:]))
		k.lastSeen = int64(binary.LittleEndian.Uint64(b[16:]))
		fs := [keyFloats]*float64{&k.total, &k.errLong, &k.histTotal, &k.totShort, &k.errShort, &k.anomShort}
		for i, f := range fs {
			*f = math.Float64frombits(binary.LittleEndian.Uint64(b[24+8*i:]))
			if !countable(*f) {
				return 0, fmt.Errorf("key %x: sum %d is %v", k.hash, i, *f)
			}
		}
		off := 24 + 8*keyFloats
		k.lo = int32(binary.LittleEndian.Uint32(b[off:]))
		off += 4
		for i := range k.buckets {
			k.buckets[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[off+4*i:]))
			if !countable(float64(k.buckets[i])) {
				return 0, fmt.Errorf("key %x: bucket %d is %v", k.hash, i, k.buckets[i])
			}
		}
		b = b[keyBytes:]
		if k.lo < 0 || k.lo >= numBuckets {
			return 0, fmt.Errorf("key %x: lowest bucket %d out of range", k.hash, k.lo)
		}
	}
	for i := range keys {
		k := &keys[i]
		s := t.stripe(k.hash)
		s.mu.Lock()
		slot, _ := t.lookup(&s.data, k.hash, k.lastSeen)
		*slot = *k
		s.mu.Unlock()
	}
	return n, nil
}

// countable reports whether f can be a decayed count: finite and not
// negative.
func countable(f float64) bool { return f >= 0 && !math.IsInf(f, 1) }
