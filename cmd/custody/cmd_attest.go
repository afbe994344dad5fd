package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/custody-ml/custody/internal/attest"
	"github.com/custody-ml/custody/internal/digest"
	"github.com/custody-ml/custody/internal/registry"
	"github.com/custody-ml/custody/internal/store"
	"github.com/spf13/cobra"
)

func init() { register(newAttestCommand) }

type attestOptions struct {
	clientOptions
	Model      string
	Run        string
	EnvLock    string
	Datasets   []string
	Key        string
	Out        string
	BuilderID  string
	StartedOn  string
	FinishedOn string
	Ignore     []string
}

func newAttestCommand() *cobra.Command {
	var opts attestOptions
	cmd := &cobra.Command{
		Use:   "attest --model PATH|NAME@V [--run RUN.json] [--dataset NAME@V=PATH]... --key KEY [--out F]",
		Short: "Write a signed SLSA provenance v1 attestation of a training run",
		Long: `Write an in-toto Statement v1 with the SLSA provenance v1 predicate for the
training run that produced a model, signed with --key as a DSSE envelope in
a Sigstore bundle v0.3. The subject is the model: its OMS root as the
sha256 digest, its pinned digest and serialization as annotations.

--model NAME@V takes the version, its run and its datasets from the registry
server (--server/--token). --model PATH hashes the model here (OMS "files"
method) and takes the run from --run (the JSON 'custody model register --run'
reads) and --env-lock; each input dataset is hashed from --dataset
NAME@VERSION=PATH.

Check it with 'custody verify-attestation'. docs/bom.md maps every field.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAttest(cmd.Context(), cmd.OutOrStdout(), opts)
		},
	}
	opts.clientOptions.AddFlags(cmd.Flags())
	f := cmd.Flags()
	f.StringVar(&opts.Model, "model", "", "model file or directory, or NAME@VERSION in the registry (required)")
	f.StringVar(&opts.Run, "run", "", "training run (JSON: params, metrics, code_repo, code_commit, image_digest, env_lock, inputs, id)")
	f.StringVar(&opts.EnvLock, "env-lock", "", "the run's environment lock (custody env capture output)")
	f.StringArrayVar(&opts.Datasets, "dataset", nil, "input dataset NAME@VERSION=PATH, hashed here (repeatable)")
	f.StringVar(&opts.Key, "key", "", "private key to sign with (as for custody sign) (required)")
	f.StringVar(&opts.Out, "out", "", "write the bundle to this file (default: standard output)")
	f.StringVar(&opts.BuilderID, "builder-id", attest.DefaultBuilderID, "runDetails.builder.id: who ran the training")
	f.StringVar(&opts.StartedOn, "started-on", "", "when the run started (RFC 3339)")
	f.StringVar(&opts.FinishedOn, "finished-on", "", "when the run finished (RFC 3339)")
	f.StringArrayVar(&opts.Ignore, "ignore", nil, "with --model PATH: leave this path (relative to the model root) out (repeatable)")
	return cmd
}

// isRegistryRef reports whether --model names a registry version rather
// than a path: it has the NAME@VERSION form and no such file exists.
func isRegistryRef(s string) bool {
	if _, err := os.Lstat(s); err == nil {
		return false
	}
	_, _, err := registry.ParseRef(s)
	return err == nil
}

func runAttest(ctx context.Context, stdout io.Writer, opts attestOptions) error {
	if opts.Model == "" || opts.Key == "" {
		return usagef("--model and --key are required")
	}
	in := attest.Input{BuilderID: opts.BuilderID}
	var err error
	for _, t := range []struct {
		flag string
		s    string
		dst  *time.Time
	}{{"--started-on", opts.StartedOn, &in.StartedOn}, {"--finished-on", opts.FinishedOn, &in.FinishedOn}} {
		if t.s == "" {
			continue
		}
		if *t.dst, err = time.Parse(time.RFC3339, t.s); err != nil {
			return usagef("%s: %v", t.flag, err)
		}
	}
	key, err := loadPrivateKey(opts.Key)
	if err != nil {
		return err
	}
	if isRegistryRef(opts.Model) {
		if opts.Run != "" || opts.EnvLock != "" || len(opts.Datasets) > 0 || len(opts.Ignore) > 0 {
			return usagef("--run, --env-lock, --dataset and --ignore go with --model PATH; a registry version brings its own run")
		}
		if err := attestInputFromRegistry(ctx, opts, &in); err != nil {
			return err
		}
	} else if err := attestInputFromFiles(ctx, opts, &in); err != nil {
		return err
	}
	b, err := attest.Sign(ctx, in, key, nil)
	if err != nil {
		return err
	}
	out, err := b.Marshal()
	if err != nil {
		return err
	}
	return writeOutput(stdout, opts.Out, append(out, '\n'), fmt.Sprintf("attested %s %s (run %s) to %s", in.ModelName, in.Manifest.OMSRoot, in.Run.ID, opts.Out))
}

func attestInputFromRegistry(ctx context.Context, opts attestOptions, in *attest.Input) error {
	name, version, err := refArg(opts.Model)
	if err != nil {
		return err
	}
	c, err := opts.client()
	if err != nil {
		return err
	}
	l, err := c.Upstream(ctx, name, version)
	if err != nil {
		return serverError(err)
	}
	if l.Run == nil {
		return notHold(fmt.Errorf("%s@%s was registered without a training run: nothing to attest", name, version))
	}
	r := l.Run
	in.ModelName = name + "@" + version
	in.Manifest = &l.Version.Manifest
	in.Run = attest.Run{ID: r.ID, Params: r.Params, CodeRepo: r.CodeRepo, CodeCommit: r.CodeCommit, ImageDigest: r.ImageDigest, EnvLock: r.EnvLock}
	for _, d := range l.Datasets {
		in.Datasets = append(in.Datasets, attest.Dataset{Name: d.Name, Version: d.Version, Digest: d.Digest, SourceURI: d.SourceURI, DVCMD5: d.DVCMD5})
	}
	return nil
}

func attestInputFromFiles(ctx context.Context, opts attestOptions, in *attest.Input) error {
	if opts.Run == "" {
		return usagef("--model PATH needs --run RUN.json")
	}
	raw, err := os.ReadFile(opts.Run)
	if err != nil {
		return err
	}
	var spec registry.RunSpec
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		return usagef("--run %s: %v", opts.Run, err)
	}
	if opts.EnvLock != "" {
		lock, err := os.ReadFile(opts.EnvLock)
		if err != nil {
			return err
		}
		if !json.Valid(lock) {
			return usagef("--env-lock %s: not JSON", opts.EnvLock)
		}
		spec.EnvLock = lock
	}
	dopts := digest.Options{Ignore: append([]string(nil), opts.Ignore...)}
	if opts.Out != "" {
		// The attestation written inside the model is not part of it.
		if rel, err := filepath.Rel(opts.Model, opts.Out); err == nil && !strings.HasPrefix(rel, "..") && rel != "." {
			dopts.Ignore = append(dopts.Ignore, filepath.ToSlash(rel))
		}
	}
	m, err := digest.Hash(ctx, opts.Model, dopts)
	if err != nil {
		return err
	}
	in.ModelName = m.Name
	in.Manifest = m
	in.Run = attest.Run{ID: spec.ID, Params: spec.Params, CodeRepo: spec.CodeRepo, CodeCommit: spec.CodeCommit, ImageDigest: spec.ImageDigest, EnvLock: spec.EnvLock}
	paths := map[store.DatasetRef]string{}
	var order []store.DatasetRef
	for _, d := range opts.Datasets {
		ref, path, ok := strings.Cut(d, "=")
		if !ok || path == "" {
			return usagef("--dataset %q: want NAME@VERSION=PATH", d)
		}
		n, v, err := refArg(ref)
		if err != nil {
			return err
		}
		k := store.DatasetRef{Name: n, Version: v}
		if _, dup := paths[k]; dup {
			return usagef("--dataset %s given twice", ref)
		}
		paths[k] = path
		order = append(order, k)
	}
	for _, k := range spec.Inputs {
		if _, ok := paths[k]; !ok {
			return usagef("the run reads %s@%s: give --dataset %s@%s=PATH to hash it", k.Name, k.Version, k.Name, k.Version)
		}
	}
	for _, k := range order {
		dm, err := digest.Hash(ctx, paths[k], digest.Options{})
		if err != nil {
			return fmt.Errorf("dataset %s@%s: %w", k.Name, k.Version, err)
		}
		in.Datasets = append(in.Datasets, attest.Dataset{Name: k.Name, Version: k.Version, Digest: dm.Digest})
	}
	return nil
}
