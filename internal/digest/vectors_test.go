package digest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custody-ml/custody/internal/testvectors"
)

// The fixtures of sigstore/model-transparency tests/conftest.py, rebuilt
// byte for byte; the expected manifests are that project's golden files in
// ../shared/vectors.
const knownModelText = "This is a simple model"

func makeFixture(t *testing.T, name string) string {
	t.Helper()
	dir := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	switch name {
	case "sample_model_file":
		write("file", knownModelText)
		return filepath.Join(dir, "file")
	case "empty_model_file":
		write("file", "")
		return filepath.Join(dir, "file")
	case "sample_model_folder":
		for i := range 2 {
			for j := range 3 {
				write(fmt.Sprintf("root/d%d/f%d%d", i, i, j), fmt.Sprintf("This is file f%d%d in d%d.", i, j, i))
			}
		}
		for i := range 4 {
			write(fmt.Sprintf("root/f%d", i), fmt.Sprintf("This is file f%d in root.", i))
		}
	case "empty_model_folder":
		if err := os.Mkdir(filepath.Join(dir, "root"), 0o755); err != nil {
			t.Fatal(err)
		}
	case "model_folder_with_empty_file":
		write("root/empty_file", "")
	case "deep_model_folder":
		for i := range 4 {
			write(fmt.Sprintf("root/d0/d1/d2/d3/d4/f%d", i), fmt.Sprintf("This is file f%d.", i))
		}
	case "symlink_model_folder":
		// The upstream fixture links to a file outside the model root;
		// custody refuses that (see TestRefusals), so the link here is a
		// relative one to an ignored file inside the root.
		write("root/.git/file", knownModelText)
		if err := os.Symlink(".git/file", filepath.Join(dir, "root/symlink_file")); err != nil {
			t.Fatal(err)
		}
		return filepath.Join(dir, "root")
	default:
		t.Fatalf("unknown fixture %s", name)
	}
	return filepath.Join(dir, "root")
}

// readGolden parses the upstream golden manifest: "name:hex" lines, or
// "name:start:end:hex" for shards; names of single files are ".".
func readGolden(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		i := strings.LastIndexByte(line, ':')
		out[line[:i]] = line[i+1:]
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSerializationVectors(t *testing.T) {
	base := testvectors.Path(t, "sigstore-model-transparency/tests/_serialization/testdata")
	type tc struct {
		golden string
		shard  int64
	}
	var cases []tc
	for _, fx := range []string{"sample_model_file", "empty_model_file", "sample_model_folder", "empty_model_folder", "model_folder_with_empty_file", "deep_model_folder", "symlink_model_folder"} {
		cases = append(cases,
			tc{"file/TestSerializer/" + fx, 0},
			tc{"file_shard/TestSerializer/" + fx, DefaultShardSize},
			tc{"file_shard/TestSerializer/" + fx + "_small_shards", 8})
	}
	for _, c := range cases {
		t.Run(c.golden, func(t *testing.T) {
			goldenPath := filepath.Join(base, c.golden)
			if _, err := os.Stat(goldenPath); err != nil {
				t.Fatalf("golden file missing: %v", err)
			}
			want := readGolden(t, goldenPath)
			fx := strings.TrimSuffix(filepath.Base(c.golden), "_small_shards")
			model := makeFixture(t, fx)
			m, err := Hash(context.Background(), model, Options{ShardSize: c.shard, AllowSymlinks: true})
			if fx == "empty_model_folder" {
				// Upstream writes an empty manifest; OMS section 6.1 requires
				// refusing a model with no files, and custody does.
				if len(want) != 0 || !errors.Is(err, ErrEmptyModel) {
					t.Fatalf("empty folder: got %v, want ErrEmptyModel (golden %v)", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, r := range m.Resources {
				name := r.Name
				if m.Kind == KindFile { // OMS names a single file by its basename, upstream by "."
					name = "." + strings.TrimPrefix(name, m.Name)
				}
				got[name] = r.Digest
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("manifest differs from upstream golden file\n got: %v\nwant: %v", got, want)
			}
		})
	}
}

// upstreamStatement is the part of an upstream golden statement the tests use.
type upstreamStatement struct {
	Subject []struct {
		Digest map[string]string `json:"digest"`
	} `json:"subject"`
	Predicate struct {
		Resources []Resource `json:"resources"`
	} `json:"predicate"`
}

func readStatement(t *testing.T, path string) upstreamStatement {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var st upstreamStatement
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestPayloadVectors checks the OMS root (the statement subject digest)
// against the statements upstream signs, for the "files" method, where the
// upstream resource order equals the OMS byte order for these names.
func TestPayloadVectors(t *testing.T) {
	base := testvectors.Path(t, "sigstore-model-transparency/tests/_signing/testdata/signing/TestPayload")
	for _, fx := range []string{"sample_model_file", "sample_model_folder", "deep_model_folder", "model_folder_with_empty_file"} {
		t.Run(fx, func(t *testing.T) {
			st := readStatement(t, filepath.Join(base, fx))
			m, err := Hash(context.Background(), makeFixture(t, fx), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := m.OMSRoot.Hex(), st.Subject[0].Digest["sha256"]; got != want {
				t.Errorf("oms_root = %s, upstream subject digest %s", got, want)
			}
			if d := DiffResources(st.Predicate.Resources, m.Resources, false); !d.Empty() {
				t.Errorf("resources differ from upstream statement:\n%s", d)
			}
		})
	}
}

// TestPayloadVectorsShards checks that the upstream subject digest of a
// sharded statement follows from its resources in upstream (offset) order,
// and that custody's resources equal upstream's as a set.
func TestPayloadVectorsShards(t *testing.T) {
	base := testvectors.Path(t, "sigstore-model-transparency/tests/_signing/testdata/signing/TestPayload")
	for _, fx := range []string{"sample_model_folder_small_shards", "deep_model_folder_small_shards", "sample_model_file_small_shards"} {
		t.Run(fx, func(t *testing.T) {
			st := readStatement(t, filepath.Join(base, fx))
			root, err := OMSRoot(st.Predicate.Resources)
			if err != nil {
				t.Fatal(err)
			}
			if root.Hex() != st.Subject[0].Digest["sha256"] {
				t.Errorf("root over upstream order = %s, upstream %s", root.Hex(), st.Subject[0].Digest["sha256"])
			}
			m, err := Hash(context.Background(), makeFixture(t, strings.TrimSuffix(fx, "_small_shards")), Options{ShardSize: 8})
			if err != nil {
				t.Fatal(err)
			}
			// Upstream labels shard resources "sha256-sharded-8"; compare digests only.
			for i := range st.Predicate.Resources {
				st.Predicate.Resources[i].Algorithm = "sha256"
			}
			if d := DiffResources(st.Predicate.Resources, m.Resources, true); !d.Empty() {
				t.Errorf("resources differ from upstream statement:\n%s", d)
			}
		})
	}
}
