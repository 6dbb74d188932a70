package tracebuf

import "sync"

// keptCache remembers the kept decisions of a buffer's shards by trace ID
// hash, for the late spans of kept traces: the shards, the store's
// retroactive keeps and the rescues set into it concurrently.
//
// It is striped by hash, each stripe two generations of open-addressing
// tables, as dropFilter: when the current generation holds its share of
// the capacity, the older one is let go, so the cache holds the most recent
// decisions (between half its capacity and all of it). A table starts small
// and doubles as it fills: the memory follows the decisions held, 32 bytes a
// slot at most 3/4 full, and a buffer that kept few traces holds little.
// A Set is never refused. (It replaced ristretto, whose admission sketch and
// Bloom filter, 6 MiB at the default 16 MiB, were allocated at start and
// written by the first spike, and whose maps took about 150 bytes a
// decision: after a spike they stayed in RSS.)
type keptCache struct {
	stripes [keptStripes]keptStripe
}

const (
	keptStripes = 16
	// keptSlotBytes is a table slot: the hash and the keptValue.
	keptSlotBytes = 32
	// minKeptTable is the slots a generation's table starts with.
	minKeptTable = 64
)

type keptStripe struct {
	mu     sync.Mutex
	gens   [2]keptTable
	cur    int
	perGen int // decisions a generation holds before it is retired
	_      [64]byte
}

// keptTable is one generation: the hashes (0: free slot) and their values.
type keptTable struct {
	keys  []uint64
	vals  []keptValue
	count int
}

// newKeptCache returns a cache of at most maxBytes of tables.
func newKeptCache(maxBytes int64) *keptCache {
	// Two full generations of perGen decisions take perGen·4/3·32·2 bytes.
	perGen := int(max(maxBytes*3/(8*keptSlotBytes*keptStripes), 8))
	c := &keptCache{}
	for i := range c.stripes {
		c.stripes[i].perGen = perGen
	}
	return c
}

func (c *keptCache) stripe(h uint64) *keptStripe { return &c.stripes[(h>>32)%keptStripes] }

// Set remembers v under hash h, in place of what h held.
func (c *keptCache) Set(h uint64, v keptValue) {
	if h == 0 {
		h = 1
	}
	st := c.stripe(h)
	st.mu.Lock()
	defer st.mu.Unlock()
	t := &st.gens[st.cur]
	if i := find(t.keys, h); i >= 0 {
		t.vals[i] = v
		return
	}
	if t.count >= st.perGen {
		st.cur ^= 1
		t = &st.gens[st.cur]
		*t = keptTable{}
	}
	if n := len(t.keys); n < st.maxSlots() && (t.count+1)*4 > n*3 {
		t.grow(min(max(2*n, minKeptTable), st.maxSlots()))
	}
	t.vals[insert(t.keys, h)] = v
	t.count++
}

// Get returns what h holds.
func (c *keptCache) Get(h uint64) (keptValue, bool) {
	if h == 0 {
		h = 1
	}
	st := c.stripe(h)
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, g := range [2]int{st.cur, st.cur ^ 1} {
		t := &st.gens[g]
		if i := find(t.keys, h); i >= 0 {
			return t.vals[i], true
		}
	}
	return keptValue{}, false
}

// maxSlots is the size of a full generation's table (at most 3/4 full).
func (st *keptStripe) maxSlots() int { return st.perGen*4/3 + 1 }

// grow moves t into tables of n slots.
func (t *keptTable) grow(n int) {
	keys, vals := make([]uint64, n), make([]keptValue, n)
	for i, h := range t.keys {
		if h != 0 {
			vals[insert(keys, h)] = t.vals[i]
		}
	}
	t.keys, t.vals = keys, vals
}

// bytes is the memory the cache's tables take.
func (c *keptCache) bytes() int {
	n := 0
	for i := range c.stripes {
		st := &c.stripes[i]
		st.mu.Lock()
		n += keptSlotBytes * (len(st.gens[0].keys) + len(st.gens[1].keys))
		st.mu.Unlock()
	}
	return n
}
