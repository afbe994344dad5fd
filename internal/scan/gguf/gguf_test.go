package gguf

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestFixtures(t *testing.T) {
	ok, err := os.ReadFile("../testdata/benign/model.gguf")
	if err != nil {
		t.Fatal(err)
	}
	h, err := Validate(bytes.NewReader(ok), int64(len(ok)))
	if err != nil {
		t.Fatal(err)
	}
	if h.Version != 3 || h.KV != 3 || len(h.Tensors) != 1 || h.Tensors[0].Name != "w" || h.Alignment != 32 {
		t.Errorf("header %+v", h)
	}
	// Every truncation of a valid file is rejected.
	for n := 0; n < len(ok); n++ {
		if _, err := Validate(bytes.NewReader(ok[:n]), int64(n)); !errors.Is(err, ErrInvalid) {
			t.Fatalf("truncated to %d: err %v", n, err)
		}
	}
}

func FuzzValidate(f *testing.F) {
	paths, _ := filepath.Glob("../testdata/*/*.gguf")
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := Validate(bytes.NewReader(data), int64(len(data))); err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("%v does not wrap ErrInvalid", err)
		}
	})
}
