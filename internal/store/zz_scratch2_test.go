package store

import (
	"os"
	"path/filepath"
	"testing"
)

func TestScratchTally(t *testing.T) {
	dir := os.Getenv("SEGDIR")
	if dir == "" {
		t.Skip()
	}
	s, err := Open(Options{Dir: dir, Retention: 1 << 62, MaxBytes: 1 << 40, Compression: "s2"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	type tally struct{ blocks, recs, ids, comp, rawb int }
	by := map[string]*tally{}
	for _, seg := range s.segs {
		data, _ := os.ReadFile(filepath.Join(dir, segName(seg.num)))
		dict := s.dicts.of(seg.num, func(off uint32) ([]byte, error) { _, r, err := s.readBlock(data[off:], nil, nil); return r, err })
		var raw []byte
		off := 0
		for off < len(data) {
			b, r, err := s.readBlock(data[off:], raw, dict)
			raw = r
			if err != nil {
				t.Log(err)
				break
			}
			kinds := map[byte]int{}
			ids := 0
			ParseRecords(raw, func(r *Record) error { kinds[r.Kind]++; ids += len(r.IDs); return nil })
			key := ""
			for k := range kinds {
				key += string(rune('0' + k))
			}
			if len(kinds) > 1 {
				key = "mixed"
			}
			if b.dict {
				key += "-dict"
			}
			tl := by[key]
			if tl == nil {
				tl = &tally{}
				by[key] = tl
			}
			tl.blocks++
			for _, n := range kinds {
				tl.recs += n
			}
			tl.ids += ids
			tl.comp += blockHeader + b.compLen
			tl.rawb += b.rawLen
			off += blockHeader + b.compLen
		}
	}
	for k, v := range by {
		t.Logf("kind %s: %+v", k, *v)
	}
}
