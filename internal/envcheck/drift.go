package envcheck

import (
	"fmt"
	"strings"
)

// Drift lists every difference between a lock and the current environment.
type Drift struct {
	Changed []PackageChange `json:"changed,omitempty"` // installed with another version
	Missing []Package       `json:"missing,omitempty"` // locked, not installed
	Extra   []Package       `json:"extra,omitempty"`   // installed, not locked
	Other   []string        `json:"other,omitempty"`   // interpreter, OS, image
}

// PackageChange is a package whose version drifted.
type PackageChange struct {
	Name   string `json:"name"`
	Locked string `json:"locked"`
	Found  string `json:"found"`
}

// Empty reports whether there is no drift.
func (d Drift) Empty() bool {
	return len(d.Changed)+len(d.Missing)+len(d.Extra)+len(d.Other) == 0
}

// String lists the drift one item per line.
func (d Drift) String() string {
	var b strings.Builder
	for _, c := range d.Changed {
		fmt.Fprintf(&b, "changed: %s %s -> %s\n", c.Name, c.Locked, c.Found)
	}
	for _, p := range d.Missing {
		fmt.Fprintf(&b, "missing: %s %s\n", p.Name, p.Version)
	}
	for _, p := range d.Extra {
		fmt.Fprintf(&b, "extra: %s %s\n", p.Name, p.Version)
	}
	for _, o := range d.Other {
		fmt.Fprintf(&b, "changed: %s\n", o)
	}
	return b.String()
}

// Compare reports how cur drifted from lock. The capture time, package
// locations and kernel release are informational and never drift; the
// interpreter version and implementation, the OS id and version, the
// architecture and the image digest (when the lock records one) do.
func Compare(lock, cur *Lock) Drift {
	var d Drift
	have := make(map[string]Package, len(cur.Packages))
	for _, p := range cur.Packages {
		have[p.Name] = p
	}
	locked := make(map[string]bool, len(lock.Packages))
	for _, p := range lock.Packages {
		locked[p.Name] = true
		c, ok := have[p.Name]
		switch {
		case !ok:
			d.Missing = append(d.Missing, Package{Name: p.Name, Version: p.Version})
		case c.Version != p.Version:
			d.Changed = append(d.Changed, PackageChange{Name: p.Name, Locked: p.Version, Found: c.Version})
		}
	}
	for _, p := range cur.Packages {
		if !locked[p.Name] {
			d.Extra = append(d.Extra, Package{Name: p.Name, Version: p.Version})
		}
	}
	other := func(what, locked, found string) {
		if locked != found {
			d.Other = append(d.Other, fmt.Sprintf("%s %q -> %q", what, locked, found))
		}
	}
	if lock.Python != nil {
		if cur.Python == nil {
			d.Other = append(d.Other, "python: locked "+lock.Python.Version+", no interpreter inspected")
		} else {
			other("python version", lock.Python.Version, cur.Python.Version)
			other("python implementation", lock.Python.Implementation, cur.Python.Implementation)
		}
	}
	other("os id", lock.OS.ID, cur.OS.ID)
	other("os version", lock.OS.VersionID, cur.OS.VersionID)
	other("architecture", lock.OS.Arch, cur.OS.Arch)
	if lock.ImageDigest != "" {
		other("image digest", lock.ImageDigest, cur.ImageDigest)
	}
	return d
}

// CheckOptions returns the options that capture the environment the way
// the lock was captured: the same interpreter (when one was named) and
// site directories. opts overrides what it sets.
func CheckOptions(lock *Lock, opts Options) Options {
	if opts.Python == "" && len(opts.SitePackages) == 0 {
		if lock.Python != nil {
			opts.Python = lock.Python.Executable
		}
		opts.SitePackages = lock.SitePackages
	}
	return opts
}
