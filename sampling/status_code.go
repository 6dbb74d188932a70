package sampling

import (
	"errors"
	"fmt"
)

// StatusCodeConfig keeps traces with a span whose status is one of StatusCodes.
type StatusCodeConfig struct {
	// StatusCodes lists OK, ERROR and/or UNSET.
	StatusCodes []string `mapstructure:"status_codes"`
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

type statusCode struct{ mask uint8 }

func newStatusCode(settings any, _ *builder) (evaluator, error) {
	c := settings.(*StatusCodeConfig)
	var p statusCode
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
