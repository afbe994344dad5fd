package tlog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxEntrySize is the largest entry the log accepts: tlog-tiles entry
// bundles prefix each entry with a 16-bit length.
const MaxEntrySize = 1<<16 - 1

// maxSafeInt is the largest integer an IEEE 754 double holds exactly, the
// range RFC 8785 numbers can carry without loss.
const maxSafeInt = 1<<53 - 1

// maxDepth bounds the nesting of an entry's data.
const maxDepth = 16

// Entry is one leaf of the log: a state change of the registry.
//
// Its bytes (what the leaf hash covers) are the RFC 8785 (JCS) canonical
// JSON of one object with exactly these members, in this order (which is
// JCS's sorted order):
//
//	{"actor":"token:3f9a2c1b7d4e","data":{...},"event":12,"subject":"m@1","time":"2026-11-22T01:02:03.123456789Z","type":"version.register"}
//
// actor, subject and type are strings; time is RFC 3339 in UTC with
// nanoseconds and no trailing zeros (Go's time.RFC3339Nano); event is the
// registry's journal sequence number of the change (a reference, not the
// leaf index); data holds the change's details (digests, the previous
// alias target, ...; docs/tlog.md lists them per type): objects, arrays,
// strings, booleans, null, and integers of magnitude at most 2^53-1 (no
// fractions or exponents, so JCS number formatting reduces to decimal
// integers). No insignificant whitespace; object keys sorted by UTF-16 code
// units; strings escape only '"', '\\' and U+0000..U+001F (as \b \t \n \f
// \r or \u00xx with lowercase hex) and are otherwise literal UTF-8.
type Entry struct {
	Type    string
	Subject string
	Actor   string
	Time    time.Time
	Event   int64
	Data    map[string]any
}

// Marshal returns the entry's canonical bytes.
func (e *Entry) Marshal() ([]byte, error) {
	obj := map[string]any{
		"actor":   e.Actor,
		"data":    e.Data,
		"event":   json.Number(strconv.FormatInt(e.Event, 10)),
		"subject": e.Subject,
		"time":    e.Time.UTC().Format(time.RFC3339Nano),
		"type":    e.Type,
	}
	if e.Data == nil {
		obj["data"] = map[string]any{}
	}
	var b bytes.Buffer
	if err := canonical(&b, obj, 0); err != nil {
		return nil, err
	}
	if b.Len() > MaxEntrySize {
		return nil, fmt.Errorf("log entry is %d bytes, more than %d", b.Len(), MaxEntrySize)
	}
	return b.Bytes(), nil
}

// ErrMalformedEntry is wrapped by [ParseEntry] errors; check with errors.Is.
var ErrMalformedEntry = errors.New("malformed log entry")

// ParseEntry parses an entry's bytes strictly: they must be exactly the
// canonical encoding of the entry they describe (so one entry has one
// encoding and one leaf hash), at most [MaxEntrySize] bytes.
func ParseEntry(b []byte) (*Entry, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrMalformedEntry, fmt.Sprintf(format, args...))
	}
	if len(b) > MaxEntrySize {
		return nil, bad("%d bytes, more than %d", len(b), MaxEntrySize)
	}
	if !utf8.Valid(b) {
		return nil, bad("not UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var raw struct {
		Type    *string         `json:"type"`
		Subject *string         `json:"subject"`
		Actor   *string         `json:"actor"`
		Time    *string         `json:"time"`
		Event   *json.Number    `json:"event"`
		Data    *map[string]any `json:"data"`
	}
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return nil, bad("%v", err)
	}
	if raw.Type == nil || raw.Subject == nil || raw.Actor == nil || raw.Time == nil || raw.Event == nil || raw.Data == nil || *raw.Data == nil {
		return nil, bad("a member is missing or null")
	}
	ev, err := strconv.ParseInt(raw.Event.String(), 10, 64)
	if err != nil {
		return nil, bad("event: %v", err)
	}
	t, err := time.Parse(time.RFC3339Nano, *raw.Time)
	if err != nil {
		return nil, bad("time: %v", err)
	}
	e := &Entry{Type: *raw.Type, Subject: *raw.Subject, Actor: *raw.Actor, Time: t.UTC(), Event: ev, Data: *raw.Data}
	again, err := e.Marshal()
	if err != nil {
		return nil, bad("%v", err)
	}
	if !bytes.Equal(again, b) {
		return nil, bad("not in canonical form")
	}
	return e, nil
}

// canonical writes v as RFC 8785 JSON. v holds what encoding/json decodes
// into with UseNumber: map[string]any, []any, string, json.Number, bool,
// nil; plus []string and map[string]string for convenience.
func canonical(b *bytes.Buffer, v any, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("nested deeper than %d", maxDepth)
	}
	switch v := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		if v {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case string:
		return canonicalString(b, v)
	case json.Number:
		s := v.String()
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || strconv.FormatInt(n, 10) != s || n > maxSafeInt || n < -maxSafeInt {
			return fmt.Errorf("number %.40q is not an integer of magnitude at most 2^53-1", s)
		}
		b.WriteString(s)
	case []string:
		a := make([]any, len(v))
		for i := range v {
			a[i] = v[i]
		}
		return canonical(b, a, depth)
	case []any:
		b.WriteByte('[')
		for i, x := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := canonical(b, x, depth+1); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case map[string]string:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[k] = x
		}
		return canonical(b, m, depth)
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return utf16Less(keys[i], keys[j]) })
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := canonicalString(b, k); err != nil {
				return err
			}
			b.WriteByte(':')
			if err := canonical(b, v[k], depth+1); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	default:
		return fmt.Errorf("cannot encode %T canonically", v)
	}
	return nil
}

func canonicalString(b *bytes.Buffer, s string) error {
	if !utf8.ValidString(s) {
		return errors.New("string is not UTF-8")
	}
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			b.WriteString(`\"`)
		case c == '\\':
			b.WriteString(`\\`)
		case c == '\b':
			b.WriteString(`\b`)
		case c == '\t':
			b.WriteString(`\t`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\f':
			b.WriteString(`\f`)
		case c == '\r':
			b.WriteString(`\r`)
		case c < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return nil
}

// utf16Less orders strings by their UTF-16 code units, as RFC 8785 sorts
// object keys.
func utf16Less(a, b string) bool {
	if isASCII(a) && isASCII(b) {
		return a < b
	}
	ua, ub := utf16.Encode([]rune(a)), utf16.Encode([]rune(b))
	for i := 0; i < len(ua) && i < len(ub); i++ {
		if ua[i] != ub[i] {
			return ua[i] < ub[i]
		}
	}
	return len(ua) < len(ub)
}

func isASCII(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return r >= utf8.RuneSelf }) < 0
}
