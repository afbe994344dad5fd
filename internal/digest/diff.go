package digest

import (
	"sort"
	"strconv"
	"strings"
)

// Diff lists, by file, how a model on disk differs from what was expected.
type Diff struct {
	Changed []string // present in both, different bytes (or shard layout)
	Added   []string // on disk, not expected
	Missing []string // expected, not on disk
}

// Empty reports whether the two sides agree.
func (d Diff) Empty() bool { return len(d.Changed)+len(d.Added)+len(d.Missing) == 0 }

// String renders the diff one file per line ("changed: a/b"), for humans.
func (d Diff) String() string {
	var b strings.Builder
	for _, x := range []struct {
		what  string
		names []string
	}{{"changed", d.Changed}, {"added", d.Added}, {"missing", d.Missing}} {
		for _, n := range x.names {
			b.WriteString(x.what + ": " + n + "\n")
		}
	}
	return b.String()
}

// Compare reports which files differ between an expected manifest and one
// computed from disk. Both should have been made with the same
// serialization; files are compared by all their resources (and size).
func Compare(want, got *Manifest) Diff {
	shards := want.Serialization.Method == MethodShards
	w := groupEntries(want, shards)
	g := groupEntries(got, shards)
	return diffGroups(w, g)
}

func groupEntries(m *Manifest, shards bool) map[string]string {
	out := make(map[string]string, len(m.Files))
	for _, f := range m.Files {
		out[f.Name] = "size=" + strconv.FormatInt(f.Size, 10) + ";"
	}
	for _, r := range m.Resources {
		file := r.Name
		if shards {
			if f, _, _, err := SplitShardName(r.Name); err == nil {
				file = f
			}
		}
		out[file] += r.Name[len(file):] + "=" + r.Digest + ";"
	}
	return out
}

// DiffResources compares two lists of OMS resource descriptors, file by
// file, whatever their order. shards tells whether names carry a
// ":start:end" suffix. It accepts the forms the Python reference
// implementation writes: a single-file model named "." (OMS: its basename)
// and shards ordered by offset rather than by name.
func DiffResources(want, got []Resource, shards bool) Diff {
	w := groupResources(want, shards)
	g := groupResources(got, shards)
	if _, dot := w["."]; dot && len(w) == 1 && len(g) == 1 {
		for name := range g {
			w[name] = w["."]
			if name != "." {
				delete(w, ".")
			}
		}
	}
	return diffGroups(w, g)
}

func groupResources(rs []Resource, shards bool) map[string]string {
	type part struct{ suffix, digest string }
	parts := make(map[string][]part)
	for _, r := range rs {
		file := r.Name
		if shards {
			if f, _, _, err := SplitShardName(r.Name); err == nil {
				file = f
			}
		}
		parts[file] = append(parts[file], part{r.Name[len(file):], strings.ToLower(r.Algorithm) + ":" + r.Digest})
	}
	out := make(map[string]string, len(parts))
	for file, ps := range parts {
		sort.Slice(ps, func(i, j int) bool { return ps[i].suffix < ps[j].suffix })
		var b strings.Builder
		for _, p := range ps {
			b.WriteString(p.suffix + "=" + p.digest + ";")
		}
		out[file] = b.String()
	}
	return out
}

func diffGroups(w, g map[string]string) Diff {
	var d Diff
	for name, ws := range w {
		gs, ok := g[name]
		switch {
		case !ok:
			d.Missing = append(d.Missing, name)
		case gs != ws:
			d.Changed = append(d.Changed, name)
		}
	}
	for name := range g {
		if _, ok := w[name]; !ok {
			d.Added = append(d.Added, name)
		}
	}
	sort.Strings(d.Changed)
	sort.Strings(d.Added)
	sort.Strings(d.Missing)
	return d
}
