package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/custody-ml/custody/internal/digest"
	"github.com/spf13/pflag"
)

// manifestOptions are the flags that decide how a model is enumerated and
// hashed; hash, verify, exec and sign share them.
type manifestOptions struct {
	ShardSize     sizeFlag
	AllowSymlinks bool
	Ignore        []string
	Workers       int
}

func (o *manifestOptions) AddFlags(f *pflag.FlagSet) {
	f.Var(&o.ShardSize, "shard-size", "hash files as OMS shards of this many bytes (e.g. 1000000000, 256MiB, 1GB) so a large file uses every core")
	f.BoolVar(&o.AllowSymlinks, "allow-symlinks", false, "follow symbolic links that stay inside the model root (refused by default)")
	f.StringArrayVar(&o.Ignore, "ignore", nil, "exclude this path, relative to the model root (repeatable; exact match, a directory excludes its subtree)")
	f.IntVar(&o.Workers, "workers", 0, "files or shards hashed at once (default: number of CPUs)")
}

func (o *manifestOptions) digestOptions() digest.Options {
	return digest.Options{
		ShardSize:     int64(o.ShardSize),
		AllowSymlinks: o.AllowSymlinks,
		Ignore:        o.Ignore,
		Workers:       o.Workers,
	}
}

// sizeFlag is a byte count: digits, optionally followed by a unit
// (KB, MB, GB = powers of 1000; KiB, MiB, GiB = powers of 1024).
type sizeFlag int64

func (s *sizeFlag) String() string { return strconv.FormatInt(int64(*s), 10) }
func (s *sizeFlag) Type() string   { return "bytes" }
func (s *sizeFlag) Set(v string) error {
	n, err := parseSize(v)
	if err != nil {
		return err
	}
	*s = sizeFlag(n)
	return nil
}

func parseSize(v string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
	num, mult := v, int64(1)
	for _, u := range units {
		if strings.HasSuffix(v, u.suffix) {
			num, mult = strings.TrimSuffix(v, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("invalid size %q: want a positive number of bytes, optionally with a unit (KB, MB, GB, KiB, MiB, GiB)", v)
	}
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("invalid size %q: too large", v)
	}
	return n * mult, nil
}

// checkError maps errors from hashing a model (hash, verify, exec):
// a model that is refused, changed, empty or different does not hold (exit
// 1); everything else (I/O, usage) could not be checked (exit 2).
func checkError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, digest.ErrBadOptions):
		return &usageError{msg: err.Error()}
	case errors.Is(err, digest.ErrMismatch), errors.Is(err, digest.ErrRefused),
		errors.Is(err, digest.ErrChanged), errors.Is(err, digest.ErrEmptyModel):
		return notHold(err)
	}
	return err
}

// expectedFromFlags builds what a model must match from --digest and
// --digest-file.
func expectedFromFlags(digestFlag, digestFile string) (digest.Expected, error) {
	var exp digest.Expected
	if digestFlag == "" && digestFile == "" {
		return exp, usagef("one of --digest or --digest-file is required")
	}
	if digestFile != "" {
		var err error
		if exp, err = digest.ReadExpected(digestFile); err != nil {
			return exp, err
		}
	}
	if digestFlag != "" {
		d, err := digest.ParseDigest(digestFlag)
		if err != nil {
			return exp, usagef("--digest: %v", err)
		}
		if !exp.Digest.IsZero() && !exp.Digest.Equal(d) {
			return exp, usagef("--digest %s and the digest in %s (%s) disagree", d, digestFile, exp.Digest)
		}
		exp.Digest = d
	}
	return exp, nil
}
