package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/custody-ml/custody/internal/digest"
	"github.com/custody-ml/custody/internal/envcheck"
	"github.com/spf13/cobra"
)

func init() { register(newExecCommand) }

type execOptions struct {
	manifestOptions
	Model      string
	Digest     string
	DigestFile string
	Stage      string
	EnvLock    string
}

func newExecCommand() *cobra.Command {
	var opts execOptions
	cmd := &cobra.Command{
		Use:   "exec --model PATH (--digest sha256:HEX | --digest-file FILE) [--stage DIR] -- CMD [ARGS...]",
		Short: "Verify a model, then replace this process with the command that loads it",
		Long: `Verify the model against its pinned digest, then replace custody with CMD
(same process: signals reach CMD directly). On a mismatch print why and exit
1 without starting CMD.

With --stage DIR the model is copied into DIR/sha256-<hex> while the very
bytes copied are hashed; the copy is made read-only and CMD starts only if
it matches, so what was verified is exactly what gets loaded.

CMD sees CUSTODY_MODEL_DIR (the model directory, or the directory holding a
single-file model), CUSTODY_MODEL_PATH (the model itself) and
CUSTODY_MODEL_SHA256 (the verified digest, hex).

With --env-lock the environment is checked first (see 'custody env check')
and any drift refuses the start.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 0 {
				return usagef("the command to run goes after --: custody exec --model PATH --digest D -- CMD ARGS")
			}
			return runExec(cmd.Context(), cmd.ErrOrStderr(), opts, args)
		},
	}
	opts.manifestOptions.AddFlags(cmd.Flags())
	cmd.Flags().StringVar(&opts.Model, "model", "", "the model file or directory (required)")
	cmd.Flags().StringVar(&opts.Digest, "digest", "", "the expected digest, sha256:<hex>")
	cmd.Flags().StringVar(&opts.DigestFile, "digest-file", "", "read the expected digest (or manifest) from this file")
	cmd.Flags().StringVar(&opts.Stage, "stage", "", "copy the model into this directory while verifying it, and load the copy")
	cmd.Flags().StringVar(&opts.EnvLock, "env-lock", "", "refuse to start unless the environment matches this lock (custody env capture); the image digest is read from $CUSTODY_IMAGE_DIGEST")
	return cmd
}

func runExec(ctx context.Context, stderr io.Writer, opts execOptions, argv []string) error {
	if opts.Model == "" {
		return usagef("--model is required")
	}
	exp, err := expectedFromFlags(opts.Digest, opts.DigestFile)
	if err != nil {
		return err
	}
	bin, err := exec.LookPath(argv[0])
	if err != nil {
		return usagef("command %q: %v", argv[0], err)
	}
	if opts.EnvLock != "" {
		d, err := checkEnvLock(ctx, opts.EnvLock, envcheck.Options{ImageDigest: os.Getenv("CUSTODY_IMAGE_DIGEST")})
		if err != nil {
			return err
		}
		if !d.Empty() {
			fmt.Fprint(stderr, d.String())
			return notHold(fmt.Errorf("not starting %s: the environment drifted from %s", argv[0], opts.EnvLock))
		}
	}
	var (
		m         *digest.Manifest
		modelPath string
	)
	if opts.Stage != "" {
		modelPath, m, err = digest.Stage(ctx, opts.Model, opts.Stage, exp, opts.digestOptions())
	} else {
		m, err = digest.Verify(ctx, opts.Model, exp, opts.digestOptions())
		modelPath = opts.Model
	}
	if err != nil {
		var mm *digest.MismatchError
		if errors.As(err, &mm) {
			fmt.Fprint(stderr, mm.Diff.String())
		}
		return checkError(fmt.Errorf("not starting %s: %s: %w", argv[0], opts.Model, err))
	}
	abs, err := filepath.Abs(modelPath)
	if err != nil {
		return err
	}
	dir := abs
	if m.Kind == digest.KindFile {
		dir = filepath.Dir(abs)
	}
	env := append(os.Environ(),
		"CUSTODY_MODEL_DIR="+dir,
		"CUSTODY_MODEL_PATH="+abs,
		"CUSTODY_MODEL_SHA256="+m.Digest.Hex(),
	)
	// Exec only returns on failure.
	err = syscall.Exec(bin, argv, env)
	return fmt.Errorf("failed to start %s: %w", bin, err)
}
