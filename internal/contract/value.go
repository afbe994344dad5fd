package contract

import (
	"bytes"
	"math"
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// Kind is the kind of one value as the reader saw it.
type Kind uint8

const (
	// KindNull is a missing value: a CSV field listed in null_values, a JSON
	// null or absent key, a Parquet null.
	KindNull Kind = iota
	// KindText is untyped text (CSV): its type is whatever it parses as.
	KindText
	// KindString is a typed string (JSON string, Parquet byte array).
	KindString
	// KindInt is a typed integer (JSON number without fraction or exponent,
	// Parquet INT32/INT64).
	KindInt
	// KindFloat is a typed floating-point number (other JSON numbers,
	// Parquet FLOAT/DOUBLE).
	KindFloat
	// KindBool is a typed boolean.
	KindBool
	// KindOther is a nested JSON value (object or array), kept as raw JSON.
	KindOther
)

// Cell is one value of one record. Raw is its text (for numbers and
// booleans, their literal); it aliases reader buffers and is valid only until
// the reader's next call.
type Cell struct {
	Raw []byte
	// num caches the numeric view: numState 0 = not computed, 1 = numeric,
	// 2 = not numeric.
	num      float64
	Kind     Kind
	numState uint8
}

func (c *Cell) reset(k Kind, raw []byte) {
	c.Kind, c.Raw, c.numState = k, raw, 0
}

func (c *Cell) setNum(k Kind, raw []byte, f float64) {
	c.Kind, c.Raw, c.num, c.numState = k, raw, f, 1
}

func bstr(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// Float returns the cell's numeric value: typed numbers as they are, text
// that strconv.ParseFloat accepts (decimal, exponent, "NaN", "Inf"), booleans
// never.
func (c *Cell) Float() (float64, bool) {
	switch c.numState {
	case 1:
		return c.num, true
	case 2:
		return 0, false
	}
	ok := false
	if c.Kind == KindText {
		if c.num, ok = fastFloat(c.Raw); !ok {
			var err error
			c.num, err = strconv.ParseFloat(bstr(trimSpace(c.Raw)), 64)
			ok = err == nil || isRangeErr(err)
		}
	}
	if ok {
		c.numState = 1
	} else {
		c.numState = 2
	}
	return c.num, ok
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

func trimSpace(b []byte) []byte {
	if len(b) > 0 && (b[0] == ' ' || b[len(b)-1] == ' ' || b[0] == '\t' || b[len(b)-1] == '\t') {
		return bytes.TrimSpace(b)
	}
	return b
}

// IsInt reports whether the value is an integer: a typed integer, or text
// that strconv.ParseInt accepts as a base-10 int64.
func (c *Cell) IsInt() bool {
	switch c.Kind {
	case KindInt:
		return true
	case KindText:
		_, err := strconv.ParseInt(bstr(trimSpace(c.Raw)), 10, 64)
		return err == nil
	}
	return false
}

// IsFloat reports whether the value is a number (any numeric kind, or text
// that parses as a float).
func (c *Cell) IsFloat() bool {
	switch c.Kind {
	case KindInt, KindFloat:
		return true
	case KindText:
		_, ok := c.Float()
		return ok
	}
	return false
}

// Bool returns the boolean view: typed booleans, or text spelled as pandas'
// default true/false values (True, TRUE, true, False, FALSE, false).
func (c *Cell) Bool() (v, ok bool) {
	switch c.Kind {
	case KindBool:
		return len(c.Raw) > 0 && c.Raw[0] == 't', true
	case KindText:
		switch bstr(c.Raw) {
		case "True", "TRUE", "true":
			return true, true
		case "False", "FALSE", "false":
			return false, true
		}
	}
	return false, false
}

// IsString reports whether the value counts as a string: any CSV text, a
// typed string.
func (c *Cell) IsString() bool { return c.Kind == KindText || c.Kind == KindString }

// RuneLen is the length in Unicode code points (Python's len(str)).
func (c *Cell) RuneLen() int { return utf8.RuneCount(c.Raw) }

// exampleValue renders the value for a report, truncated to 200 bytes.
func (c *Cell) exampleValue() any {
	switch c.Kind {
	case KindNull:
		return nil
	case KindInt, KindFloat:
		if f, ok := c.Float(); ok && !math.IsNaN(f) && !math.IsInf(f, 0) {
			return f
		}
	case KindBool:
		v, _ := c.Bool()
		return v
	}
	s := c.Raw
	if len(s) > 200 {
		s = s[:200]
		for len(s) > 0 && !utf8.Valid(s) {
			s = s[:len(s)-1]
		}
		return string(s) + "…"
	}
	return string(s)
}

var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// fastFloat parses the common case "[-+]digits[.digits]" whose digits, as an
// integer m, satisfy m < 2^53, with at most 22 digits after the point: then
// m and 10^k are exact doubles and one IEEE division gives the correctly
// rounded result, the value strconv.ParseFloat returns (Clinger's fast
// path). Anything else reports false and is left to strconv.
func fastFloat(b []byte) (float64, bool) {
	i, neg := 0, false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg = b[0] == '-'
		i = 1
	}
	var m uint64
	start := i
	for ; i < len(b) && b[i]-'0' < 10; i++ {
		m = m*10 + uint64(b[i]-'0')
	}
	nd, frac := i-start, 0
	if i < len(b) && b[i] == '.' {
		i++
		fs := i
		for ; i < len(b) && b[i]-'0' < 10; i++ {
			m = m*10 + uint64(b[i]-'0')
		}
		frac = i - fs
		nd += frac
	}
	// At most 19 digits: m cannot have wrapped around.
	if i != len(b) || nd == 0 || nd > 19 || m >= 1<<53 || frac > 22 {
		return 0, false
	}
	f := float64(m) / pow10[frac]
	if neg {
		f = -f
	}
	return f, true
}
