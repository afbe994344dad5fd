package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"

	"github.com/custody-ml/custody/internal/api"
	"github.com/custody-ml/custody/internal/client"
	"github.com/custody-ml/custody/internal/fileutil"
	"github.com/custody-ml/custody/internal/registry"
	"github.com/custody-ml/custody/internal/store"
	"github.com/custody-ml/custody/internal/tlog"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/mod/sumdb/note"
	xtlog "golang.org/x/mod/sumdb/tlog"
)

func init() { register(newLogCommand) }

func newLogCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "log",
		Short: "Check the registry's transparency log",
		Long: `Every registry state change is appended to a tamper-evident log (RFC 6962
Merkle tree) in the same transaction as the change. These verbs check it:
signed checkpoints, inclusion proofs, consistency with a checkpoint saved
earlier, and an audit of the registry state against the log. See docs/tlog.md.

Exit codes: 0 the property holds, 1 it does not (bad signature, proof that
fails, rewritten history, rows changed behind the log's back), 2 it could not
be checked.`,
	}
	cmd.AddCommand(newLogKeygenCommand(), newLogCheckpointCommand(), newLogProveCommand(), newLogVerifyCommand(), newLogAuditCommand())
	return cmd
}

// logKeyOptions name the log's verifier key.
type logKeyOptions struct{ LogKey string }

func (o *logKeyOptions) AddFlags(f *pflag.FlagSet) {
	f.StringVar(&o.LogKey, "log-key", "", "the log's verifier key (name+hash+key) or a file holding it (default $CUSTODY_LOG_KEY)")
}

func (o *logKeyOptions) verifier() (note.Verifier, error) {
	k := o.LogKey
	if k == "" {
		k = os.Getenv("CUSTODY_LOG_KEY")
	}
	if k == "" {
		return nil, usagef("--log-key (or $CUSTODY_LOG_KEY) is required: the log's verifier key, as 'custody server' prints it")
	}
	v, err := tlog.ParseVerifier(k)
	if err != nil {
		return nil, usagef("--log-key: %v", err)
	}
	return v, nil
}

// logConnect returns the client for the registry server and the verifier
// its checkpoints must be signed with.
func logConnect(co *clientOptions, ko *logKeyOptions) (*client.Client, note.Verifier, error) {
	v, err := ko.verifier()
	if err != nil {
		return nil, nil, err
	}
	c, err := co.client()
	if err != nil {
		return nil, nil, err
	}
	return c, v, nil
}

// logError maps log verification failures to exit 1.
func logError(err error) error {
	for _, target := range []error{tlog.ErrBadSignature, tlog.ErrProof, tlog.ErrTampered, tlog.ErrMalformedEntry} {
		if errors.Is(err, target) {
			return notHold(err)
		}
	}
	return serverError(err)
}

// fetchCheckpoint gets the current checkpoint and verifies its signature.
func fetchCheckpoint(ctx context.Context, c *client.Client, v note.Verifier) ([]byte, tlog.Checkpoint, error) {
	signed, err := c.LogCheckpoint(ctx)
	if err != nil {
		return nil, tlog.Checkpoint{}, err
	}
	cp, err := tlog.OpenCheckpoint(signed, v)
	if errors.Is(err, tlog.ErrMalformedCheckpoint) {
		err = notHold(fmt.Errorf("the server's checkpoint: %w", err))
	}
	return signed, cp, err
}

func describe(c tlog.Checkpoint) string {
	return fmt.Sprintf("%s size %d root %s", c.Origin, c.Size, c.Hash)
}

// --- keygen

type logKeygenOptions struct {
	Origin string
	Out    string
}

func newLogKeygenCommand() *cobra.Command {
	var opts logKeygenOptions
	cmd := &cobra.Command{
		Use:   "keygen --origin NAME --out FILE",
		Short: "Create a log signing key (for 'custody server --log-key FILE')",
		Long: `Write a new Ed25519 signed-note key named NAME (the log's origin, e.g.
registry.example.com/custody) to FILE (mode 0600) and its verifier key to
FILE.pub, and print the verifier key: give it to everyone who checks the log.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLogKeygen(cmd.OutOrStdout(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Origin, "origin", "", "the log's origin (required)")
	cmd.Flags().StringVar(&opts.Out, "out", "", "private key file to create (required)")
	return cmd
}

func runLogKeygen(stdout io.Writer, opts logKeygenOptions) error {
	if opts.Origin == "" || opts.Out == "" {
		return usagef("--origin and --out are required")
	}
	if _, err := os.Stat(opts.Out); err == nil {
		return usagef("%s exists; refusing to replace a log key", opts.Out)
	}
	_, vkey, err := tlog.LoadOrCreateSigner(opts.Out, opts.Origin)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, vkey)
	return err
}

// --- checkpoint

type logCheckpointOptions struct {
	clientOptions
	logKeyOptions
	Out string
}

func newLogCheckpointCommand() *cobra.Command {
	var opts logCheckpointOptions
	cmd := &cobra.Command{
		Use:   "checkpoint --log-key KEY [--out FILE]",
		Short: "Fetch and verify the log's current signed checkpoint",
		Long: `Fetch the current checkpoint, verify its signature with the log key, and print
it (or write it to --out, to check later with 'custody log verify --since').`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLogCheckpoint(cmd.Context(), cmd.OutOrStdout(), opts)
		},
	}
	opts.clientOptions.AddFlags(cmd.Flags())
	opts.logKeyOptions.AddFlags(cmd.Flags())
	cmd.Flags().StringVar(&opts.Out, "out", "", "write the signed checkpoint to this file")
	return cmd
}

func runLogCheckpoint(ctx context.Context, stdout io.Writer, opts logCheckpointOptions) error {
	c, v, err := logConnect(&opts.clientOptions, &opts.logKeyOptions)
	if err != nil {
		return err
	}
	signed, cp, err := fetchCheckpoint(ctx, c, v)
	if err != nil {
		return logError(err)
	}
	return writeOutput(stdout, opts.Out, signed, "checkpoint "+describe(cp))
}

// --- prove

type logProveOptions struct {
	clientOptions
	logKeyOptions
	Checkpoint string
}

func newLogProveCommand() *cobra.Command {
	var opts logProveOptions
	cmd := &cobra.Command{
		Use:   "prove INDEX --log-key KEY [--checkpoint FILE]",
		Short: "Prove that a log entry is in the log",
		Long: `Fetch entry INDEX and its inclusion proof, and verify the proof against a
checkpoint signed by the log key: the current one, or the one saved in
--checkpoint FILE. Prints the entry (canonical JSON) on success.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLogProve(cmd.Context(), cmd.OutOrStdout(), opts, args[0])
		},
	}
	opts.clientOptions.AddFlags(cmd.Flags())
	opts.logKeyOptions.AddFlags(cmd.Flags())
	cmd.Flags().StringVar(&opts.Checkpoint, "checkpoint", "", "prove against this saved signed checkpoint instead of the current one")
	return cmd
}

func readCheckpointFile(path string, v note.Verifier) (tlog.Checkpoint, error) {
	b, err := readCapped(path, tlog.MaxSignedCheckpointSize)
	if err != nil {
		return tlog.Checkpoint{}, err
	}
	cp, err := tlog.OpenCheckpoint(b, v)
	if err != nil {
		// A saved checkpoint that does not verify says nothing about the
		// log: the check could not be done.
		return tlog.Checkpoint{}, fmt.Errorf("%s: %v", path, err)
	}
	return cp, nil
}

func runLogProve(ctx context.Context, stdout io.Writer, opts logProveOptions, arg string) error {
	index, err := strconv.ParseInt(arg, 10, 64)
	if err != nil || index < 0 {
		return usagef("INDEX %q: want a non-negative entry number", arg)
	}
	c, v, err := logConnect(&opts.clientOptions, &opts.logKeyOptions)
	if err != nil {
		return err
	}
	var cp tlog.Checkpoint
	if opts.Checkpoint != "" {
		if cp, err = readCheckpointFile(opts.Checkpoint, v); err != nil {
			return err
		}
	} else if _, cp, err = fetchCheckpoint(ctx, c, v); err != nil {
		return logError(err)
	}
	if index >= cp.Size {
		return notHold(fmt.Errorf("entry %d is not in the tree of size %d", index, cp.Size))
	}
	p, err := c.LogEntry(ctx, index, cp.Size)
	if err != nil {
		return serverError(err)
	}
	if p.Index != index || p.Size != cp.Size {
		return notHold(fmt.Errorf("the server answered for entry %d in tree %d", p.Index, p.Size))
	}
	if err := tlog.VerifyInclusion(cp, index, []byte(p.Entry), p.Proof); err != nil {
		return logError(err)
	}
	if _, err := tlog.ParseEntry([]byte(p.Entry)); err != nil {
		return logError(err)
	}
	fmt.Fprintf(stdout, "entry %d is in the log (%s)\n", index, describe(cp))
	_, err = fmt.Fprintln(stdout, p.Entry)
	return err
}

// --- verify

type logVerifyOptions struct {
	clientOptions
	logKeyOptions
	Since  string
	Update bool
}

func newLogVerifyCommand() *cobra.Command {
	var opts logVerifyOptions
	cmd := &cobra.Command{
		Use:   "verify --since FILE --log-key KEY [--update]",
		Short: "Check that the log only grew since a saved checkpoint",
		Long: `Fetch the current checkpoint and a consistency proof from the checkpoint saved
in FILE, and verify both: any rewrite of history the saved checkpoint covers
fails (exit 1). With --update, FILE is replaced by the current checkpoint once
verified.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLogVerify(cmd.Context(), cmd.OutOrStdout(), opts)
		},
	}
	opts.clientOptions.AddFlags(cmd.Flags())
	opts.logKeyOptions.AddFlags(cmd.Flags())
	cmd.Flags().StringVar(&opts.Since, "since", "", "signed checkpoint saved earlier (required)")
	cmd.Flags().BoolVar(&opts.Update, "update", false, "replace FILE with the current checkpoint after verifying it")
	return cmd
}

func runLogVerify(ctx context.Context, stdout io.Writer, opts logVerifyOptions) error {
	if opts.Since == "" {
		return usagef("--since FILE is required")
	}
	c, v, err := logConnect(&opts.clientOptions, &opts.logKeyOptions)
	if err != nil {
		return err
	}
	old, err := readCheckpointFile(opts.Since, v)
	if err != nil {
		return err
	}
	signed, cur, err := fetchCheckpoint(ctx, c, v)
	if err != nil {
		return logError(err)
	}
	var proof []tlog.Hash
	switch {
	case cur.Size < old.Size:
		return notHold(fmt.Errorf("the log shrank from %d to %d entries: history was rewritten", old.Size, cur.Size))
	case old.Size > 0 && cur.Size > old.Size:
		p, err := c.LogConsistency(ctx, old.Size, cur.Size)
		if err != nil {
			return serverError(err)
		}
		proof = p.Proof
	}
	if err := tlog.VerifyConsistency(old, cur, proof); err != nil {
		return notHold(fmt.Errorf("the log is not consistent with %s (history was rewritten): %w", opts.Since, err))
	}
	if opts.Update {
		if err := fileutil.WriteFileAtomic(opts.Since, signed, 0o644); err != nil {
			return err
		}
	}
	_, err = fmt.Fprintf(stdout, "consistent: size %d → %d, root %s\n", old.Size, cur.Size, cur.Hash)
	return err
}

// --- audit

type logAuditOptions struct {
	storeOptions
	clientOptions
	logKeyOptions
	Remote bool
}

func newLogAuditCommand() *cobra.Command {
	var opts logAuditOptions
	cmd := &cobra.Command{
		Use:   "audit (--data DIR | --db URL | --server URL --log-key KEY)",
		Short: "Replay the log against the registry state",
		Long: `Replay every log entry and compare it with the registry's current state:
version digests, signers and URIs, model metadata, alias histories, dataset
hashes, run inputs, token roles; records and journal events that were never
logged. Offline (--data DIR or --db URL) it reads the database directly and
also checks every stored tree hash against the entries. With --server it
downloads the entries as tiles, checks that they hash to the checkpoint signed
by --log-key, and compares them with what the API serves (tokens and the
journal are not visible there and are skipped). Any finding exits 1.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Remote = cmd.Flags().Changed("server") || (opts.Data == "" && opts.DB == "")
			return runLogAudit(cmd.Context(), cmd.OutOrStdout(), opts)
		},
	}
	opts.storeOptions.AddFlags(cmd.Flags())
	opts.clientOptions.AddFlags(cmd.Flags())
	opts.logKeyOptions.AddFlags(cmd.Flags())
	return cmd
}

func runLogAudit(ctx context.Context, stdout io.Writer, opts logAuditOptions) error {
	var (
		findings []string
		skipped  []string
		size     int64
		root     tlog.Hash
	)
	if !opts.Remote {
		st, err := opts.open(ctx)
		if err != nil {
			return err
		}
		defer st.Close()
		rep, err := tlog.Audit(ctx, st)
		if err != nil {
			return logError(err)
		}
		findings, size, root = rep.Findings, rep.Size, rep.Root
	} else {
		if opts.Data != "" || opts.DB != "" {
			return usagef("--server and --data/--db are exclusive")
		}
		c, v, err := logConnect(&opts.clientOptions, &opts.logKeyOptions)
		if err != nil {
			return err
		}
		_, cp, err := fetchCheckpoint(ctx, c, v)
		if err != nil {
			return logError(err)
		}
		a := tlog.NewAuditor(apiState{c})
		if err := replayRemote(ctx, c, cp, func(i int64, e []byte) error { return a.Add(ctx, i, e) }); err != nil {
			return logError(err)
		}
		if findings, err = a.Finish(ctx); err != nil {
			return serverError(err)
		}
		skipped, size, root = a.Skipped, cp.Size, cp.Hash
	}
	fmt.Fprintf(stdout, "replayed %d entries (root %s)\n", size, root)
	for _, s := range skipped {
		fmt.Fprintf(stdout, "not checked: %s (not visible through the API)\n", s)
	}
	for _, f := range findings {
		fmt.Fprintf(stdout, "FINDING: %s\n", f)
	}
	if len(findings) > 0 {
		return notHold(fmt.Errorf("%d changes behind the log's back", len(findings)))
	}
	_, err := fmt.Fprintln(stdout, "the registry state agrees with the log")
	return err
}

// replayRemote downloads the entries of the tree cp describes as entry
// bundles, checks that they hash to cp's root, and feeds them to fn.
func replayRemote(ctx context.Context, c *client.Client, cp tlog.Checkpoint, fn func(int64, []byte) error) error {
	var hashes []xtlog.Hash
	mem := xtlog.HashReaderFunc(func(idx []int64) ([]xtlog.Hash, error) {
		out := make([]xtlog.Hash, len(idx))
		for i, x := range idx {
			if x >= int64(len(hashes)) {
				return nil, fmt.Errorf("hash %d not computed", x)
			}
			out[i] = hashes[x]
		}
		return out, nil
	})
	var entries [][]byte
	for n := int64(0); n < cp.Size; n += 256 {
		w := min(cp.Size-n, 256)
		b, err := c.LogTile(ctx, tlog.Tile{Entries: true, N: n / 256, W: int(w)}.Path())
		if err != nil {
			return serverError(err)
		}
		es, err := tlog.ParseEntryBundle(b)
		if err != nil || int64(len(es)) != w {
			return notHold(fmt.Errorf("entry bundle %d: %d entries, want %d (%v)", n/256, len(es), w, err))
		}
		for i, e := range es {
			hs, err := xtlog.StoredHashes(n+int64(i), e, mem)
			if err != nil {
				return err
			}
			hashes = append(hashes, hs...)
		}
		entries = append(entries, es...)
	}
	got, err := xtlog.TreeHash(cp.Size, mem)
	if err != nil {
		return err
	}
	if got != cp.Hash {
		return fmt.Errorf("%w: the served entries hash to %s, the signed checkpoint says %s", tlog.ErrTampered, got, cp.Hash)
	}
	for i, e := range entries {
		if err := fn(int64(i), e); err != nil {
			return err
		}
	}
	return nil
}

// apiState reads the registry state through the API for the audit.
type apiState struct{ c *client.Client }

func notFoundErr(err error) error {
	if client.IsType(err, api.ErrNotFound) {
		return fmt.Errorf("%v: %w", err, store.ErrNotFound)
	}
	return err
}

func (s apiState) get(ctx context.Context, path string, q url.Values, out any) error {
	return notFoundErr(s.c.Get(ctx, path, q, out))
}

func seg(s string) string { return url.PathEscape(s) }

func (s apiState) GetModel(ctx context.Context, name string) (*store.Model, error) {
	var m store.Model
	return &m, s.get(ctx, "/api/v1/models/"+seg(name), nil, &m)
}

func (s apiState) ListModels(ctx context.Context, after string, limit int) ([]store.Model, error) {
	var ms []store.Model
	return ms, s.get(ctx, "/api/v1/models", url.Values{"after": {after}, "limit": {strconv.Itoa(limit)}}, &ms)
}

func (s apiState) GetVersion(ctx context.Context, model, version string) (*store.Version, error) {
	var v store.Version
	return &v, s.get(ctx, "/api/v1/models/"+seg(model)+"/versions/"+seg(version), nil, &v)
}

func (s apiState) ListVersions(ctx context.Context, model, after string, limit int) ([]store.Version, error) {
	var vs []store.Version
	return vs, s.get(ctx, "/api/v1/models/"+seg(model)+"/versions", url.Values{"after": {after}, "limit": {strconv.Itoa(limit)}}, &vs)
}

func (s apiState) ListAliases(ctx context.Context, model string) ([]store.AliasEvent, error) {
	var as []store.AliasEvent
	return as, s.get(ctx, "/api/v1/models/"+seg(model)+"/aliases", nil, &as)
}

func (s apiState) AliasHistory(ctx context.Context, model, alias string) ([]store.AliasEvent, error) {
	var h []store.AliasEvent
	return h, s.get(ctx, "/api/v1/models/"+seg(model)+"/aliases/"+seg(alias)+"/history", nil, &h)
}

func (s apiState) GetDataset(ctx context.Context, name, version string) (*store.Dataset, error) {
	var d store.Dataset
	return &d, s.get(ctx, "/api/v1/datasets/"+seg(name)+"/versions/"+seg(version), nil, &d)
}

func (s apiState) GetRun(ctx context.Context, id string) (*store.Run, error) {
	var r store.Run
	return &r, s.get(ctx, "/api/v1/runs/"+seg(id), nil, &r)
}

func (s apiState) GetDeployment(ctx context.Context, id int64) (*store.Deployment, error) {
	d, err := s.c.GetDeployment(ctx, id)
	return d, notFoundErr(err)
}

func (s apiState) ListDeployments(ctx context.Context, model string, after int64, limit int) ([]store.Deployment, error) {
	ds, err := s.c.ListDeployments(ctx, model, after, limit)
	return ds, notFoundErr(err)
}

func (apiState) GetToken(context.Context, string) (*store.Token, error) {
	return nil, fmt.Errorf("tokens: %w", errors.ErrUnsupported)
}

func (apiState) Events(context.Context, int64, int) ([]store.Event, error) {
	return nil, fmt.Errorf("journal: %w", errors.ErrUnsupported)
}

func (s apiState) ListApprovals(ctx context.Context, model, version string) ([]store.Approval, error) {
	st, err := s.versionState(ctx, model, version)
	if err != nil {
		return nil, err
	}
	return st.Approvals, nil
}

func (s apiState) GetVersionStatus(ctx context.Context, model, version string) (*store.VersionStatus, error) {
	st, err := s.versionState(ctx, model, version)
	if err != nil {
		return nil, err
	}
	if st.Status == "ok" || st.At == nil {
		return nil, fmt.Errorf("version %s@%s has no status: %w", model, version, store.ErrNotFound)
	}
	return &store.VersionStatus{Model: model, Version: version, Status: st.Status, Reason: st.Reason, Actor: st.Actor, At: *st.At}, nil
}

func (s apiState) versionState(ctx context.Context, model, version string) (*registry.VersionState, error) {
	var st registry.VersionState
	return &st, s.get(ctx, "/api/v1/models/"+seg(model)+"/versions/"+seg(version)+"/status", nil, &st)
}

var _ tlog.State = apiState{}
