package otlpguard

import (
	"encoding/json"
	"errors"
	"fmt"
)

// MaxJSONNesting bounds how deeply objects and arrays nest in an OTLP/JSON
// request. pdata's JSON decoder recurses per object and array like its
// protobuf decoder. In OTLP/JSON an AnyValue level takes at most four
// brackets ({"kvlistValue":{"values":[{"key":..,"value":), and the deepest
// path to the first AnyValue (a metric exemplar's attribute) takes fourteen,
// so this bound accepts every request whose AnyValues nest at most MaxDepth
// levels deep (and a little more).
const MaxJSONNesting = 4*MaxDepth + 32

// ErrMalformedJSON is wrapped by CheckJSON's error for a body that is not
// JSON.
var ErrMalformedJSON = errors.New("malformed JSON")

// CheckJSON returns an error wrapping ErrTooDeep when objects and arrays in
// b nest deeper than MaxJSONNesting, and one wrapping ErrMalformedJSON when
// b is not valid JSON. It counts brackets outside strings in one pass, then
// validates b (encoding/json.Valid, whose state stack the count bounds).
// Counting alone was not enough: pdata's decoder (jsoniter) takes a comma
// where an object or array should open, so that AnyValues nested without
// a single bracket (`"arrayValue":,"values":,` repeated) went through, as
// deep as the body allowed.
func CheckJSON(sig Signal, b []byte) error {
	if err := checkJSONDepth(sig, b); err != nil {
		return err
	}
	if !json.Valid(b) {
		return fmt.Errorf("check %v request: %w", sig, ErrMalformedJSON)
	}
	return nil
}

func checkJSONDepth(sig Signal, b []byte) error {
	depth := 0
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch c {
			case '\\':
				i++ // the escaped byte cannot end the string
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			if depth > MaxJSONNesting {
				return fmt.Errorf("check %v request: %w: JSON objects and arrays at byte %d are nested more than %d levels deep"+
					" (AnyValues may nest at most %d levels)", sig, ErrTooDeep, i, MaxJSONNesting, MaxDepth)
			}
		case '}', ']':
			// Clamped so that stray closing brackets cannot buy room for
			// deeper nesting after them.
			depth = max(depth-1, 0)
		}
	}
	return nil
}
