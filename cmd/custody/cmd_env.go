package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"

	"github.com/custody-ml/custody/internal/envcheck"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func init() { register(newEnvCommand) }

func newEnvCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "env",
		Short: "Capture the runtime environment as a lock, and check for drift",
	}
	cmd.AddCommand(newEnvCaptureCommand(), newEnvCheckCommand())
	return cmd
}

// envSourceOptions say which environment to read.
type envSourceOptions struct {
	Python       string
	SitePackages []string
	ImageDigest  string
}

func (o *envSourceOptions) AddFlags(f *pflag.FlagSet) {
	f.StringVar(&o.Python, "python", "", "Python interpreter to inspect (its version and search path)")
	f.StringArrayVar(&o.SitePackages, "site-packages", nil, "site-packages directory to read (repeatable, in search order)")
	f.StringVar(&o.ImageDigest, "image-digest", os.Getenv("CUSTODY_IMAGE_DIGEST"), "container image digest, sha256:<hex> (default $CUSTODY_IMAGE_DIGEST)")
}

func (o *envSourceOptions) options() envcheck.Options {
	return envcheck.Options{Python: o.Python, SitePackages: o.SitePackages, ImageDigest: o.ImageDigest}
}

type envCaptureOptions struct {
	envSourceOptions
	Out string
}

func newEnvCaptureCommand() *cobra.Command {
	var opts envCaptureOptions
	cmd := &cobra.Command{
		Use:   "capture [--python PY | --site-packages DIR] [--image-digest D] --out env.json",
		Short: "Record the interpreter, every installed distribution, the OS and the image digest",
		Long: `Record the environment as a lock: the Python interpreter (when one is given,
or python3 from PATH when neither --python nor --site-packages is), every
installed distribution's name and version read from its *.dist-info/METADATA
or *.egg-info (no Python is run for that), the OS and the container image
digest. See docs/env.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runEnvCapture(cmd.Context(), cmd.OutOrStdout(), opts)
		},
	}
	opts.envSourceOptions.AddFlags(cmd.Flags())
	cmd.Flags().StringVar(&opts.Out, "out", "", "write the lock to this file (default: standard output)")
	return cmd
}

func runEnvCapture(ctx context.Context, stdout io.Writer, opts envCaptureOptions) error {
	o := opts.options()
	if o.Python == "" && len(o.SitePackages) == 0 {
		py, err := exec.LookPath("python3")
		if err != nil {
			return usagef("no python3 on PATH: name an interpreter with --python or a directory with --site-packages")
		}
		o.Python = py
	}
	l, err := envcheck.Capture(ctx, o)
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	return writeOutput(stdout, opts.Out, data, fmt.Sprintf("captured %d packages to %s", len(l.Packages), opts.Out))
}

type envCheckOptions struct {
	envSourceOptions
	Lock string
	JSON bool
}

func newEnvCheckCommand() *cobra.Command {
	var opts envCheckOptions
	cmd := &cobra.Command{
		Use:   "check --lock env.json",
		Short: "Compare the environment with a lock; exit 1 listing every drift",
		Long: `Capture the environment the way the lock was captured (same interpreter and
site directories, unless flags say otherwise) and compare: every package whose
version changed, every locked package missing, every installed package not in
the lock, and a different interpreter, OS or image digest is drift.

Exit status: 0 no drift, 1 drift, 2 could not check.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runEnvCheck(cmd.Context(), cmd.OutOrStdout(), opts)
		},
	}
	opts.envSourceOptions.AddFlags(cmd.Flags())
	cmd.Flags().StringVar(&opts.Lock, "lock", "", "the environment lock (required)")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the drift as JSON")
	return cmd
}

func runEnvCheck(ctx context.Context, stdout io.Writer, opts envCheckOptions) error {
	if opts.Lock == "" {
		return usagef("--lock is required")
	}
	d, err := checkEnvLock(ctx, opts.Lock, opts.options())
	if err != nil {
		return err
	}
	if opts.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(d); err != nil {
			return err
		}
	} else {
		fmt.Fprint(stdout, d.String())
	}
	if !d.Empty() {
		return notHold(fmt.Errorf("environment drifted from %s (%d changed, %d missing, %d extra, %d other)",
			opts.Lock, len(d.Changed), len(d.Missing), len(d.Extra), len(d.Other)))
	}
	if !opts.JSON {
		fmt.Fprintf(stdout, "OK  environment matches %s\n", opts.Lock)
	}
	return nil
}

// checkEnvLock captures the current environment and compares it with the
// lock at path.
func checkEnvLock(ctx context.Context, path string, o envcheck.Options) (envcheck.Drift, error) {
	f, err := os.Open(path)
	if err != nil {
		return envcheck.Drift{}, err
	}
	lock, err := envcheck.ReadLock(f)
	f.Close()
	if err != nil {
		return envcheck.Drift{}, fmt.Errorf("%s: %w", path, err)
	}
	cur, err := envcheck.Capture(ctx, envcheck.CheckOptions(lock, o))
	if err != nil {
		return envcheck.Drift{}, err
	}
	return envcheck.Compare(lock, cur), nil
}
