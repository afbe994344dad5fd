package scan

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custody-ml/custody/internal/scan/policy"
)

func scanFile(t *testing.T, s *Scanner, path string) Result {
	t.Helper()
	r, err := s.ScanFile(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func hasFinding(r Result, rule string, v Verdict) bool {
	for _, f := range r.Findings {
		if f.Rule == rule && f.Verdict == v {
			return true
		}
	}
	return false
}

// TestBenignFixtures: files written by the real libraries
// (testdata/make_fixtures.py) are safe, or unknown when they hold library
// classes, and safe once a policy allows those.
func TestBenignFixtures(t *testing.T) {
	def := New(nil, Limits{})
	pol, err := policy.Parse([]byte(`{"allow": ["sklearn.*", "xgboost.core.Booster", "xgboost.sklearn.XGBClassifier"]}`), "test")
	if err != nil {
		t.Fatal(err)
	}
	allowing := New(pol, Limits{})
	want := map[string]struct {
		verdict Verdict
		format  string
		// stays: not safe even under the allowing policy (code the scanner
		// cannot analyse).
		stays bool
	}{
		"array.npy":                  {Safe, "npy", false},
		"arrays.npz":                 {Safe, "zip", false},
		"arrays_compressed.npz":      {Safe, "zip", false},
		"card.png":                   {Safe, "image", false},
		"config.json":                {Safe, "text", false},
		"containers_p5.pkl":          {Safe, "pickle", false},
		"dense.h5":                   {Safe, "hdf5", false},
		"dense.keras":                {Safe, "zip", false},
		"joblib_arrays.joblib":       {Safe, "pickle", false},
		"joblib_arrays.joblib.gz":    {Safe, "gzip>pickle", false},
		"model.gguf":                 {Safe, "gguf", false},
		"model.onnx":                 {Safe, "onnx", false},
		"model.safetensors":          {Safe, "safetensors", false},
		"numpy_arrays.pkl":           {Safe, "pickle", false},
		"numpy_arrays_p5.pkl":        {Safe, "pickle", false},
		"object_array.npy":           {Safe, "npy", false},
		"sklearn_logreg.joblib":      {Unknown, "pickle", false},
		"sklearn_logreg.joblib.bz2":  {Unknown, "bzip2>pickle", false},
		"sklearn_logreg.joblib.gz":   {Unknown, "gzip>pickle", false},
		"sklearn_logreg.joblib.lzma": {Unknown, "lzma>pickle", false},
		"sklearn_logreg.joblib.xz":   {Unknown, "xz>pickle", false},
		"sklearn_logreg.joblib.z":    {Unknown, "zlib>pickle", false},
		"sklearn_logreg.pkl":         {Unknown, "pickle", false},
		"sklearn_logreg_p0.pkl":      {Unknown, "pickle", false},
		"sklearn_logreg_p2.pkl":      {Unknown, "pickle", false},
		"tokenizer.model":            {Safe, "sentencepiece", false},
		"torch_checkpoint_p4.pt":     {Safe, "zip", false},
		"torch_legacy.pt":            {Safe, "pickle", false},
		"torch_state_dict.pt":        {Safe, "zip", false},
		"torchscript_linear.pt":      {Unknown, "zip", true},
		"xgboost_classifier.pkl":     {Unknown, "pickle", false},
	}
	entries, err := os.ReadDir("testdata/benign")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(want) {
		t.Errorf("testdata/benign has %d files, the table %d", len(entries), len(want))
	}
	for name, w := range want {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join("testdata/benign", name)
			r := scanFile(t, def, p)
			if r.Verdict != w.verdict || r.Format != w.format {
				t.Errorf("default policy: %s (%s), want %s (%s); findings %+v", r.Verdict, r.Format, w.verdict, w.format, r.Findings)
			}
			if r2 := scanFile(t, allowing, p); (r2.Verdict == Safe) == w.stays {
				t.Errorf("allowing policy: %s; findings %+v", r2.Verdict, r2.Findings)
			}
		})
	}
}

// TestMaliciousFixtures: one file per technique, built from raw opcodes.
func TestMaliciousFixtures(t *testing.T) {
	s := New(nil, Limits{})
	want := map[string]struct {
		verdict Verdict
		rule    string // a finding that must be present
	}{
		"build_global.pkl":                         {Dangerous, "pickle/build-global"},
		"computed_import.pkl":                      {Dangerous, "pickle/computed-import"},
		"dotted_collections_os.pkl":                {Dangerous, "pickle/denied-import"},
		"dotted_pathlib_os_system.pkl":             {Dangerous, "pickle/denied-import"},
		"ext1.pkl":                                 {Unknown, "pickle/extension-code"},
		"ext2.pkl":                                 {Unknown, "pickle/extension-code"},
		"ext4.pkl":                                 {Unknown, "pickle/extension-code"},
		"frame_overlong.pkl":                       {Dangerous, "pickle/denied-import"},
		"getattr_chain.pkl":                        {Dangerous, "pickle/denied-import"},
		"gguf_bad_type.gguf":                       {Malformed, "gguf/invalid"},
		"gguf_bad_version.gguf":                    {Malformed, "gguf/invalid"},
		"gguf_truncated.gguf":                      {Malformed, "gguf/invalid"},
		"global_os_system.pkl":                     {Dangerous, "pickle/denied-import"},
		"inst.pkl":                                 {Dangerous, "pickle/denied-import"},
		"joblib_evil.joblib.bz2":                   {Dangerous, "pickle/denied-import"},
		"joblib_object_array_evil.joblib":          {Dangerous, "pickle/denied-import"},
		"joblib_evil.joblib.gz":                    {Dangerous, "pickle/denied-import"},
		"joblib_evil.joblib.lzma":                  {Dangerous, "pickle/denied-import"},
		"joblib_evil.joblib.xz":                    {Dangerous, "pickle/denied-import"},
		"joblib_evil.joblib.z":                     {Dangerous, "pickle/denied-import"},
		"keras_lambda.keras":                       {Dangerous, "keras/lambda"},
		"lambda.h5":                                {Dangerous, "keras/lambda"},
		"newobj.pkl":                               {Dangerous, "pickle/denied-import"},
		"newobj_ex.pkl":                            {Dangerous, "pickle/denied-import"},
		"npz_evil.npz":                             {Dangerous, "pickle/denied-import"},
		"obj.pkl":                                  {Dangerous, "pickle/denied-import"},
		"object_array_evil.npy":                    {Dangerous, "pickle/denied-import"},
		"object_array_spelled_evil.npy":            {Dangerous, "pickle/denied-import"},
		"onnx_absolute.onnx":                       {Dangerous, "onnx/external-data-escape"},
		"onnx_escape.onnx":                         {Dangerous, "onnx/external-data-escape"},
		"safetensors_bad_dtype.safetensors":        {Malformed, "safetensors/invalid"},
		"safetensors_gap.safetensors":              {Malformed, "safetensors/invalid"},
		"safetensors_header_too_big.safetensors":   {Malformed, "safetensors/invalid"},
		"safetensors_metadata_not_str.safetensors": {Malformed, "safetensors/invalid"},
		"safetensors_overlap.safetensors":          {Malformed, "safetensors/invalid"},
		"stack_global_longmemo.pkl":                {Dangerous, "pickle/denied-import"},
		"stack_global_memo.pkl":                    {Dangerous, "pickle/denied-import"},
		"stacked_second_evil.pkl":                  {Dangerous, "pickle/denied-import"},
		"tar_evil.tar":                             {Dangerous, "pickle/denied-import"},
		"tar_evil.tar.gz":                          {Dangerous, "pickle/denied-import"},
		"torch_legacy_evil.pt":                     {Dangerous, "pickle/denied-import"},
		"torch_legacy_tar_evil.tar":                {Dangerous, "pickle/denied-import"},
		"truncated_after_reduce.pkl":               {Dangerous, "pickle/truncated"},
		"zip64_evil.pt":                            {Dangerous, "pickle/denied-import"},
		"zip_bad_crc.pt":                           {Dangerous, "pickle/denied-import"},
		"zip_flags_deflate.pt":                     {Dangerous, "pickle/denied-import"},
		"zip_hidden_member.zip":                    {Dangerous, "pickle/denied-import"},
		"zip_name_mismatch.pt":                     {Dangerous, "pickle/denied-import"},
		"zip_nested.zip":                           {Dangerous, "pickle/denied-import"},
		"zip_prepended.pt":                         {Dangerous, "pickle/denied-import"},
		"zip_renamed_member.zip":                   {Dangerous, "pickle/denied-import"},
		"zip_storage_record.pt":                    {Dangerous, "pickle/denied-import"},
	}
	entries, err := os.ReadDir("testdata/malicious")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(want) {
		t.Errorf("testdata/malicious has %d files, the table %d", len(entries), len(want))
	}
	for name, w := range want {
		t.Run(name, func(t *testing.T) {
			r := scanFile(t, s, filepath.Join("testdata/malicious", name))
			if r.Verdict != w.verdict {
				t.Errorf("verdict %s, want %s; findings %+v", r.Verdict, w.verdict, r.Findings)
			}
			found := false
			for _, f := range r.Findings {
				if f.Rule == w.rule {
					found = true
				}
			}
			if !found {
				t.Errorf("no %s finding in %+v", w.rule, r.Findings)
			}
		})
	}
}

func TestDangerousFindingLocatesMember(t *testing.T) {
	r := scanFile(t, New(nil, Limits{}), "testdata/malicious/zip_nested.zip")
	for _, f := range r.Findings {
		if f.Verdict == Dangerous {
			if f.Member != "inner.zip!deep/model.bin" || f.Module != "posix" || f.Name != "system" || f.Offset != 2 {
				t.Errorf("finding %+v: want member inner.zip!deep/model.bin, posix.system at offset 2", f)
			}
			return
		}
	}
	t.Fatal("no dangerous finding")
}

func TestPolicyCannotAllowDenied(t *testing.T) {
	pol, err := policy.Parse([]byte(`{"allow": ["posix.*", "os.system", "pathlib.*"]}`), "test")
	if err != nil {
		t.Fatal(err)
	}
	s := New(pol, Limits{})
	for _, name := range []string{"global_os_system.pkl", "dotted_pathlib_os_system.pkl", "joblib_evil.joblib.gz"} {
		if r := scanFile(t, s, filepath.Join("testdata/malicious", name)); r.Verdict != Dangerous {
			t.Errorf("%s: %s under a policy allowing it, want dangerous", name, r.Verdict)
		}
	}
}

func TestDecompressionBomb(t *testing.T) {
	var buf bytes.Buffer
	zw := mustGzip(t, &buf)
	zeros := make([]byte, 1<<20)
	for i := 0; i < 80; i++ { // 80 MiB of zeros, ~80 KiB compressed
		if _, err := zw.Write(zeros); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	s := New(nil, Limits{MaxRatio: 100})
	r := s.Scan(t.Context(), "bomb.gz", bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if r.Verdict == Safe || !hasFinding(r, "limit/decompression", Malformed) {
		t.Errorf("bomb: %s %+v, want a limit/decompression finding", r.Verdict, r.Findings)
	}
}

func TestTextAndUnknownBinary(t *testing.T) {
	s := New(nil, Limits{})
	cases := []struct {
		data string
		want Verdict
	}{
		{"# README\nhello\n", Safe},
		{"", Safe},
		{"\x00\x01\x02\xff binary", Unknown},
		// Text whose first bytes pass zlib's header check.
		{"x^ not compressed at all", Safe},
		{"x not compressed at all", Safe},
		// Trailing data after a pickle: whitespace is fine, anything else
		// is not analysed, hence not safe.
		{"\x80\x02N.\n", Safe},
		{"\x80\x02N.\x00\x01raw", Unknown},
		// Text starting with GLOBAL's opcode: the "names" are not
		// importable, so no unpickler gets past them.
		{"cuda 11.8\nbuilt with gcc\n", Safe},
		// Text that is a protocol 0 pickle importing os.system.
		{"cos\nsystem\n(S'ls'\ntR.", Dangerous},
	}
	for _, c := range cases {
		r := s.Scan(t.Context(), "x", strings.NewReader(c.data), int64(len(c.data)))
		if r.Verdict != c.want {
			t.Errorf("%q: %s, want %s (%+v)", c.data, r.Verdict, c.want, r.Findings)
		}
	}
}

func mustGzip(t *testing.T, w *bytes.Buffer) *gzip.Writer {
	t.Helper()
	return gzip.NewWriter(w)
}

// TestOverlappingMembers: two central directory entries sharing one local
// header (the building block of zip quines) are malformed, not scanned twice.
func TestOverlappingMembers(t *testing.T) {
	data, err := os.ReadFile("testdata/malicious/zip_renamed_member.zip")
	if err != nil {
		t.Fatal(err)
	}
	cd := bytes.Index(data, []byte("PK\x01\x02"))
	end := bytes.LastIndex(data, []byte("PK\x05\x06"))
	entry := data[cd:end]
	var z []byte
	z = append(z, data[:end]...)
	z = append(z, entry...) // the same entry again
	eocd := append([]byte(nil), data[end:]...)
	binary.LittleEndian.PutUint16(eocd[8:], 2)
	binary.LittleEndian.PutUint16(eocd[10:], 2)
	binary.LittleEndian.PutUint32(eocd[12:], uint32(2*len(entry)))
	z = append(z, eocd...)
	r := New(nil, Limits{}).Scan(t.Context(), "quine.zip", bytes.NewReader(z), int64(len(z)))
	if !hasFinding(r, "zip/overlap", Malformed) || !hasFinding(r, "pickle/denied-import", Dangerous) {
		t.Errorf("%s %+v", r.Verdict, r.Findings)
	}
}

// TestArchivesInTar: zips inside a plain tar are scanned in place; inside a
// tar.gz they are copied (memory, or a temporary file past 32 MiB).
func TestArchivesInTar(t *testing.T) {
	good, err := os.ReadFile("testdata/benign/torch_state_dict.pt")
	if err != nil {
		t.Fatal(err)
	}
	evil, err := os.ReadFile("testdata/malicious/zip_bad_crc.pt")
	if err != nil {
		t.Fatal(err)
	}
	// A torch-style zip over 32 MiB: evil data.pkl and a large storage.
	var big bytes.Buffer
	zw := zip.NewWriter(&big)
	w, _ := zw.CreateHeader(&zip.FileHeader{Name: "archive/data.pkl", Method: zip.Store})
	w.Write([]byte("cos\nsystem\n(S'id'\ntR."))
	w, _ = zw.CreateHeader(&zip.FileHeader{Name: "archive/data/0", Method: zip.Store})
	w.Write(make([]byte, 33<<20))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	mk := func(files map[string][]byte, gz bool) []byte {
		var buf bytes.Buffer
		var out io.Writer = &buf
		var g *gzip.Writer
		if gz {
			g = gzip.NewWriter(&buf)
			out = g
		}
		tw := tar.NewWriter(out)
		for name, data := range files {
			tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg})
			tw.Write(data)
		}
		tw.Close()
		if g != nil {
			g.Close()
		}
		return buf.Bytes()
	}
	s := New(nil, Limits{})
	for _, gz := range []bool{false, true} {
		for _, c := range []struct {
			files map[string][]byte
			want  Verdict
		}{
			{map[string][]byte{"m/good.pt": good}, Safe},
			{map[string][]byte{"m/good.pt": good, "m/evil.pt": evil}, Dangerous},
			{map[string][]byte{"m/big.pt": big.Bytes()}, Dangerous},
		} {
			data := mk(c.files, gz)
			r := s.Scan(t.Context(), "x.tar", bytes.NewReader(data), int64(len(data)))
			if r.Verdict != c.want {
				t.Errorf("gz=%v %d files: %s, want %s (%+v)", gz, len(c.files), r.Verdict, c.want, r.Findings)
			}
		}
	}
}

func TestCancelledScanIsNotSafe(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	data, err := os.ReadFile("testdata/benign/torch_state_dict.pt")
	if err != nil {
		t.Fatal(err)
	}
	r := New(nil, Limits{}).Scan(ctx, "x.pt", bytes.NewReader(data), int64(len(data)))
	if r.Verdict == Safe {
		t.Fatalf("cancelled scan is safe: %+v", r.Findings)
	}
}

// TestLegacyTorchTar: records separated by raw storage bytes are all read;
// a benign one is safe.
func TestLegacyTorchTar(t *testing.T) {
	rec := []byte("\x80\x02X\x01\x00\x00\x000X\x03\x00\x00\x00cpuctorch\nFloatStorage\n\x87.")
	storages := append([]byte("\x80\x02K\x01."), rec...)
	storages = append(storages, 2, 0, 0, 0, 0, 0, 0, 0)
	storages = append(storages, make([]byte, 8)...)
	tensors := []byte("\x80\x02K\x01.\x80\x02X\x01\x00\x00\x001X\x01\x00\x00\x000ctorch\nFloatTensor\n\x87.")
	tensors = append(tensors, 1, 0, 0, 0, 0, 0, 0, 0) // ndim 1, 4 skipped bytes
	tensors = append(tensors, make([]byte, 8+8+8)...) // size, stride, offset
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		data []byte
	}{{"sys_info", []byte("\x80\x02}.")}, {"tensors", tensors}, {"storages", storages}} {
		tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), Typeflag: tar.TypeReg})
		tw.Write(f.data)
	}
	tw.Close()
	r := New(nil, Limits{}).Scan(t.Context(), "old.pt", bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if r.Verdict != Unknown || len(r.Findings) != 1 || r.Findings[0].Name != "FloatTensor" {
		// torch.FloatTensor is not on the allowlist: unknown, and nothing else.
		t.Fatalf("%s %+v", r.Verdict, r.Findings)
	}
}

// TestPolyglotImage: a PNG with an evil zip appended is not an image.
func TestPolyglotImage(t *testing.T) {
	png, err := os.ReadFile("testdata/benign/card.png")
	if err != nil {
		t.Fatal(err)
	}
	z, err := os.ReadFile("testdata/malicious/zip_renamed_member.zip")
	if err != nil {
		t.Fatal(err)
	}
	data := append(png, z...)
	r := New(nil, Limits{}).Scan(t.Context(), "card.png", bytes.NewReader(data), int64(len(data)))
	if r.Verdict != Dangerous || r.Format != "image+zip" {
		t.Fatalf("%s %s %+v", r.Verdict, r.Format, r.Findings)
	}
}

// TestNpyDescr: numpy accepts any dtype spelling in the header; only plain
// numeric dtypes skip the data.
func TestNpyDescr(t *testing.T) {
	evil := []byte("\x80\x02cposix\nsystem\nX\x02\x00\x00\x00id\x85R.")
	npy := func(header string, data []byte) []byte {
		b := []byte("\x93NUMPY\x01\x00")
		b = binary.LittleEndian.AppendUint16(b, uint16(len(header)))
		return append(append(b, header...), data...)
	}
	cases := []struct {
		header string
		data   []byte
		want   Verdict
	}{
		{"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", make([]byte, 8), Safe},
		{"{'descr': '<M8[ns]', 'fortran_order': False, 'shape': (1,), }\n", make([]byte, 8), Safe},
		{"{'descr': '|O', 'fortran_order': False, 'shape': (1,), }\n", evil, Dangerous},
		{"{'descr': 'object', 'fortran_order': False, 'shape': (1,), }\n", evil, Dangerous},
		{`{"descr": "O", "fortran_order": False, "shape": (1,)}` + "\n", evil, Dangerous},
		{"{'descr': [('a', '<f8'), ('b', 'O')], 'fortran_order': False, 'shape': (1,), }\n", evil, Dangerous},
		// Looks plain, but the data is what numpy reads raw: not a pickle.
		{"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\n", evil, Safe},
		// Unusual spelling, raw data: not analysed.
		{"{'descr': 'float32', 'fortran_order': False, 'shape': (1,), }\n", []byte{0, 0, 0, 0}, Unknown},
		{"{'descr': '<f4', 'shape': (1,), }\n", nil, Malformed},
	}
	s := New(nil, Limits{})
	for _, c := range cases {
		data := npy(c.header, c.data)
		if r := s.Scan(t.Context(), "a.npy", bytes.NewReader(data), int64(len(data))); r.Verdict != c.want {
			t.Errorf("%s: %s, want %s (%+v)", c.header, r.Verdict, c.want, r.Findings)
		}
	}
}

// TestScanReader: a stream gets the same verdicts as random access.
func TestScanReader(t *testing.T) {
	s := New(nil, Limits{})
	for _, p := range []string{
		"testdata/benign/torch_state_dict.pt", "testdata/benign/model.safetensors", "testdata/benign/model.gguf",
		"testdata/benign/sklearn_logreg.joblib.gz", "testdata/malicious/zip_prepended.pt", "testdata/malicious/safetensors_gap.safetensors",
		"testdata/malicious/inst.pkl", "testdata/malicious/tar_evil.tar.gz",
	} {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		want := scanFile(t, s, p).Verdict
		if p == "testdata/malicious/zip_prepended.pt" {
			// The appended-zip check needs random access: a stream sees the
			// unrecognised prefix only.
			want = Unknown
		}
		if got := s.ScanReader(t.Context(), p, bytes.NewReader(data)); got.Verdict != want {
			t.Errorf("%s: stream %s, file %s (%+v)", p, got.Verdict, want, got.Findings)
		}
	}
}

// TestGIFPickle: "GIF89a" + 3 bytes is one BINFLOAT; what follows can be
// opcodes. Such a polyglot is a pickle, not an image.
func TestGIFPickle(t *testing.T) {
	data := []byte("GIF89a\x01\x00\x01" + "cos\nsystem\n(S'id'\ntR.")
	r := New(nil, Limits{}).Scan(t.Context(), "a.gif", bytes.NewReader(data), int64(len(data)))
	if r.Verdict != Dangerous {
		t.Fatalf("%s %s %+v", r.Verdict, r.Format, r.Findings)
	}
	gif := []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;")
	if r := New(nil, Limits{}).Scan(t.Context(), "b.gif", bytes.NewReader(gif), int64(len(gif))); r.Verdict != Safe || r.Format != "image" {
		t.Fatalf("plain gif: %s %s %+v", r.Verdict, r.Format, r.Findings)
	}
}

// TestTarPolyglot: a tar whose first member name is a protocol 0 pickle is
// a pickle too (pickle.load reads the name field as opcodes).
func TestTarPolyglot(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "cos\nsystem\n(S'id'\ntR.", Mode: 0o644, Size: 2, Typeflag: tar.TypeReg, Format: tar.FormatUSTAR})
	tw.Write([]byte("hi"))
	tw.Close()
	r := New(nil, Limits{}).Scan(t.Context(), "x.tar", bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if r.Verdict != Dangerous || !hasFinding(r, "format/polyglot", Unknown) {
		t.Fatalf("%s %s %+v", r.Verdict, r.Format, r.Findings)
	}
}
