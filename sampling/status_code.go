package sampling

import (
	"errors"
	"fmt"
)

// StatusCodeConfig keeps traces with a span whose status is one of StatusCodes.
type StatusCodeConfig struct {
	// StatusCodes lists OK, ERROR and/or UNSET.
	StatusCodes []string `mapstructure:"status_codes"`
	// KeepOnArrival decides a trace the moment a span with one of
	// StatusCodes arrives, instead of when its completion rule fires: the
	// policies run on the spans buffered so far, a kept trace's spans are
	// forwarded at once and its later spans follow as late spans. Only on
	// a top-level policy (Engine.ArrivalMask).
	KeepOnArrival bool `mapstructure:"keep_on_arrival"`
}

// Validate implements the config validator.
func (c *StatusCodeConfig) Validate() error {
	if len(c.StatusCodes) == 0 {
		return errors.New("status_codes: must list at least one of OK, ERROR, UNSET")
	}
	for i, s := range c.StatusCodes {
		if _, err := statusBit(s); err != nil {
			return fmt.Errorf("status_codes::%d: %w", i, err)
		}
	}
	return nil
}

func statusBit(s string) (uint8, error) {
	switch s {
	case "OK":
		return StatusOKBit, nil
	case "ERROR":
		return StatusErrorBit, nil
	case "UNSET":
		return StatusUnsetBit, nil
	}
	return 0, fmt.Errorf("unknown status code %q (want OK, ERROR or UNSET)", s)
}

type statusCode struct {
	mask    uint8
	arrival bool // keep_on_arrival
}

func newStatusCode(settings any, b *builder) (evaluator, error) {
	c := settings.(*StatusCodeConfig)
	p := statusCode{arrival: c.KeepOnArrival}
	if p.arrival {
		b.arrivals++
	}
	for _, s := range c.StatusCodes {
		b, err := statusBit(s)
		if err != nil {
			return nil, err
		}
		p.mask |= b
	}
	return p, nil
}

func (p statusCode) Evaluate(t *Trace) Decision {
	if t.StatusMask&p.mask != 0 {
		return keepAlways
	}
	return Decision{}
}
