package proxy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// pointer is a parsed JSON pointer (RFC 6901) with one extension: a
// reference token that is exactly "*" stands for every element of an array
// (at most one per pointer). A member literally named "*" cannot be
// addressed.
type pointer struct {
	src    string
	tokens []string
	star   int // index of the "*" token, -1 when none
}

var errNoValue = errors.New("no value at pointer")

func parsePointer(s string) (pointer, error) {
	p := pointer{src: s, star: -1}
	if s == "" {
		return p, nil
	}
	if s[0] != '/' {
		return p, fmt.Errorf("JSON pointer %q must be empty or start with '/'", s)
	}
	for i, raw := range strings.Split(s[1:], "/") {
		tok, err := unescapeToken(raw)
		if err != nil {
			return p, fmt.Errorf("JSON pointer %q: %w", s, err)
		}
		if raw == "*" {
			if p.star >= 0 {
				return p, fmt.Errorf("JSON pointer %q: at most one '*' token", s)
			}
			p.star = i
		}
		p.tokens = append(p.tokens, tok)
	}
	return p, nil
}

// unescapeToken applies RFC 6901 section 4: "~1" is '/', "~0" is '~';
// any other '~' is an error.
func unescapeToken(s string) (string, error) {
	if !strings.Contains(s, "~") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '~' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 >= len(s) || (s[i+1] != '0' && s[i+1] != '1') {
			return "", fmt.Errorf("bad escape in token %q", s)
		}
		if s[i+1] == '0' {
			b.WriteByte('~')
		} else {
			b.WriteByte('/')
		}
		i++
	}
	return b.String(), nil
}

// resolve walks tokens through a document decoded with UseNumber.
func resolve(doc any, tokens []string) (any, error) {
	cur := doc
	for _, tok := range tokens {
		switch v := cur.(type) {
		case map[string]any:
			next, ok := v[tok]
			if !ok {
				return nil, errNoValue
			}
			cur = next
		case []any:
			i, err := arrayIndex(tok, len(v))
			if err != nil {
				return nil, err
			}
			cur = v[i]
		default:
			return nil, errNoValue
		}
	}
	return cur, nil
}

// arrayIndex parses an RFC 6901 array index: "0" or digits without a
// leading zero.
func arrayIndex(tok string, n int) (int, error) {
	if tok == "" || len(tok) > 1 && tok[0] == '0' {
		return 0, errNoValue
	}
	for i := 0; i < len(tok); i++ {
		if tok[i] < '0' || tok[i] > '9' {
			return 0, errNoValue
		}
	}
	i, err := strconv.Atoi(tok)
	if err != nil || i >= n {
		return 0, errNoValue
	}
	return i, nil
}

// resolveAll returns one value per element of the "*" array, or the single
// value when the pointer has no "*".
func (p pointer) resolveAll(doc any) ([]any, error) {
	if p.star < 0 {
		v, err := resolve(doc, p.tokens)
		if err != nil {
			return nil, err
		}
		return []any{v}, nil
	}
	arr, err := resolve(doc, p.tokens[:p.star])
	if err != nil {
		return nil, err
	}
	elems, ok := arr.([]any)
	if !ok {
		return nil, fmt.Errorf("%q: '*' needs an array", p.src)
	}
	out := make([]any, len(elems))
	for i, e := range elems {
		if out[i], err = resolve(e, p.tokens[p.star+1:]); err != nil {
			return nil, err
		}
	}
	return out, nil
}
