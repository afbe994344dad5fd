package envcheck

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// debianPython is Debian's interpreter; its dist-packages directories hold
// real distributions installed by dpkg (egg-info and dist-info alike).
const debianPython = "/usr/bin/python3"

func requirePython(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(debianPython); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required in CI: %v", debianPython, err)
		}
		t.Skip(err)
	}
}

// importlibList asks Python's own importlib.metadata which distributions a
// path holds: the outside ground truth for ReadSitePackages.
func importlibList(t *testing.T, dir string) map[string]string {
	t.Helper()
	script := `import json, sys, importlib.metadata as m, re
out = {}
for d in m.distributions(path=[sys.argv[1]]):
    n = re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower()
    out.setdefault(n, d.version)
print(json.dumps(out))`
	out, err := exec.Command(debianPython, "-I", "-c", script, dir).Output()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestReadSitePackagesMatchesImportlib(t *testing.T) {
	requirePython(t)
	for _, dir := range []string{"/usr/lib/python3/dist-packages"} {
		if _, err := os.Stat(dir); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("Debian's dist-packages is required in CI: %v", err)
			}
			t.Skip(err)
		}
		pkgs, _, err := ReadSitePackages([]string{dir})
		if err != nil {
			t.Fatal(err)
		}
		want := importlibList(t, dir)
		if len(want) < 5 {
			t.Fatalf("only %d distributions in %s: not a useful ground truth", len(want), dir)
		}
		got := map[string]string{}
		for _, p := range pkgs {
			got[p.Name] = p.Version
		}
		for n, v := range want {
			if got[n] != v {
				t.Errorf("%s: custody read %q, importlib %q", n, got[n], v)
			}
		}
		for n := range got {
			if _, ok := want[n]; !ok {
				t.Errorf("%s: found by custody, not by importlib", n)
			}
		}
		t.Logf("%d distributions in %s agree with importlib.metadata", len(want), dir)
	}
}

func TestCaptureWithPython(t *testing.T) {
	requirePython(t)
	l, err := Capture(context.Background(), Options{Python: debianPython, ImageDigest: "sha256:" + strings.Repeat("ab", 32)})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(debianPython, "-c", "import platform; print(platform.python_version())").Output()
	if err != nil {
		t.Fatal(err)
	}
	if l.Python == nil || l.Python.Version != strings.TrimSpace(string(out)) {
		t.Fatalf("python %+v, want version %s", l.Python, out)
	}
	if len(l.Packages) < 5 || l.OS.Arch == "" {
		t.Fatalf("capture too thin: %d packages, os %+v", len(l.Packages), l.OS)
	}
	// The lock round-trips and a fresh capture does not drift from it.
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(l); err != nil {
		t.Fatal(err)
	}
	back, err := ReadLock(&buf)
	if err != nil {
		t.Fatal(err)
	}
	opts := CheckOptions(back, Options{ImageDigest: l.ImageDigest})
	cur, err := Capture(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if d := Compare(back, cur); !d.Empty() {
		t.Fatalf("fresh capture drifts from its own lock:\n%s", d)
	}
	// Without the image digest, the image drifts.
	opts.ImageDigest = ""
	cur, _ = Capture(context.Background(), opts)
	if d := Compare(back, cur); len(d.Other) != 1 || !strings.Contains(d.Other[0], "image digest") {
		t.Fatalf("image drift not reported: %+v", d)
	}
}

func writeDist(t *testing.T, dir, name, version string, egg bool) {
	t.Helper()
	meta := "Metadata-Version: 2.1\nName: " + name + "\nVersion: " + version + "\nSummary: x\n\nName: not-a-header\n"
	if egg {
		if err := os.WriteFile(filepath.Join(dir, name+"-"+version+".egg-info"), []byte(meta), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	d := filepath.Join(dir, name+"-"+version+".dist-info")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "METADATA"), []byte(meta), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestDrift(t *testing.T) {
	site := t.TempDir()
	writeDist(t, site, "numpy", "1.26.4", false)
	writeDist(t, site, "Torch_Vision", "0.17.0", true)
	writeDist(t, site, "requests", "2.31.0", false)
	lock, err := Capture(context.Background(), Options{SitePackages: []string{site}})
	if err != nil {
		t.Fatal(err)
	}
	if got := lock.Packages[2].Name; got != "torch-vision" {
		t.Fatalf("name not normalized: %s", got)
	}
	os.RemoveAll(filepath.Join(site, "numpy-1.26.4.dist-info"))
	writeDist(t, site, "numpy", "2.0.0", false)
	os.Remove(filepath.Join(site, "Torch_Vision-0.17.0.egg-info"))
	writeDist(t, site, "evil-hook", "0.0.1", false)
	cur, err := Capture(context.Background(), CheckOptions(lock, Options{}))
	if err != nil {
		t.Fatal(err)
	}
	d := Compare(lock, cur)
	want := "changed: numpy 1.26.4 -> 2.0.0\nmissing: torch-vision 0.17.0\nextra: evil-hook 0.0.1\n"
	if d.String() != want {
		t.Fatalf("drift\n%s\nwant\n%s", d, want)
	}
}

func TestShadowing(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	writeDist(t, a, "pkg", "1.0", false)
	writeDist(t, b, "pkg", "2.0", false)
	pkgs, _, err := ReadSitePackages([]string{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) != 1 || pkgs[0].Version != "1.0" {
		t.Fatalf("first directory must win: %+v", pkgs)
	}
}

func TestBadInput(t *testing.T) {
	site := t.TempDir()
	os.MkdirAll(filepath.Join(site, "broken-1.0.dist-info"), 0o755)
	if _, _, err := ReadSitePackages([]string{site}); err == nil || !strings.Contains(err.Error(), "broken-1.0.dist-info") {
		t.Fatalf("missing METADATA: got %v", err)
	}
	if _, err := Capture(context.Background(), Options{SitePackages: []string{site}, ImageDigest: "latest"}); err == nil {
		t.Fatal("bad image digest accepted")
	}
	for _, bad := range []string{`{}`, `{"schema":"x"}`, `{"schema":"` + Schema + `","packages":[{"name":"A","version":"1"}]}`, `{"schema":"` + Schema + `","surprise":1}`} {
		if _, err := ReadLock(strings.NewReader(bad)); err == nil {
			t.Errorf("ReadLock(%s) accepted", bad)
		}
	}
}

func FuzzParseMetadata(f *testing.F) {
	f.Add([]byte("Name: a\nVersion: 1\n"))
	f.Add([]byte("Metadata-Version: 2.1\nName: A_b.c\nVersion: 1.0\n\nbody"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseMetadata(bytes.NewReader(data))
		if err == nil && (p.Name == "" || p.Version == "" || NormalizeName(p.Name) != p.Name) {
			t.Fatalf("accepted %+v", p)
		}
	})
}

func FuzzReadLock(f *testing.F) {
	f.Add([]byte(`{"schema":"` + Schema + `","packages":[{"name":"a","version":"1"}],"os":{"arch":"amd64"},"site_packages":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := ReadLock(bytes.NewReader(data))
		if err != nil {
			return
		}
		if d := Compare(l, l); !d.Empty() {
			t.Fatalf("a lock drifts from itself: %s", d)
		}
	})
}
