package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/custody-ml/custody/internal/digest"
	"github.com/custody-ml/custody/internal/serving"
	"github.com/custody-ml/custody/internal/trust"
)

// runExecServer is `custody exec --server`: resolve NAME@ALIAS, prove it
// against the log, verify files and signatures, report, and exec CMD (or
// supervise it with --watch). See docs/serving.md.
func runExecServer(ctx context.Context, stderr io.Writer, opts execOptions, argv []string) error {
	if opts.Digest != "" || opts.DigestFile != "" {
		return usagef("--digest and --digest-file pin a local model; with --server the log pins it")
	}
	if opts.ShardSize != 0 || opts.AllowSymlinks || len(opts.Ignore) > 0 {
		return usagef("--shard-size, --allow-symlinks and --ignore come from the version's manifest with --server")
	}
	model, alias, err := refArg(opts.Model)
	if err != nil {
		return err
	}
	switch opts.Report {
	case "required", "best-effort":
	default:
		return usagef("--report %q: want required or best-effort", opts.Report)
	}
	if opts.Watch && (opts.Poll <= 0 || opts.Grace < 0) {
		return usagef("--poll must be positive and --grace not negative")
	}
	if len(opts.TrustedKeys) == 0 {
		return usagef("--trusted-key PEM is required with --server: the keys a version's signature must verify under")
	}
	keys, err := loadPublicKeys(opts.TrustedKeys)
	if err != nil {
		return err
	}
	tv, err := trust.NewKeys(keys)
	if err != nil {
		return usagef("--trusted-key: %v", err)
	}
	bin, err := exec.LookPath(argv[0])
	if err != nil {
		return usagef("command %q: %v", argv[0], err)
	}
	if err := checkExecEnv(ctx, stderr, opts.EnvLock, argv[0]); err != nil {
		return err
	}
	c, v, err := logConnect(&opts.clientOptions, &opts.logKeyOptions)
	if err != nil {
		return err
	}
	res, err := serving.NewResolver(c, v, opts.State)
	if err != nil {
		return err // a state file we cannot read or verify: could not check
	}
	fopts := serving.FileOptions{From: opts.From, Stage: opts.Stage, Trust: tv, Digest: digest.Options{Workers: opts.Workers}}
	s := &execServer{stderr: stderr, opts: opts, res: res, fopts: fopts, model: model, alias: alias, bin: bin, argv: argv}
	p, err := s.prepare(ctx)
	if err != nil {
		return s.refusal(err)
	}
	if !opts.Watch {
		if err := s.report(ctx, p, os.Getpid()); err != nil {
			p.Cleanup()
			return err
		}
		err = syscall.Exec(bin, argv, s.env(p))
		p.Cleanup()
		return fmt.Errorf("failed to start %s: %w", bin, err)
	}
	return s.supervise(ctx, p)
}

type execServer struct {
	stderr       io.Writer
	opts         execOptions
	res          *serving.Resolver
	fopts        serving.FileOptions
	model, alias string
	bin          string
	argv         []string
}

func (s *execServer) logf(format string, args ...any) {
	fmt.Fprintf(s.stderr, "custody exec: "+format+"\n", args...)
}

// prepare resolves and proves the alias, then verifies (and stages) the
// files.
func (s *execServer) prepare(ctx context.Context) (*serving.Prepared, error) {
	t, err := s.res.Resolve(ctx, s.model, s.alias)
	if err != nil {
		return nil, err
	}
	return s.prepareTarget(ctx, t)
}

func (s *execServer) prepareTarget(ctx context.Context, t *serving.Target) (*serving.Prepared, error) {
	p, err := serving.Prepare(ctx, t, s.fopts)
	if err != nil {
		var mm *digest.MismatchError
		if errors.As(err, &mm) {
			fmt.Fprint(s.stderr, mm.Diff.String())
		}
		return nil, err
	}
	s.logf("verified %s; signed by %s; files at %s", t, strings.Join(p.Signers, ", "), p.Path)
	return p, nil
}

// refusal maps a failed preparation to the exit code: refusals exit 1.
func (s *execServer) refusal(err error) error {
	err = fmt.Errorf("not starting %s on %s@%s: %w", s.argv[0], s.model, s.alias, err)
	if errors.Is(err, serving.ErrRefused) {
		return notHold(err)
	}
	return serverError(err)
}

// report tells the registry about the deployment; with --report required
// a failure refuses the start.
func (s *execServer) report(ctx context.Context, p *serving.Prepared, pid int) error {
	d, err := serving.Report(ctx, s.res.Client(), p.Target, pid, time.Now())
	if err == nil {
		idx := "?"
		if d.LogIndex != nil {
			idx = fmt.Sprint(*d.LogIndex)
		}
		s.logf("reported deployment %d of %s@%s (log entry %s)", d.ID, d.Model, d.Version, idx)
		return nil
	}
	if s.opts.Report == "best-effort" {
		s.logf("WARNING: failed to report the deployment (starting anyway, --report best-effort): %v", err)
		return nil
	}
	return fmt.Errorf("not starting %s: failed to report the deployment (--report best-effort starts anyway): %w", s.argv[0], err)
}

// env is the command's environment: ours without the registry token, plus
// what was verified.
func (s *execServer) env(p *serving.Prepared) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CUSTODY_TOKEN=") {
			env = append(env, kv)
		}
	}
	return append(env,
		"CUSTODY_MODEL_DIR="+p.Dir,
		"CUSTODY_MODEL_PATH="+p.Path,
		"CUSTODY_MODEL_SHA256="+p.Manifest.Digest.Hex(),
		"CUSTODY_MODEL_NAME="+p.Target.Model,
		"CUSTODY_MODEL_VERSION="+p.Target.Version,
		"CUSTODY_MODEL_ALIAS="+p.Target.Alias,
	)
}

// child is a running command.
type child struct {
	cmd  *exec.Cmd
	p    *serving.Prepared
	done chan struct{} // closed when Wait returned
	err  error         // Wait's error, once done
}

func (s *execServer) start(p *serving.Prepared) (*child, error) {
	cmd := exec.Command(s.bin, s.argv[1:]...)
	cmd.Args = s.argv
	cmd.Env = s.env(p)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("failed to start %s: %w", s.bin, err)
	}
	ch := &child{cmd: cmd, p: p, done: make(chan struct{})}
	go func() {
		ch.err = cmd.Wait()
		close(ch.done)
	}()
	s.logf("started %s (pid %d) on %s@%s version %s", s.argv[0], cmd.Process.Pid, p.Target.Model, p.Target.Alias, p.Target.Version)
	return ch, nil
}

// signal sends sig to the child's process group.
func (c *child) signal(sig syscall.Signal) {
	_ = syscall.Kill(-c.cmd.Process.Pid, sig)
}

// stop asks the child to exit (SIGTERM to its group), kills the group
// after grace, and waits.
func (c *child) stop(grace time.Duration) {
	c.signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-c.done:
	case <-t.C:
		c.signal(syscall.SIGKILL)
		<-c.done
	}
}

// status is the child's exit status, as a shell reports it (128+signal
// when killed).
func (c *child) status() int {
	st := c.cmd.ProcessState
	if st == nil {
		return exitCantTell
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return st.ExitCode()
}

// supervise runs CMD as a child on p, follows the alias and restarts CMD
// on every verified move, until the child exits or custody is told to
// stop.
func (s *execServer) supervise(ctx context.Context, p *serving.Prepared) error {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	// The root context is cancelled by SIGINT/SIGTERM, which this loop
	// handles itself (forward, then wait for the child).
	pollCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()

	if err := s.report(pollCtx, p, os.Getpid()); err != nil {
		p.Cleanup()
		return err
	}
	cur, err := s.start(p)
	if err != nil {
		p.Cleanup()
		return err
	}
	defer func() { cur.p.Cleanup() }()
	// A poll (resolve, prove, hash, stage) runs in the background so that
	// signals and the child's exit are handled while it runs.
	type polled struct {
		next *serving.Prepared
		err  error
	}
	var polling chan polled // nil while no poll runs
	defer func() {
		if polling != nil {
			cancel()
			if r := <-polling; r.next != nil {
				r.next.Cleanup()
			}
		}
	}()
	tick := time.NewTicker(s.opts.Poll)
	defer tick.Stop()
	for {
		select {
		case sig := <-sigs:
			ss := sig.(syscall.Signal)
			cur.signal(ss)
			if ss == syscall.SIGHUP {
				continue
			}
			s.logf("%v: stopping %s", sig, s.argv[0])
			cancel()
			t := time.NewTimer(s.opts.Grace)
			select {
			case <-cur.done:
			case <-t.C:
				cur.signal(syscall.SIGKILL)
				<-cur.done
			}
			t.Stop()
			return &exitStatusError{code: cur.status()}
		case <-cur.done:
			s.logf("%s exited (status %d)", s.argv[0], cur.status())
			return &exitStatusError{code: cur.status()}
		case <-tick.C:
			if polling != nil {
				continue // the previous poll is still running
			}
			polling = make(chan polled, 1)
			go func(t *serving.Target) {
				next, err := s.poll(pollCtx, t)
				polling <- polled{next, err}
			}(cur.p.Target)
		case r := <-polling:
			polling = nil
			if r.err != nil {
				s.logf("ALERT: not switching %s@%s; still serving version %s: %v", s.model, s.alias, cur.p.Target.Version, r.err)
				continue
			}
			next := r.next
			if next == nil {
				continue
			}
			if err := s.report(pollCtx, next, os.Getpid()); err != nil {
				s.logf("ALERT: %v; still serving version %s", err, cur.p.Target.Version)
				next.Cleanup()
				continue
			}
			s.logf("switching %s@%s from version %s to %s", s.model, s.alias, cur.p.Target.Version, next.Target.Version)
			cur.stop(s.opts.Grace)
			old := cur
			if cur, err = s.start(next); err != nil {
				next.Cleanup()
				cur = old // for the deferred cleanup
				return err
			}
			if err := old.p.Cleanup(); err != nil {
				s.logf("failed to remove the staged copy of version %s: %v", old.p.Target.Version, err)
			}
		}
	}
}

// poll resolves the alias again; it returns the next version, verified and
// staged, when the alias moved, and nil when it did not.
func (s *execServer) poll(ctx context.Context, cur *serving.Target) (*serving.Prepared, error) {
	t, err := s.res.Resolve(ctx, s.model, s.alias)
	if err != nil {
		return nil, err
	}
	if t.Version == cur.Version && t.Digest == cur.Digest {
		return nil, nil
	}
	s.logf("%s@%s moved: version %s → %s (log entry %d); verifying", s.model, s.alias, cur.Version, t.Version, t.LogIndex)
	return s.prepareTarget(ctx, t)
}
