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
	"time"

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

	// With a registry (--server): NAME@ALIAS proved against the log.
	clientOptions
	logKeyOptions
	TrustedKeys []string
	From        string
	Watch       bool
	Poll        time.Duration
	Grace       time.Duration
	State       string
	Report      string
}

func newExecCommand() *cobra.Command {
	var opts execOptions
	cmd := &cobra.Command{
		Use: `exec --model PATH (--digest sha256:HEX | --digest-file FILE) [--stage DIR] -- CMD [ARGS...]
  custody exec --server URL --model NAME@ALIAS --log-key KEY --trusted-key PEM [--from PATH] [--stage DIR] [--state FILE] [--watch] -- CMD [ARGS...]`,
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
and any drift refuses the start.

With --server (or $CUSTODY_SERVER and no --digest), --model is NAME@ALIAS and
the registry's answer is trusted only once its transparency log proves it:
the checkpoint is signed by --log-key, the alias change is included in it,
names the same version and digest, and is the alias's latest change; with
--state FILE every checkpoint must also be consistent with the last one
verified (a rewritten log is refused). The files (--from PATH, or the
version's URI when it is a local path or file:// URI) must match the logged
digest and carry a signature by a --trusted-key. A deployment is then
reported to the registry (a token with the deployer role; if the report
fails nothing starts, unless --report best-effort), and CMD starts with
CUSTODY_MODEL_VERSION and CUSTODY_MODEL_ALIAS set too (and without
CUSTODY_TOKEN). Any refusal exits 1 without starting CMD.

With --watch custody stays as a supervisor: CMD runs as a child in its own
process group and gets SIGINT, SIGTERM and SIGHUP forwarded; custody exits
with its status. Every --poll the alias is resolved again; when it moves
(a promotion or a rollback) the new version is verified the same way and
staged, and only then is the old child stopped (SIGTERM, SIGKILL after
--grace) and CMD started on the new version. A new version that fails
verification is not served: the old one keeps running and the check is
retried at the next poll. See docs/serving.md.`,
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
	opts.clientOptions.AddFlags(cmd.Flags())
	opts.logKeyOptions.AddFlags(cmd.Flags())
	cmd.Flags().StringArrayVar(&opts.TrustedKeys, "trusted-key", nil, "with --server: PEM public key(s) a version's signature must verify under (repeatable)")
	cmd.Flags().StringVar(&opts.From, "from", "", "with --server: the local copy of the model (default: the version's URI if it is a local path or file:// URI)")
	cmd.Flags().BoolVar(&opts.Watch, "watch", false, "with --server: stay as a supervisor and follow the alias")
	cmd.Flags().DurationVar(&opts.Poll, "poll", 5*time.Second, "with --watch: how often to resolve the alias again")
	cmd.Flags().DurationVar(&opts.Grace, "grace", 10*time.Second, "with --watch: how long the old command gets to exit after SIGTERM before SIGKILL")
	cmd.Flags().StringVar(&opts.State, "state", "", "with --server: remember the last verified log checkpoint in FILE and refuse a log not consistent with it")
	cmd.Flags().StringVar(&opts.Report, "report", "required", "with --server: report deployments; 'required' refuses to start if the report fails, 'best-effort' starts anyway")
	return cmd
}

func runExec(ctx context.Context, stderr io.Writer, opts execOptions, argv []string) error {
	if opts.Model == "" {
		return usagef("--model is required")
	}
	if opts.Server != "" || (opts.Digest == "" && opts.DigestFile == "" && os.Getenv("CUSTODY_SERVER") != "") {
		return runExecServer(ctx, stderr, opts, argv)
	}
	if opts.Watch || opts.From != "" || opts.State != "" || len(opts.TrustedKeys) > 0 || opts.LogKey != "" {
		return usagef("--watch, --from, --state, --trusted-key and --log-key go with --server")
	}
	exp, err := expectedFromFlags(opts.Digest, opts.DigestFile)
	if err != nil {
		return err
	}
	bin, err := exec.LookPath(argv[0])
	if err != nil {
		return usagef("command %q: %v", argv[0], err)
	}
	if err := checkExecEnv(ctx, stderr, opts.EnvLock, argv[0]); err != nil {
		return err
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

// checkExecEnv refuses to start name if the environment drifted from the
// lock (when one is given).
func checkExecEnv(ctx context.Context, stderr io.Writer, lock, name string) error {
	if lock == "" {
		return nil
	}
	d, err := checkEnvLock(ctx, lock, envcheck.Options{ImageDigest: os.Getenv("CUSTODY_IMAGE_DIGEST")})
	if err != nil {
		return err
	}
	if !d.Empty() {
		fmt.Fprint(stderr, d.String())
		return notHold(fmt.Errorf("not starting %s: the environment drifted from %s", name, lock))
	}
	return nil
}
