package monitor

import (
	"math"
	"slices"
	"strconv"
)

// Float is a float64 that survives JSON: NaN is written as null and ±Inf as
// the strings "+Inf" and "-Inf"; other values in the shortest form that
// reads back exactly.
type Float float64

// MarshalJSON implements json.Marshaler.
func (f Float) MarshalJSON() ([]byte, error) {
	v := float64(f)
	switch {
	case math.IsNaN(v):
		return []byte("null"), nil
	case math.IsInf(v, 1):
		return []byte(`"+Inf"`), nil
	case math.IsInf(v, -1):
		return []byte(`"-Inf"`), nil
	}
	return strconv.AppendFloat(nil, v, 'g', -1, 64), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (f *Float) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case "null":
		*f = Float(math.NaN())
		return nil
	case `"+Inf"`:
		*f = Float(math.Inf(1))
		return nil
	case `"-Inf"`:
		*f = Float(math.Inf(-1))
		return nil
	}
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return err
	}
	*f = Float(v)
	return nil
}

// sortFloats sorts finite numbers ascending: by comparison for short
// slices, by a least-significant-digit radix sort on the order-preserving
// bit pattern (16-bit digits, four passes) for long ones.
func sortFloats(x []float64) {
	if len(x) < 1<<14 {
		slices.Sort(x)
		return
	}
	keys := make([]uint64, len(x))
	for i, v := range x {
		u := math.Float64bits(v)
		if u>>63 == 1 {
			u = ^u
		} else {
			u |= 1 << 63
		}
		keys[i] = u
	}
	var count [4][1 << 16]int
	for _, k := range keys {
		count[0][k&0xffff]++
		count[1][k>>16&0xffff]++
		count[2][k>>32&0xffff]++
		count[3][k>>48]++
	}
	buf := make([]uint64, len(keys))
	src, dst := keys, buf
	for pass := 0; pass < 4; pass++ {
		c := &count[pass]
		if c[src[0]>>(16*pass)&0xffff] == len(src) {
			continue // every key has the same digit
		}
		sum := 0
		for d := range c {
			c[d], sum = sum, sum+c[d]
		}
		shift := 16 * pass
		for _, k := range src {
			d := k >> shift & 0xffff
			dst[c[d]] = k
			c[d]++
		}
		src, dst = dst, src
	}
	for i, u := range src {
		if u>>63 == 1 {
			u &^= 1 << 63
		} else {
			u = ^u
		}
		x[i] = math.Float64frombits(u)
	}
}
