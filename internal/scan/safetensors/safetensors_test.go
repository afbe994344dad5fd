package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func file(header string, data int) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, uint64(len(header)))
	b.WriteString(header)
	b.Write(make([]byte, data))
	return b.Bytes()
}

func TestRules(t *testing.T) {
	cases := []struct {
		name   string
		header string
		data   int
		ok     bool
	}{
		{"valid", `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{"k":"v"}}  `, 8, true},
		{"empty", `{}`, 0, true},
		{"scalar", `{"a":{"dtype":"F64","shape":[],"data_offsets":[0,8]}}`, 8, true},
		{"not object", `[1]`, 0, false},
		{"gap at start", `{"a":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}`, 3, false},
		{"size mismatch", `{"a":{"dtype":"F16","shape":[3],"data_offsets":[0,4]}}`, 4, false},
		{"data longer", `{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}`, 3, false},
		{"negative shape", `{"a":{"dtype":"U8","shape":[-2],"data_offsets":[0,2]}}`, 2, false},
		{"duplicate", `{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, 1, false},
		{"metadata not strings", `{"__metadata__":{"k":["v"]}}`, 0, false},
		{"missing field", `{"a":{"dtype":"U8","shape":[1]}}`, 1, false},
		{"trailing", `{} x`, 0, false},
		{"overflow shape", `{"a":{"dtype":"U8","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,0]}}`, 0, false},
	}
	for _, c := range cases {
		b := file(c.header, c.data)
		_, err := Validate(bytes.NewReader(b), int64(len(b)))
		if (err == nil) != c.ok {
			t.Errorf("%s: err %v, want ok=%v", c.name, err, c.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v does not wrap ErrInvalid", c.name, err)
		}
	}
}

func FuzzValidate(f *testing.F) {
	paths, _ := filepath.Glob("../testdata/*/*.safetensors")
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := Validate(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("%v does not wrap ErrInvalid", err)
			}
			return
		}
		// Property: a valid header's tensors tile the data exactly.
		var end uint64
		for _, tn := range h.Tensors {
			if tn.Begin != end {
				t.Fatalf("tensor %q starts at %d, want %d", tn.Name, tn.Begin, end)
			}
			end = tn.End
		}
		if end != uint64(len(data))-8-h.Size {
			t.Fatalf("tensors end at %d of %d data bytes", end, uint64(len(data))-8-h.Size)
		}
	})
}
