package timerslack

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTarget(t *testing.T) {
	for _, tc := range []struct {
		name, v string
		want    time.Duration
		err     string
	}{
		{name: "unset", v: "", want: Default},
		{name: "zero", v: "0", want: 0},
		{name: "zero duration", v: "0s", want: 0},
		{name: "duration", v: "500us", want: 500 * time.Microsecond},
		{name: "max", v: "50ms", want: Max},
		{name: "over max", v: "51ms", err: "TAILSIFT_TIMER_SLACK: 51ms is outside 0..50ms"},
		{name: "negative", v: "-1ms", err: "TAILSIFT_TIMER_SLACK: -1ms is outside 0..50ms"},
		{name: "no unit", v: "1000", err: `TAILSIFT_TIMER_SLACK: time: missing unit in duration "1000"`},
		{name: "word", v: "off", err: `TAILSIFT_TIMER_SLACK: time: invalid duration "off"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Target(tc.v)
			if tc.err != "" {
				require.EqualError(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}
