package workload

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Mix is the workload's class mix. Every value is a percentage.
//
//   - Error, Anomaly and Huge are shares of all traces.
//   - Slow is the share of the other, ordinary traces whose root gets the
//     extra 2-10 s tail. The root latency's log-normal tail adds more slow
//     traces (root >= 1 s): 1 % of the ordinary traces outside the extra
//     tail. So Slow + (1 - Slow/100) % of the ordinary traces are of class
//     slow; the rest are fast.
//   - Late is the share of eligible spans held back and sent 10-30 s after
//     the rest of their trace. A span is eligible when it is not the root
//     and its request group keeps another span. The default 0.6 comes to
//     about 0.5 % of all spans.
//
// Error+Slow+Anomaly+Huge must not exceed 100, and Error must not exceed 50.
type Mix struct {
	Error   float64 `json:"error"`
	Slow    float64 `json:"slow"`
	Anomaly float64 `json:"anomaly"`
	Huge    float64 `json:"huge"`
	Late    float64 `json:"late"`
}

// DefaultMix is the mix of a Config that leaves the mix fields unset, with
// Error = 2 (the loadgen's default --error-pct).
func DefaultMix() Mix {
	return Mix{Error: 2, Slow: defaultSlowPct, Anomaly: defaultAnomalyPct, Huge: defaultHugePct, Late: defaultLatePct}
}

// MixKeys are the keys of ParseMix, in the order of Mix.String.
var MixKeys = []string{"error", "slow", "anomaly", "huge", "late"}

func (m *Mix) field(key string) *float64 {
	switch key {
	case "error":
		return &m.Error
	case "slow":
		return &m.Slow
	case "anomaly":
		return &m.Anomaly
	case "huge":
		return &m.Huge
	case "late":
		return &m.Late
	}
	return nil
}

// String formats m as ParseMix reads it: "error=2,slow=1,anomaly=0.5,huge=0.01,late=0.6".
func (m Mix) String() string {
	var b strings.Builder
	for i, k := range MixKeys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(strconv.FormatFloat(*m.field(k), 'g', -1, 64))
	}
	return b.String()
}

// Validate reports the first value out of range, naming its key, or a class
// sum above 100.
func (m Mix) Validate() error {
	for _, k := range MixKeys {
		v, hi := *m.field(k), 100.0
		if k == "error" {
			hi = 50
		}
		if !(v >= 0 && v <= hi) {
			return fmt.Errorf("%s=%g out of range [0, %g]", k, v, hi)
		}
	}
	// A little slack for decimal shares that sum to 100 (33.3+33.3+33.4).
	if sum := m.Error + m.Slow + m.Anomaly + m.Huge; sum > 100+1e-9 {
		return fmt.Errorf("error+slow+anomaly+huge = %g, more than 100", sum)
	}
	return nil
}

// ParseMix reads a comma-separated list of key=percent pairs, for example
// "error=3,slow=1,anomaly=0.5,huge=0.01,late=0.5". Any subset of MixKeys may
// be given, each at most once; the others keep their value in base. It
// returns the resulting mix, validated, and the keys given.
func ParseMix(s string, base Mix) (Mix, []string, error) {
	m := base
	var keys []string
	if strings.TrimSpace(s) == "" {
		return m, nil, m.Validate()
	}
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		k, v, ok := strings.Cut(item, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok {
			return base, nil, fmt.Errorf("%q is not key=percent", item)
		}
		p := m.field(k)
		if p == nil {
			return base, nil, fmt.Errorf("unknown key %q (keys: %s)", k, strings.Join(MixKeys, ", "))
		}
		for _, seen := range keys {
			if seen == k {
				return base, nil, fmt.Errorf("key %q given twice", k)
			}
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return base, nil, fmt.Errorf("%s=%q is not a number", k, v)
		}
		*p = f
		keys = append(keys, k)
	}
	if err := m.Validate(); err != nil {
		return base, nil, err
	}
	return m, keys, nil
}
