package predict

import (
	"bytes"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/custody-ml/custody/internal/predstore"
	"github.com/custody-ml/custody/internal/registry"
)

// The fast record parser: a hand-written scanner for the common shape of
// an ingest record, without reflection or per-record maps. It accepts a
// strict subset of what parseRecord (encoding/json, the reference)
// accepts and produces identical records for it. Whenever the input
// leaves that subset — an error of any kind, an escape in a key, a
// duplicate or differently-cased key, a null, a nested value — it gives up
// and the caller runs parseRecord, so the accepted set, the parsed values
// and the rejection reasons are exactly the reference's (checked by
// FuzzFastParse).

// arena hands out byte slices carved from shared chunks: the compact
// features, segment and prediction JSON of a whole batch live in a few
// large allocations instead of one or more per record.
type arena struct{ buf []byte }

// start returns the position where the next piece begins and makes room
// for at least n bytes without moving what was handed out before.
func (a *arena) start(n int) {
	if cap(a.buf)-len(a.buf) < n {
		a.buf = make([]byte, 0, max(64<<10, n))
	}
}

// end returns the piece appended since mark (full slice expression: the
// piece cannot grow into its neighbour).
func (a *arena) end(mark int) []byte {
	return a.buf[mark:len(a.buf):len(a.buf)]
}

type fastParser struct {
	lim   Limits
	arena arena
	// The last model and digest seen: records of a batch usually repeat
	// them, so their strings are shared.
	model, digest string
	kv            []kv
}

type kv struct{ k, v []byte }

func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipWS(b []byte, i int) int {
	for i < len(b) && isWS(b[i]) {
		i++
	}
	return i
}

// scanString scans the JSON string starting at b[i] == '"' and returns
// the index after its closing quote, whether it contains escapes or bytes
// outside printable ASCII, and ok=false if it is not a valid JSON string.
func scanString(b []byte, i int) (end int, plain bool, ok bool) {
	plain = true
	i++
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			return i + 1, plain, true
		case c < 0x20:
			return 0, false, false
		case c == '\\':
			plain = false
			if i+1 >= len(b) {
				return 0, false, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) {
					return 0, false, false
				}
				for _, h := range b[i+2 : i+6] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return 0, false, false
					}
				}
				i += 6
			default:
				return 0, false, false
			}
		default:
			if c > 0x7e {
				plain = false
			}
			i++
		}
	}
	return 0, false, false
}

// scanNumber scans a JSON number at b[i] and returns the index after it.
func scanNumber(b []byte, i int) (int, bool) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return 0, false
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		s := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == s {
			return 0, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		s := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == s {
			return 0, false
		}
	}
	return i, true
}

// scanScalar scans a flat value (string, number, true, false, null) and
// returns its end; ok=false for anything else (nested values, bad JSON).
func scanScalar(b []byte, i int) (end int, isString, ok bool) {
	if i >= len(b) {
		return 0, false, false
	}
	switch c := b[i]; {
	case c == '"':
		e, _, ok := scanString(b, i)
		return e, true, ok
	case c == '-' || c >= '0' && c <= '9':
		e, ok := scanNumber(b, i)
		return e, false, ok
	case c == 't':
		return i + 4, false, bytes.HasPrefix(b[i:], []byte("true"))
	case c == 'f':
		return i + 5, false, bytes.HasPrefix(b[i:], []byte("false"))
	case c == 'n':
		return i + 4, false, bytes.HasPrefix(b[i:], []byte("null"))
	}
	return 0, false, false
}

// parse fills r from raw and reports whether it could (false: run the
// reference parser).
func (p *fastParser) parse(raw []byte, r *predstore.Record) bool {
	const (
		fTS = 1 << iota
		fID
		fModel
		fDigest
		fFeatures
		fPrediction
		fSegment
		fLatency
	)
	var seen int
	// Exactly what parseRecord takes: the record starts with its '{'.
	if len(raw) == 0 || raw[0] != '{' {
		return false
	}
	i := 0
	i = skipWS(raw, i+1)
	if i < len(raw) && raw[i] == '}' {
		return false // empty object: required keys missing
	}
	for {
		if i >= len(raw) || raw[i] != '"' {
			return false
		}
		ke, plain, ok := scanString(raw, i)
		if !ok || !plain {
			return false
		}
		key := raw[i+1 : ke-1]
		i = skipWS(raw, ke)
		if i >= len(raw) || raw[i] != ':' {
			return false
		}
		i = skipWS(raw, i+1)
		if i >= len(raw) {
			return false
		}
		var bit int
		switch string(key) {
		case "ts":
			bit = fTS
			e, isStr, ok := scanScalar(raw, i)
			if !ok || raw[i] == 'n' || raw[i] == 't' || raw[i] == 'f' {
				return false
			}
			if isStr {
				_, plain, _ := scanString(raw, i)
				if !plain {
					return false
				}
				t, err := time.Parse(time.RFC3339Nano, string(raw[i+1:e-1]))
				if err != nil || t.Before(minTime) || t.After(maxTime) {
					return false
				}
				r.TS = t.UTC()
			} else {
				t, err := parseTime(raw[i:e], true)
				if err != nil {
					return false
				}
				r.TS = t
			}
			i = e
		case "request_id", "model", "model_sha256":
			if raw[i] != '"' {
				return false
			}
			e, plain, ok := scanString(raw, i)
			if !ok || !plain {
				return false
			}
			v := raw[i+1 : e-1]
			switch string(key) {
			case "request_id":
				bit = fID
				if len(v) > 0 {
					if len(v) > maxRequestID || bytes.IndexByte(v, ' ') >= 0 {
						return false
					}
					r.RequestID = string(v)
				}
			case "model":
				bit = fModel
				if len(v) == 0 || string(v) != p.model {
					if registry.CheckName(string(v)) != nil {
						return false
					}
					p.model = string(v)
				}
				r.Model = p.model
			default:
				bit = fDigest
				if !p.digest2(v) {
					return false
				}
				r.Digest = p.digest
			}
			i = e
		case "features", "segment":
			strs := string(key) == "segment"
			bit = fFeatures
			maxKeys := p.lim.MaxFeatures
			if strs {
				bit, maxKeys = fSegment, maxSegments
			}
			out, e, ok := p.flat(raw, i, maxKeys, strs)
			if !ok {
				return false
			}
			if strs {
				r.Segment = out
			} else {
				r.Features = out
			}
			i = e
		case "prediction":
			bit = fPrediction
			out, e, ok := p.prediction(raw, i)
			if !ok {
				return false
			}
			r.Prediction = out
			i = e
		case "latency_ms":
			bit = fLatency
			e, ok := scanNumber(raw, i)
			if !ok {
				return false
			}
			f, err := strconv.ParseFloat(string(raw[i:e]), 64)
			if err != nil || f < 0 || math.IsInf(f, 0) {
				return false
			}
			r.LatencyMS = &f
			i = e
		default:
			return false
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		i = skipWS(raw, i)
		if i >= len(raw) {
			return false
		}
		if raw[i] == '}' {
			i++
			break
		}
		if raw[i] != ',' {
			return false
		}
		i = skipWS(raw, i+1)
	}
	if skipWS(raw, i) != len(raw) {
		return false
	}
	const required = fTS | fModel | fDigest | fPrediction
	return seen&required == required
}

// digest2 sets p.digest to the normalized model_sha256 v (as normDigest).
func (p *fastParser) digest2(v []byte) bool {
	if len(v) == 7+16 || len(v) == 7+64 {
		if !bytes.EqualFold(v[:7], []byte("sha256:")) {
			return false
		}
		v = v[7:]
	}
	if len(v) != 16 && len(v) != 64 {
		return false
	}
	if len(v) == len(p.digest) {
		same := true
		for k := range v {
			c := v[k]
			if c >= 'A' && c <= 'F' {
				c += 'a' - 'A'
			}
			if c != p.digest[k] {
				same = false
				break
			}
		}
		if same {
			return true
		}
	}
	h := make([]byte, len(v))
	for k, c := range v {
		switch {
		case c >= '0' && c <= '9' || c >= 'a' && c <= 'f':
		case c >= 'A' && c <= 'F':
			c += 'a' - 'A'
		default:
			return false
		}
		h[k] = c
	}
	p.digest = string(h)
	return true
}

// members scans the members of the object at raw[i] into p.kv's array:
// key and value return the end of a key (at its opening quote) and of a
// value, and whether they are acceptable; more than maxKeys members are
// refused. It returns the members in input order and the index after the
// object.
func (p *fastParser) members(raw []byte, i, maxKeys int, key, value func(i int) (int, bool)) ([]kv, int, bool) {
	if raw[i] != '{' {
		return nil, 0, false
	}
	kvs := p.kv[:0]
	i = skipWS(raw, i+1)
	if i < len(raw) && raw[i] == '}' {
		return kvs, i + 1, true
	}
	for {
		if i >= len(raw) || raw[i] != '"' {
			return nil, 0, false
		}
		ke, ok := key(i)
		if !ok {
			return nil, 0, false
		}
		k := raw[i+1 : ke-1]
		i = skipWS(raw, ke)
		if i >= len(raw) || raw[i] != ':' {
			return nil, 0, false
		}
		i = skipWS(raw, i+1)
		ve, ok := value(i)
		if !ok {
			return nil, 0, false
		}
		kvs = append(kvs, kv{k, raw[i:ve]})
		if len(kvs) > maxKeys {
			return nil, 0, false
		}
		i = skipWS(raw, ve)
		if i >= len(raw) {
			return nil, 0, false
		}
		if raw[i] == '}' {
			return kvs, i + 1, true
		}
		if raw[i] != ',' {
			return nil, 0, false
		}
		i = skipWS(raw, i+1)
	}
}

// flat parses a flat object at raw[i] into compact JSON with sorted keys
// (nil if empty), as flatObject does.
func (p *fastParser) flat(raw []byte, i, maxKeys int, onlyStrings bool) ([]byte, int, bool) {
	kvs, i, ok := p.members(raw, i, maxKeys,
		func(i int) (int, bool) {
			ke, ok := scanKey(raw, i)
			return ke, ok && ke-i-2 <= p.lim.MaxKeyLen && ke-i != 2
		},
		func(i int) (int, bool) {
			ve, isStr, ok := scanScalar(raw, i)
			return ve, ok && !(onlyStrings && !isStr) && !(isStr && ve-i > p.lim.MaxStringLen+2)
		})
	if !ok {
		return nil, 0, false
	}
	if len(kvs) == 0 {
		return nil, i, true
	}
	n := 2
	for _, e := range kvs {
		n += len(e.k) + len(e.v) + 4
	}
	p.kv = kvs
	slices.SortFunc(kvs, func(a, b kv) int { return bytes.Compare(a.k, b.k) })
	for k := 1; k < len(kvs); k++ {
		if bytes.Equal(kvs[k].k, kvs[k-1].k) {
			return nil, 0, false // duplicate key: the reference keeps the last
		}
	}
	p.arena.start(n)
	mark := len(p.arena.buf)
	b := append(p.arena.buf, '{')
	for k, e := range kvs {
		if k > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, e.k...)
		b = append(b, '"', ':')
		b = append(b, e.v...)
	}
	p.arena.buf = append(b, '}')
	return p.arena.end(mark), i, true
}

// scanKey scans an object key that needs no decoding: no escapes, valid
// UTF-8 (the reference decodes keys, replacing invalid UTF-8).
func scanKey(raw []byte, i int) (int, bool) {
	e, plain, ok := scanString(raw, i)
	if !ok {
		return 0, false
	}
	if !plain {
		k := raw[i+1 : e-1]
		if bytes.IndexByte(k, '\\') >= 0 || !utf8.Valid(k) {
			return 0, false
		}
	}
	return e, true
}

// htmlSafe reports whether json.Marshal writes the plain ASCII string s
// unescaped.
func htmlSafe(s []byte) bool {
	for _, c := range s {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// prediction parses the prediction at raw[i] as parsePrediction does.
func (p *fastParser) prediction(raw []byte, i int) ([]byte, int, bool) {
	switch c := raw[i]; {
	case c == '"':
		e, plain, ok := scanString(raw, i)
		if !ok || !plain || e-i == 2 || e-i-2 > p.lim.MaxStringLen || !htmlSafe(raw[i+1:e-1]) {
			return nil, 0, false
		}
		p.arena.start(e - i)
		mark := len(p.arena.buf)
		p.arena.buf = append(p.arena.buf, raw[i:e]...)
		return p.arena.end(mark), e, true
	case c == '-' || c >= '0' && c <= '9':
		e, ok := scanNumber(raw, i)
		if !ok {
			return nil, 0, false
		}
		f, err := strconv.ParseFloat(string(raw[i:e]), 64)
		if err != nil || math.IsInf(f, 0) {
			return nil, 0, false
		}
		p.arena.start(32)
		mark := len(p.arena.buf)
		p.arena.buf = appendFloat(p.arena.buf, f)
		return p.arena.end(mark), e, true
	case c == '{':
		kvs, i, ok := p.members(raw, i, p.lim.MaxFeatures,
			func(i int) (int, bool) {
				ke, plain, ok := scanString(raw, i)
				return ke, ok && plain && ke-i != 2 && ke-i-2 <= p.lim.MaxKeyLen && htmlSafe(raw[i+1:ke-1])
			},
			func(i int) (int, bool) { return scanNumber(raw, i) })
		if !ok || len(kvs) == 0 {
			return nil, 0, false
		}
		n := 2 + 32*len(kvs)
		for _, e := range kvs {
			n += len(e.k)
		}
		p.kv = kvs
		slices.SortFunc(kvs, func(a, b kv) int { return bytes.Compare(a.k, b.k) })
		p.arena.start(n)
		mark := len(p.arena.buf)
		b := append(p.arena.buf, '{')
		for k, e := range kvs {
			if k > 0 {
				if bytes.Equal(e.k, kvs[k-1].k) {
					return nil, 0, false
				}
				b = append(b, ',')
			}
			f, err := strconv.ParseFloat(string(e.v), 64)
			if err != nil || !(f >= 0 && f <= 1) {
				return nil, 0, false
			}
			b = append(b, '"')
			b = append(b, e.k...)
			b = append(b, '"', ':')
			b = appendFloat(b, f)
		}
		p.arena.buf = append(b, '}')
		return p.arena.end(mark), i, true
	}
	return nil, 0, false
}

// appendFloat appends f as encoding/json writes a float64.
func appendFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}
