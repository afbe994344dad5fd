// Package envcheck captures the runtime environment a model was built or is
// served in (Python interpreter, every installed distribution, OS, container
// image) as a lock, and reports drift between a lock and the environment at
// hand, so serving fails loudly when its environment is not the one the
// model was validated with.
//
// Installed distributions are read from their metadata files
// (*.dist-info/METADATA, *.egg-info/PKG-INFO) without running Python. A
// Python interpreter is run only when one is named, to learn its version
// and search path.
package envcheck

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Schema identifies the lock format; see docs/env.md.
const Schema = "https://custody.dev/env/v1"

// Lock is a captured environment.
type Lock struct {
	Schema       string    `json:"schema"`
	CapturedAt   time.Time `json:"captured_at"`
	Python       *Python   `json:"python,omitempty"`
	SitePackages []string  `json:"site_packages"`
	Packages     []Package `json:"packages"`
	OS           OS        `json:"os"`
	ImageDigest  string    `json:"image_digest,omitempty"`
}

// Python describes the interpreter, when one was named.
type Python struct {
	Executable     string `json:"executable"`
	Version        string `json:"version"`
	Implementation string `json:"implementation"`
}

// Package is one installed distribution. Name is the PEP 503 normalized
// name; Version is as written in the metadata.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Location is the site directory it was found in (informational).
	Location string `json:"location,omitempty"`
}

// OS describes the operating system, from /etc/os-release and uname.
type OS struct {
	ID         string `json:"id,omitempty"`
	VersionID  string `json:"version_id,omitempty"`
	PrettyName string `json:"pretty_name,omitempty"`
	Kernel     string `json:"kernel,omitempty"`
	Arch       string `json:"arch"`
}

// Options say where to look.
type Options struct {
	// Python, when set, is run to learn its version and site directories.
	Python string
	// SitePackages lists site directories to read, in search-path order
	// (the first one that has a distribution wins, as in Python). With
	// Python set they are read after the interpreter's own.
	SitePackages []string
	// ImageDigest is the container image digest ("sha256:<hex>").
	ImageDigest string
	// OSRelease is the os-release file; empty means /etc/os-release.
	OSRelease string
}

var imageDigestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// Capture records the environment described by opts.
func Capture(ctx context.Context, opts Options) (*Lock, error) {
	if opts.ImageDigest != "" && !imageDigestRE.MatchString(opts.ImageDigest) {
		return nil, fmt.Errorf("image digest %q: want sha256:<64 lowercase hex>", opts.ImageDigest)
	}
	l := &Lock{Schema: Schema, CapturedAt: time.Now().UTC().Truncate(time.Second), ImageDigest: opts.ImageDigest}
	dirs := opts.SitePackages
	if opts.Python != "" {
		py, pyDirs, err := inspectPython(ctx, opts.Python)
		if err != nil {
			return nil, err
		}
		l.Python = py
		dirs = append(pyDirs, dirs...)
	}
	if len(dirs) == 0 {
		return nil, errors.New("nothing to capture: name a Python interpreter or a site-packages directory")
	}
	pkgs, used, err := ReadSitePackages(dirs)
	if err != nil {
		return nil, err
	}
	l.SitePackages, l.Packages = used, pkgs
	l.OS = readOS(opts.OSRelease)
	return l, nil
}

// pythonProbe prints the interpreter's facts as JSON. It imports nothing
// beyond the standard library and executes no third-party code (site is
// imported, as for any interpreter start, unless -S is given; -I isolates
// from the user's environment variables and site directory).
const pythonProbe = `import json, sys, platform
print(json.dumps({"executable": sys.executable, "version": platform.python_version(),
  "implementation": platform.python_implementation(),
  "path": [p for p in sys.path if p]}))`

func inspectPython(ctx context.Context, python string) (*Python, []string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "-I", "-c", pythonProbe)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, nil, fmt.Errorf("failed to inspect Python %s: %w: %s", python, err, strings.TrimSpace(stderr.String()))
	}
	var res struct {
		Executable, Version, Implementation string
		Path                                []string
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, nil, fmt.Errorf("failed to inspect Python %s: %w", python, err)
	}
	var dirs []string
	for _, p := range res.Path {
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			dirs = append(dirs, p)
		}
	}
	return &Python{Executable: res.Executable, Version: res.Version, Implementation: res.Implementation}, dirs, nil
}

// ReadSitePackages lists the distributions installed in dirs, in search
// order: a distribution found in an earlier directory shadows later ones.
// It returns the packages sorted by name and the directories that exist.
func ReadSitePackages(dirs []string) ([]Package, []string, error) {
	seen := map[string]bool{}
	seenDir := map[string]bool{}
	var pkgs []Package
	var used []string
	for _, dir := range dirs {
		if seenDir[dir] {
			continue
		}
		seenDir[dir] = true
		entries, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("failed to read site directory: %w", err)
		}
		used = append(used, dir)
		for _, e := range entries {
			var meta string
			switch name := e.Name(); {
			case strings.HasSuffix(name, ".dist-info"):
				meta = filepath.Join(dir, name, "METADATA")
			case strings.HasSuffix(name, ".egg-info"):
				meta = filepath.Join(dir, name)
				if e.IsDir() {
					meta = filepath.Join(meta, "PKG-INFO")
				}
			default:
				continue
			}
			p, err := readMetadata(meta)
			if err != nil {
				return nil, nil, err
			}
			if seen[p.Name] {
				continue
			}
			seen[p.Name] = true
			p.Location = dir
			pkgs = append(pkgs, p)
		}
	}
	sort.Slice(pkgs, func(i, j int) bool { return pkgs[i].Name < pkgs[j].Name })
	return pkgs, used, nil
}

// maxMetadataHeader caps how much of a metadata file is read: the headers
// come first, and the body (a long description) is never needed.
const maxMetadataHeader = 1 << 20

// readMetadata reads Name and Version from a core-metadata file (RFC 822
// style headers, the format of METADATA and PKG-INFO).
func readMetadata(path string) (Package, error) {
	f, err := os.Open(path)
	if err != nil {
		return Package{}, fmt.Errorf("failed to read distribution metadata: %w", err)
	}
	defer f.Close()
	p, err := ParseMetadata(io.LimitReader(f, maxMetadataHeader))
	if err != nil {
		return Package{}, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// ParseMetadata reads the Name and Version headers of a core-metadata
// document, stopping at the first blank line.
func ParseMetadata(r io.Reader) (Package, error) {
	var p Package
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			break
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok || line[0] == ' ' || line[0] == '\t' {
			continue
		}
		switch strings.ToLower(k) {
		case "name":
			if p.Name == "" {
				p.Name = NormalizeName(strings.TrimSpace(v))
			}
		case "version":
			if p.Version == "" {
				p.Version = strings.TrimSpace(v)
			}
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, bufio.ErrTooLong) {
		return p, err
	}
	if p.Name == "" || p.Version == "" {
		return p, errors.New("metadata without Name and Version")
	}
	return p, nil
}

var nameSepRE = regexp.MustCompile(`[-_.]+`)

// NormalizeName applies PEP 503 normalization: lowercase, runs of "-", "_"
// and "." become one "-".
func NormalizeName(n string) string { return nameSepRE.ReplaceAllString(strings.ToLower(n), "-") }

func readOS(release string) OS {
	o := OS{Arch: runtime.GOARCH}
	if release == "" {
		release = "/etc/os-release"
	}
	if data, err := os.ReadFile(release); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				continue
			}
			v = strings.Trim(v, `"'`)
			switch k {
			case "ID":
				o.ID = v
			case "VERSION_ID":
				o.VersionID = v
			case "PRETTY_NAME":
				o.PrettyName = v
			}
		}
	}
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		o.Kernel = utsString(u.Release[:])
	}
	return o
}

func utsString(b []int8) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		out = append(out, byte(c))
	}
	return string(out)
}

// maxLockSize caps a lock file.
const maxLockSize = 64 << 20

// ReadLock parses a lock written by [Capture] (strictly: unknown fields
// and a wrong schema are errors).
func ReadLock(r io.Reader) (*Lock, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxLockSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxLockSize {
		return nil, fmt.Errorf("environment lock larger than %d bytes", maxLockSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var l Lock
	if err := dec.Decode(&l); err != nil {
		return nil, fmt.Errorf("invalid environment lock: %w", err)
	}
	if l.Schema != Schema {
		return nil, fmt.Errorf("invalid environment lock: schema %q, want %q", l.Schema, Schema)
	}
	seen := map[string]bool{}
	for _, p := range l.Packages {
		if p.Name == "" || p.Name != NormalizeName(p.Name) || seen[p.Name] {
			return nil, fmt.Errorf("invalid environment lock: package name %q missing, not normalized or repeated", p.Name)
		}
		seen[p.Name] = true
	}
	return &l, nil
}
