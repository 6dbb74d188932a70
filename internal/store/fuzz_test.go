package store

import (
	"testing"
)

// FuzzParseRecords: the segment record parser never panics, never reads past
// its input, and what it accepts re-encodes to the same bytes.
func FuzzParseRecords(f *testing.F) {
	var seed []byte // every kind
	seed = appendFrame(seed, KindSpans, 1, 2, spansBody(nil, [][16]byte{{1}}, []byte{10, 0}))
	seed = appendFrame(seed, KindDecision, 2, 3, decisionBody(nil, [16]byte{1}, Decision{Keep: true, Threshold: 7, Policy: "errors", Reason: "quiet"}))
	seed = appendFrame(seed, KindDelivered, 3, 4, deliveredBody(nil, [][16]byte{{1}, {2}}))
	seed = appendFrame(seed, kindRequest, 4, 5, []byte{10, 0})
	body, _ := decisionsBody(nil, [][16]byte{{1}, {2}, {3}}, []Decision{
		{Keep: true, Policy: "errors", Reason: "quiet"}, {Threshold: 1 << 55, Policy: "baseline", Reason: "quiet"}, {Policy: "errors"},
	}, nil, false)
	seed = appendFrame(seed, kindDecisions, 5, 6, body)
	body, _ = decisionsBody(nil, [][16]byte{{4}, {5}}, []Decision{
		{Keep: true, Threshold: 1 << 55, RV: 1<<56 - 1, HasRV: true, Policy: "baseline", Reason: "quiet"}, {Policy: "errors"},
	}, nil, true)
	seed = appendFrame(seed, kindDecisionsRV, 6, 6, body)
	start := len(seed)
	seed = appendSpansFrame(seed, 7, []byte{10, 0})
	sealFrame(seed[start:], 6)
	seed = appendFrame(seed, kindDeliveredMark, 8, 8, deliveredMarkBody(nil, 6, [][16]byte{{1}, {2}}))
	f.Add(seed)
	f.Add(seed[:len(seed)-3])
	f.Add([]byte{})
	// Hostile kind 7 records: an rv one past its 56 bits, an rv cut short,
	// a count of decisions far past the bytes (no allocation by count).
	body, _ = decisionsBody(nil, [][16]byte{{6}}, []Decision{{Keep: true, Policy: "p"}}, nil, true)
	f.Add(appendFrame(nil, kindDecisionsRV, 1, 1, append(body[:len(body)-1], 0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01)))
	f.Add(appendFrame(nil, kindDecisionsRV, 1, 1, append(body[:len(body)-1], 0x80)))
	f.Add(appendFrame(nil, kindDecisionsRV, 1, 1, []byte{0, 0xff, 0xff, 0xff, 0xff, 0x0f}))
	// Hostile kind 8 records: a mark cut short, a mark past 64 bits, no
	// IDs after the mark, an ID count past the bytes.
	f.Add(appendFrame(nil, kindDeliveredMark, 2, 2, []byte{0x80}))
	f.Add(appendFrame(nil, kindDeliveredMark, 2, 2, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0}))
	f.Add(appendFrame(nil, kindDeliveredMark, 2, 2, []byte{1}))
	f.Add(appendFrame(nil, kindDeliveredMark, 2, 2, []byte{1, 0xff, 0xff, 0x03}))
	f.Fuzz(func(t *testing.T, buf []byte) {
		var again []byte
		var batchIDs [][16]byte
		var batch []Decision
		n, _ := ParseRecords(buf, func(r *Record) error {
			if r.BatchLen > 0 {
				batchIDs, batch = append(batchIDs, r.IDs[0]), append(batch, r.Decision)
				if r.BatchIndex == r.BatchLen-1 {
					// A kind 7 record whose decisions have no rv
					// re-encodes as kind 5, shorter.
					kind, withRV := kindDecisions, anyRV(batch)
					if withRV {
						kind = kindDecisionsRV
					}
					body, _ := decisionsBody(nil, batchIDs, batch, nil, withRV)
					again = appendFrame(again, kind, r.Seq, r.Time, body)
					batchIDs, batch = batchIDs[:0], batch[:0]
				}
				return nil
			}
			switch r.Kind {
			case KindSpans:
				if r.IDsOmitted {
					again = appendFrame(again, kindRequest, r.Seq, r.Time, r.Request)
					break
				}
				again = appendFrame(again, r.Kind, r.Seq, r.Time, spansBody(nil, r.IDs, r.Request))
			case KindDecision:
				again = appendFrame(again, r.Kind, r.Seq, r.Time, decisionBody(nil, r.IDs[0], r.Decision))
			case KindDelivered:
				if r.Marked {
					again = appendFrame(again, kindDeliveredMark, r.Seq, r.Time, deliveredMarkBody(nil, r.Mark, r.IDs))
					break
				}
				again = appendFrame(again, r.Kind, r.Seq, r.Time, deliveredBody(nil, r.IDs))
			}
			return nil
		})
		if n < 0 || n > len(buf) {
			t.Fatalf("consumed %d of %d bytes", n, len(buf))
		}
		if n > 0 && string(again) != string(buf[:n]) {
			// A decision's keep byte other than 0/1 and non-minimal
			// varints parse but re-encode differently; only the length
			// must agree then.
			if len(again) > n {
				t.Fatalf("re-encoded %d bytes from %d", len(again), n)
			}
		}
	})
}
