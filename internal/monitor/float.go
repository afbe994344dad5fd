package monitor

import (
	"math"
	"slices"
	"strconv"
	"unsafe"
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
// slices, by radix sort (see radixSortKeys) for long ones.
func sortFloats(x []float64) {
	if len(x) < 1<<12 {
		slices.Sort(x)
		return
	}
	keys := make([]uint64, len(x))
	for i, v := range x {
		keys[i] = floatKey(v)
	}
	copy(x, keysToFloats(radixSortKeys(keys, make([]uint64, len(keys)))))
}

// finiteSorted drops NaN and ±Inf (as Evidently does before every test)
// and returns the rest sorted ascending in a new slice.
func finiteSorted(x []float64) []float64 {
	keys := make([]uint64, len(x))
	n := 0
	for _, v := range x {
		if v-v == 0 { // neither NaN nor ±Inf
			keys[n] = floatKey(v)
			n++
		}
	}
	keys = keys[:n:n]
	if n < 1<<12 {
		out := keysToFloats(keys)
		slices.Sort(out)
		return out
	}
	buf := make([]uint64, n)
	return keysToFloats(radixSortKeys(keys, buf))
}

// floatKey maps a float64 to a uint64 with the same order (-0 before +0).
func floatKey(v float64) uint64 {
	u := math.Float64bits(v)
	if u>>63 == 1 {
		return ^u
	}
	return u | 1<<63
}

// keysToFloats turns keys back into their float64s in place and returns
// the same memory as a []float64.
func keysToFloats(keys []uint64) []float64 {
	for i, u := range keys {
		if u>>63 == 1 {
			keys[i] = u &^ (1 << 63)
		} else {
			keys[i] = ^u
		}
	}
	if len(keys) == 0 {
		return []float64{}
	}
	return unsafe.Slice((*float64)(unsafe.Pointer(&keys[0])), len(keys))
}

const (
	radixBits   = 11 // a digit's counts fit the L1 cache
	radixSize   = 1 << radixBits
	radixPasses = (64 + radixBits - 1) / radixBits
)

// radixSortKeys sorts keys with a least-significant-digit radix sort of
// 11-bit digits: one pass counts every digit, then one stable scatter per
// digit, skipping digits that are the same in every key. buf has the
// length of keys; the result is in keys or in buf.
func radixSortKeys(keys, buf []uint64) []uint64 {
	if len(keys) == 0 {
		return keys
	}
	var count [radixPasses][radixSize]int
	for _, k := range keys {
		for p := range radixPasses {
			count[p][k>>(radixBits*p)&(radixSize-1)]++
		}
	}
	src, dst := keys, buf
	for p := range radixPasses {
		c := &count[p]
		shift := radixBits * p
		if c[src[0]>>shift&(radixSize-1)] == len(src) {
			continue // every key has the same digit
		}
		sum := 0
		for d := range c {
			c[d], sum = sum, sum+c[d]
		}
		for _, k := range src {
			d := k >> shift & (radixSize - 1)
			dst[c[d]] = k
			c[d]++
		}
		src, dst = dst, src
	}
	return src
}
