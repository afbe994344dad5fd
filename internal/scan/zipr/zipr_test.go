package zipr

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestReadsWhatArchiveZipWrites(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, m := range []struct {
		name   string
		method uint16
	}{{"a/data.pkl", zip.Store}, {"b.txt", zip.Deflate}} {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: m.name, Method: m.method})
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, "content of "+m.name)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	for _, prefix := range []string{"", "#!/bin/sh\nexit 0\n"} {
		data := append([]byte(prefix), buf.Bytes()...)
		a, err := Open(bytes.NewReader(data), int64(len(data)), Limits{})
		if err != nil {
			t.Fatalf("prefix %q: %v", prefix, err)
		}
		if a.Prepended != int64(len(prefix)) || len(a.Members) != 2 {
			t.Fatalf("prefix %q: prepended %d, %d members", prefix, a.Prepended, len(a.Members))
		}
		for _, m := range a.Members {
			r, err := a.Open(m)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			if err != nil || string(got) != "content of "+m.Name {
				t.Errorf("%s: %q %v", m.Name, got, err)
			}
		}
	}
}

func TestTolerance(t *testing.T) {
	for name, want := range map[string]string{
		"zip_bad_crc.pt":        "archive/data.pkl",
		"zip64_evil.pt":         "archive/data.pkl",
		"zip_flags_deflate.pt":  "archive/data.pkl",
		"zip_hidden_member.zip": "hidden.pkl",
		"zip_name_mismatch.pt":  "archive/evil.pkl",
	} {
		data, err := os.ReadFile(filepath.Join("../testdata/malicious", name))
		if err != nil {
			t.Fatal(err)
		}
		a, err := Open(bytes.NewReader(data), int64(len(data)), Limits{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		found := false
		for _, m := range a.Members {
			if m.LocalName == want {
				r, err := a.Open(m)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				b, _ := io.ReadAll(r)
				found = bytes.HasPrefix(b, []byte{0x80, 0x02})
			}
		}
		if !found {
			t.Errorf("%s: member %s not readable as the pickle it holds", name, want)
		}
	}
}

func FuzzOpen(f *testing.F) {
	paths, _ := filepath.Glob("../testdata/*/*")
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte("PK\x05\x06")) {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := Open(bytes.NewReader(data), int64(len(data)), Limits{MaxMembers: 1000})
		if err != nil {
			return
		}
		for _, m := range a.Members {
			r, err := a.Open(m)
			if err != nil {
				continue
			}
			// Bounded: at most 1 MiB per member.
			_, _ = io.Copy(io.Discard, io.LimitReader(r, 1<<20))
		}
	})
}
