package registry

import (
	"net/url"
	"strings"
	"unicode/utf8"
)

// Limits on what a request may carry. They bound the size of every row and
// of every journal entry.
const (
	MaxNameLen        = 128 // model and dataset names
	MaxVersionLen     = 64
	MaxAliasLen       = 64
	MaxDescriptionLen = 4096
	MaxOwners         = 32
	MaxTags           = 64
	MaxTagLen         = 64
	MaxURILen         = 2048
	MaxSignatures     = 16
	MaxBundleSize     = 1 << 20
	MaxResources      = 100_000
	MaxDatasetFiles   = 100_000
	MaxRunEntries     = 1000 // params and metrics each
	MaxRunValueLen    = 4096
	MaxEnvLockSize    = 4 << 20
	MaxInputs         = 256
	MaxTokenNameLen   = 128
)

// ScanVerdicts are the accepted scan verdicts ("" means not scanned).
var ScanVerdicts = []string{"", "safe", "suspicious", "unsafe", "unknown"}

// checkIdent checks a name against the strict identifier grammar:
//
//	[A-Za-z0-9] [A-Za-z0-9._-]*   at most max bytes
//
// so that names are safe in URL paths, file names and "NAME@VERSION"
// references, and ".."-like names cannot occur (no leading dot).
func checkIdent(what, s string, max int) error {
	if s == "" {
		return invalidf("%s is empty", what)
	}
	if len(s) > max {
		return invalidf("%s is longer than %d bytes", what, max)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || i > 0 && (c == '.' || c == '_' || c == '-')
		if !ok {
			return invalidf("%s %q: only letters, digits and (after the first character) '.', '_', '-' are allowed", what, truncate(s))
		}
	}
	return nil
}

// CheckName validates a model or dataset name.
func CheckName(s string) error { return checkIdent("name", s, MaxNameLen) }

// CheckVersion validates a version label.
func CheckVersion(s string) error { return checkIdent("version", s, MaxVersionLen) }

// CheckAlias validates an alias name.
func CheckAlias(s string) error { return checkIdent("alias", s, MaxAliasLen) }

func checkText(what, s string, max int) error {
	if len(s) > max {
		return invalidf("%s is longer than %d bytes", what, max)
	}
	if !utf8.ValidString(s) {
		return invalidf("%s is not valid UTF-8", what)
	}
	for _, r := range s {
		if r < 0x20 && r != '\n' && r != '\t' || r == 0x7f {
			return invalidf("%s contains control characters", what)
		}
	}
	return nil
}

func checkURI(what, s string) error {
	if s == "" {
		return nil
	}
	if err := checkText(what, s, MaxURILen); err != nil {
		return err
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return invalidf("%s %q is not an absolute URI", what, truncate(s))
	}
	return nil
}

func checkList(what string, items []string, maxItems, maxLen int) error {
	if len(items) > maxItems {
		return invalidf("more than %d %s", maxItems, what)
	}
	seen := make(map[string]bool, len(items))
	for _, it := range items {
		if err := checkIdent(what, it, maxLen); err != nil {
			return err
		}
		if seen[it] {
			return invalidf("%s %q listed twice", what, it)
		}
		seen[it] = true
	}
	return nil
}

// ParseRef splits "NAME@VERSION" and validates both parts.
func ParseRef(ref string) (name, version string, err error) {
	name, version, ok := strings.Cut(ref, "@")
	if !ok {
		return "", "", invalidf("reference %q is not NAME@VERSION", truncate(ref))
	}
	if err := CheckName(name); err != nil {
		return "", "", err
	}
	if err := CheckVersion(version); err != nil {
		return "", "", err
	}
	return name, version, nil
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}
