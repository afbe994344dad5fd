package oms

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// maxJSONDepth bounds the nesting of any JSON document custody parses, so a
// hostile signature cannot exhaust the stack or the CPU.
const maxJSONDepth = 32

// checkStrictJSON reports an error unless data is exactly one JSON value,
// with no object that repeats a key (ignoring case), and nesting at most
// maxJSONDepth.
//
// Duplicate keys matter for signatures: two parsers that pick different
// copies of a repeated key would disagree about what was signed, so they are
// rejected outright instead of resolved "last wins" as encoding/json does.
func checkStrictJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := walkJSON(dec, 0); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after JSON value")
	}
	return nil
}

func walkJSON(dec *json.Decoder, depth int) error {
	if depth > maxJSONDepth {
		return fmt.Errorf("JSON nested deeper than %d levels", maxJSONDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	switch delim {
	case '{':
		// Keys are compared case-insensitively because encoding/json
		// matches struct fields that way: "payload" and "Payload" in one
		// object would otherwise be a duplicate in disguise.
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return fmt.Errorf("invalid JSON: %w", err)
			}
			key, ok := kt.(string)
			if !ok {
				return errors.New("invalid JSON: object key is not a string")
			}
			fold := strings.ToLower(key)
			if seen[fold] {
				return fmt.Errorf("duplicate JSON key %q", key)
			}
			seen[fold] = true
			if err := walkJSON(dec, depth+1); err != nil {
				return err
			}
		}
	case '[':
		for dec.More() {
			if err := walkJSON(dec, depth+1); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("invalid JSON: unexpected %v", delim)
	}
	if _, err := dec.Token(); err != nil { // the closing delimiter
		return fmt.Errorf("invalid JSON: %w", err)
	}
	return nil
}

// decodeStrict checks data with checkStrictJSON, then decodes it into v,
// refusing fields v does not declare.
func decodeStrict(data []byte, v any) error {
	if err := checkStrictJSON(data); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
