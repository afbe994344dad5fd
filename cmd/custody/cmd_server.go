package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/custody-ml/custody/internal/api"
	"github.com/custody-ml/custody/internal/fileutil"
	"github.com/custody-ml/custody/internal/oms"
	"github.com/custody-ml/custody/internal/policy"
	"github.com/custody-ml/custody/internal/predict"
	"github.com/custody-ml/custody/internal/predstore/predsql"
	"github.com/custody-ml/custody/internal/registry"
	"github.com/custody-ml/custody/internal/tlog"
	"github.com/custody-ml/custody/internal/trust"
	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"
)

func init() { register(newServerCommand) }

type serverOptions struct {
	storeOptions
	Config      string
	Listen      string
	AddrFile    string
	TrustedKeys []string
	TrustedCAs  []string
	Sigstore    sigstoreFlags
	Rate        float64
	Burst       int
	LogFormat   string
	Shutdown    time.Duration
	LogKey      string
	LogOrigin   string
	UnsignedLog bool
	Policy      string
	PolicyCfg   string
	Protected   []string

	// Retention is --prediction-retention MODEL=DURATION ("*" for the
	// rest), added to the config file's prediction_retention.
	Retention         []string
	RetentionInterval time.Duration
	MaxIngestBytes    int64

	extraSigstore  []sigstoreFlags   // from --config
	extraRetention map[string]string // from --config
	policyConfig   policyConfig      // from --config
	monitorOptions
}

// policyConfig is input.config of every policy decision
// (docs/policy.md): key ids trusted in addition to signatures that verify,
// and minimum metric values. It comes from the --config file's
// "policy_config" and from --policy-config FILE (same JSON object).
type policyConfig struct {
	TrustedKeys []string           `json:"trusted_keys"`
	MinMetrics  map[string]float64 `json:"min_metrics"`
	// RequireContracts makes the default policies refuse a version whose
	// training datasets lack passing contract evidence.
	RequireContracts *bool `json:"require_contracts"`
}

// merge adds o: key ids add up, o's minimums override.
func (c *policyConfig) merge(o policyConfig) {
	c.TrustedKeys = append(c.TrustedKeys, o.TrustedKeys...)
	for k, v := range o.MinMetrics {
		if c.MinMetrics == nil {
			c.MinMetrics = map[string]float64{}
		}
		c.MinMetrics[k] = v
	}
	if o.RequireContracts != nil {
		c.RequireContracts = o.RequireContracts
	}
}

// input returns the config as the policy input's "config" object.
func (c *policyConfig) input() map[string]any {
	keys := []any{}
	for _, k := range c.TrustedKeys {
		keys = append(keys, k)
	}
	mins := map[string]any{}
	for k, v := range c.MinMetrics {
		mins[k] = v
	}
	return map[string]any{"trusted_keys": keys, "min_metrics": mins, "require_contracts": c.RequireContracts != nil && *c.RequireContracts}
}

func decodeStrictFile(path string, v any) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return usagef("%s: %v", path, err)
	}
	if dec.More() {
		return usagef("%s: trailing data after the JSON object", path)
	}
	return nil
}

// gate loads the policies (--policy DIR, or the embedded defaults) and
// the policy config; the OPA engine is the registry's Gate.
func (o *serverOptions) gate(ctx context.Context) (registry.Gate, map[string]any, error) {
	srcs := policy.Defaults()
	if o.Policy != "" {
		var err error
		if srcs, err = policy.LoadDir(o.Policy); err != nil {
			return nil, nil, usagef("--policy: %v", err)
		}
	}
	eng, err := policy.New(ctx, srcs, policy.Options{})
	if err != nil {
		return nil, nil, usagef("--policy: %v", err)
	}
	cfg := o.policyConfig
	if o.PolicyCfg != "" {
		var fc policyConfig
		if err := decodeStrictFile(o.PolicyCfg, &fc); err != nil {
			return nil, nil, err
		}
		cfg.merge(fc)
	}
	return eng, cfg.input(), nil
}

// sigstoreFlags is one accepted Sigstore keyless identity.
type sigstoreFlags struct {
	TrustedRoot string `json:"trusted_root"`
	Identity    string `json:"identity"`
	Issuer      string `json:"issuer"`
}

// trustConfig reads the trusted keys, CA certificates and Sigstore
// identities the flags and the config file name.
func (o *serverOptions) trustConfig() (trust.Config, error) {
	var c trust.Config
	read := func(p string) ([]byte, error) {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("failed to read trust material: %w", err)
		}
		return b, nil
	}
	for _, p := range o.TrustedKeys {
		b, err := read(p)
		if err != nil {
			return c, err
		}
		keys, err := trust.ParseKeys(b)
		if err != nil {
			return c, usagef("--trusted-key %s: %v", p, err)
		}
		c.Keys = append(c.Keys, keys...)
	}
	for _, p := range o.TrustedCAs {
		b, err := read(p)
		if err != nil {
			return c, err
		}
		certs, err := trust.ParseCertificates(b)
		if err != nil {
			return c, usagef("--trusted-ca %s: %v", p, err)
		}
		c.Roots = append(c.Roots, certs...)
	}
	sig := o.extraSigstore
	if o.Sigstore != (sigstoreFlags{}) {
		sig = append(sig, o.Sigstore)
	}
	for _, s := range sig {
		if s.TrustedRoot == "" || s.Identity == "" || s.Issuer == "" {
			return c, usagef("a Sigstore identity needs a trusted root, an identity and an issuer")
		}
		b, err := read(s.TrustedRoot)
		if err != nil {
			return c, err
		}
		c.Keyless = append(c.Keyless, oms.KeylessPolicy{TrustedRoot: b, Identity: s.Identity, Issuer: s.Issuer})
	}
	return c, nil
}

func (o *serverOptions) AddFlags(cmd *cobra.Command) {
	o.storeOptions.AddFlags(cmd.Flags())
	f := cmd.Flags()
	f.StringVar(&o.Config, "config", "", "JSON configuration file (flags given on the command line override it)")
	f.StringVar(&o.Listen, "listen", "127.0.0.1:8420", "address to serve on (port 0 picks a free port)")
	f.StringVar(&o.AddrFile, "addr-file", "", "write the address actually listened on to this file once serving")
	f.StringArrayVar(&o.TrustedKeys, "trusted-key", nil, "PEM public key whose OMS signatures are trusted for registration (repeatable)")
	f.StringArrayVar(&o.TrustedCAs, "trusted-ca", nil, "PEM CA certificate anchoring certificate-method OMS signatures (repeatable)")
	f.StringVar(&o.Sigstore.TrustedRoot, "sigstore-trusted-root", "", "Sigstore trusted_root.json for keyless OMS signatures (with --sigstore-identity and --sigstore-issuer)")
	f.StringVar(&o.Sigstore.Identity, "sigstore-identity", "", "exact certificate identity (e-mail or URI) of the accepted keyless signer")
	f.StringVar(&o.Sigstore.Issuer, "sigstore-issuer", "", "exact OIDC issuer of the accepted keyless signer")
	f.Float64Var(&o.Rate, "rate", 200, "requests per second allowed per token")
	f.IntVar(&o.Burst, "burst", 400, "request burst allowed per token")
	f.StringVar(&o.LogFormat, "log-format", "json", "log format: json or text")
	f.DurationVar(&o.Shutdown, "shutdown-timeout", 10*time.Second, "time allowed for in-flight requests on SIGTERM")
	f.StringVar(&o.LogKey, "log-key", "", "signed-note private key file signing the transparency log's checkpoints (default DIR/log.key with --data, created on first start; create one for --db with 'custody log keygen')")
	f.StringVar(&o.LogOrigin, "log-origin", "", "origin (name) of a log key created on first start (default <hostname>/custody)")
	f.BoolVar(&o.UnsignedLog, "unsigned-log", false, "with --db and no --log-key: run anyway, serving no signed checkpoints (clients cannot verify the log)")
	f.StringVar(&o.Policy, "policy", "", "directory of Rego policies deciding register, approve, promote, rollback and deploy (default: the embedded defaults, docs/policy.md)")
	f.StringVar(&o.PolicyCfg, "policy-config", "", `JSON file with the policies' config: {"trusted_keys": [...], "min_metrics": {"accuracy": 0.9}, "require_contracts": true}`)
	f.StringArrayVar(&o.Protected, "protected-alias", []string{"production"}, "alias that moves only through 'custody promote' and 'custody rollback' (repeatable)")
	f.StringArrayVar(&o.Retention, "prediction-retention", nil, "keep logged predictions of MODEL for DURATION, as MODEL=DURATION (e.g. fraud=720h; '*=2160h' for every other model; repeatable; default: forever)")
	f.DurationVar(&o.RetentionInterval, "retention-interval", time.Hour, "how often prediction retention is enforced")
	o.monitorOptions.AddFlags(f)
	f.Int64Var(&o.MaxIngestBytes, "max-ingest-bytes", 16<<20, "largest prediction or label batch accepted, as sent (compressed); 64 MiB decompressed")
}

// retention merges the config file's and the flags' retention settings.
func (o *serverOptions) retention() (predict.Retention, error) {
	m := map[string]string{}
	for k, v := range o.extraRetention {
		m[k] = v
	}
	for _, kv := range o.Retention {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return predict.Retention{}, usagef("--prediction-retention %q: want MODEL=DURATION", kv)
		}
		m[k] = v
	}
	r, err := predict.ParseRetention(m)
	if err != nil {
		return r, usagef("%v", err)
	}
	return r, nil
}

func newServerCommand() *cobra.Command {
	var opts serverOptions
	cmd := &cobra.Command{
		Use:   "server --data DIR | --db URL",
		Short: "Run the registry server",
		Long: `Serve the registry's JSON API (/api/v1, OpenAPI document at
/api/v1/openapi.json), /healthz and /readyz.

State lives in SQLite inside --data DIR, or in PostgreSQL with --db URL (then
several servers may share the database behind a load balancer). Migrations
are applied on start. Registrations are accepted only with OMS signatures that
verify against a --trusted-key. SIGINT or SIGTERM stops accepting connections
and waits for in-flight requests. Logs are structured, on stderr.

Logged predictions (POST /api/v1/predictions, docs/predictions.md) live in a
store of their own: DIR/predictions.db, or tables in the same PostgreSQL
database. --prediction-retention MODEL=DURATION (or the config file's
prediction_retention) deletes old records every --retention-interval.

Every change is appended to the transparency log in its own transaction.
Checkpoints are signed with --log-key (default DIR/log.key with --data, created
on first start with its verifier key in DIR/log.key.pub); the verifier key is
logged at start and served at /api/v1/log/key. With --db a --log-key is
required (create one with 'custody log keygen'), unless --unsigned-log says
to run without signed checkpoints. See docs/tlog.md.

Registration, approvals, promotions and rollbacks are decided by the Rego
policies of --policy DIR (default: the embedded ones) with the config of
--policy-config and the config file's "policy_config"; every decision is
logged. Protected aliases (--protected-alias, default production) move only
through 'custody promote' and 'custody rollback'. See docs/policy.md.

--monitors FILE runs production monitors (docs/monitoring.md) on the
ingested predictions and their first labels: every --monitor-interval the
due windows are evaluated, each result is logged (monitor.result), breaches
alert through signed webhooks, and N breaching windows in a row roll the
alias back as the actor monitor:NAME through the rollback policy. State:
DIR/monitors with --data, the database with --db, or --monitor-state DIR.
Reports: GET /api/v1/monitors/NAME/report and /monitors/NAME/report.html.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Config != "" {
				if err := opts.loadConfig(cmd); err != nil {
					return err
				}
			}
			return runServer(cmd.Context(), cmd.ErrOrStderr(), opts)
		},
	}
	opts.AddFlags(cmd)
	return cmd
}

// serverConfig is the --config file: the same settings as the flags.
//
//	{"data": "/var/lib/custody", "db": "", "listen": "0.0.0.0:8420",
//	 "trusted_keys": ["/etc/custody/release.pub"], "rate": 200, "burst": 400,
//	 "log_format": "json", "shutdown_timeout": "10s", "policy": "/etc/custody/policy",
//	 "policy_config": {"trusted_keys": [], "min_metrics": {"accuracy": 0.9}},
//	 "protected_aliases": ["production"]}
//
// Relative paths are relative to the file's directory. Unknown fields are
// errors. Trusted keys from the file and from --trusted-key add up.
type serverConfig struct {
	Data            string          `json:"data"`
	DB              string          `json:"db"`
	Listen          string          `json:"listen"`
	TrustedKeys     []string        `json:"trusted_keys"`
	TrustedCAs      []string        `json:"trusted_cas"`
	Sigstore        []sigstoreFlags `json:"sigstore"`
	Rate            *float64        `json:"rate"`
	Burst           *int            `json:"burst"`
	LogFormat       string          `json:"log_format"`
	ShutdownTimeout string          `json:"shutdown_timeout"`
	LogKey          string          `json:"log_key"`
	LogOrigin       string          `json:"log_origin"`
	UnsignedLog     bool            `json:"unsigned_log"`
	Policy          string          `json:"policy"`
	PolicyConfig    *policyConfig   `json:"policy_config"`
	ProtectedAlias  []string        `json:"protected_aliases"`
	Monitors        string          `json:"monitors"`
	MonitorState    string          `json:"monitor_state"`
	MonitorInterval string          `json:"monitor_interval"`
	// PredictionRetention maps model names ("*": every other model) to
	// how long their logged predictions are kept ("720h").
	PredictionRetention map[string]string `json:"prediction_retention"`
	RetentionInterval   string            `json:"retention_interval"`
}

func (o *serverOptions) loadConfig(cmd *cobra.Command) error {
	raw, err := os.ReadFile(o.Config)
	if err != nil {
		return err
	}
	var c serverConfig
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return usagef("--config %s: %v", o.Config, err)
	}
	dir := filepath.Dir(o.Config)
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	set := func(name string) bool { return cmd.Flags().Changed(name) }
	if !set("data") && c.Data != "" {
		o.Data = abs(c.Data)
	}
	if !set("db") && c.DB != "" {
		o.DB = c.DB
	}
	if !set("listen") && c.Listen != "" {
		o.Listen = c.Listen
	}
	for _, k := range c.TrustedKeys {
		o.TrustedKeys = append(o.TrustedKeys, abs(k))
	}
	for _, k := range c.TrustedCAs {
		o.TrustedCAs = append(o.TrustedCAs, abs(k))
	}
	for _, s := range c.Sigstore {
		s.TrustedRoot = abs(s.TrustedRoot)
		o.extraSigstore = append(o.extraSigstore, s)
	}
	if !set("rate") && c.Rate != nil {
		o.Rate = *c.Rate
	}
	if !set("burst") && c.Burst != nil {
		o.Burst = *c.Burst
	}
	if !set("log-format") && c.LogFormat != "" {
		o.LogFormat = c.LogFormat
	}
	if !set("log-key") && c.LogKey != "" {
		o.LogKey = abs(c.LogKey)
	}
	if !set("log-origin") && c.LogOrigin != "" {
		o.LogOrigin = c.LogOrigin
	}
	if !set("unsigned-log") && c.UnsignedLog {
		o.UnsignedLog = true
	}
	if !set("policy") && c.Policy != "" {
		o.Policy = abs(c.Policy)
	}
	if c.PolicyConfig != nil {
		o.policyConfig.merge(*c.PolicyConfig)
	}
	if !set("monitors") && c.Monitors != "" {
		o.Monitors = abs(c.Monitors)
	}
	if !set("monitor-state") && c.MonitorState != "" {
		o.MonitorState = abs(c.MonitorState)
	}
	if !set("monitor-interval") && c.MonitorInterval != "" {
		d, err := time.ParseDuration(c.MonitorInterval)
		if err != nil || d <= 0 {
			return usagef("--config %s: monitor_interval: want a positive duration", o.Config)
		}
		o.MonitorInterval = d
	}
	if !set("protected-alias") && c.ProtectedAlias != nil {
		o.Protected = c.ProtectedAlias
	}
	o.extraRetention = c.PredictionRetention
	if !set("retention-interval") && c.RetentionInterval != "" {
		d, err := time.ParseDuration(c.RetentionInterval)
		if err != nil || d <= 0 {
			return usagef("--config %s: retention_interval: want a positive duration", o.Config)
		}
		o.RetentionInterval = d
	}
	if !set("shutdown-timeout") && c.ShutdownTimeout != "" {
		d, err := time.ParseDuration(c.ShutdownTimeout)
		if err != nil {
			return usagef("--config %s: shutdown_timeout: %v", o.Config, err)
		}
		o.Shutdown = d
	}
	return nil
}

// openPredictions opens the prediction store beside the registry's.
func (o *storeOptions) openPredictions(ctx context.Context, popts predsql.Options) (*predsql.DB, error) {
	switch {
	case o.DB != "" && o.Data != "":
		return nil, usagef("--data and --db are exclusive")
	case o.DB != "":
		return predsql.OpenPostgres(ctx, o.DB, popts)
	case o.Data != "":
		return predsql.OpenDir(ctx, o.Data, popts)
	default:
		return nil, usagef("say where the registry lives: --data DIR or --db postgres://...")
	}
}

// enforceRetention deletes expired predictions now and then every
// interval, until ctx ends.
func enforceRetention(ctx context.Context, log *slog.Logger, preds *predict.Service, r predict.Retention, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		deleted, err := preds.EnforceRetention(ctx, r)
		if err != nil && ctx.Err() == nil {
			log.Error("prediction retention failed", "err", err)
		}
		for m, n := range deleted {
			log.Info("prediction retention", "model", m, "deleted", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// logSigner loads the log's checkpoint key: --log-key, or DIR/log.key with
// --data (created on first start). With --db and no --log-key there is none.
func (o *serverOptions) logSigner() (note.Signer, string, error) {
	path := o.LogKey
	if path == "" && o.Data == "" {
		return nil, "", nil
	}
	origin := o.LogOrigin
	if origin == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "localhost"
		}
		origin = host + "/custody"
	}
	if path == "" {
		return tlog.LoadOrCreateSigner(filepath.Join(o.Data, "log.key"), origin)
	}
	if o.Data != "" {
		return tlog.LoadOrCreateSigner(path, origin)
	}
	return tlog.LoadSigner(path)
}

func runServer(ctx context.Context, stderr io.Writer, opts serverOptions) error {
	log, err := newLogger(stderr, opts.LogFormat)
	if err != nil {
		return err
	}

	var verifier registry.SignatureVerifier
	tc, err := opts.trustConfig()
	if err != nil {
		return err
	}
	if len(tc.Keys)+len(tc.Roots)+len(tc.Keyless) > 0 {
		if verifier, err = trust.New(tc); err != nil {
			return usagef("%v", err)
		}
	} else {
		log.Warn("nothing trusted (no --trusted-key, --trusted-ca or --sigstore-*): every registration will be refused as unverifiable")
	}

	signer, vkey, err := opts.logSigner()
	if err != nil {
		return err
	}
	if signer == nil && opts.DB != "" && !opts.UnsignedLog {
		return usagef("--db needs --log-key to sign the transparency log's checkpoints: create one with 'custody log keygen --origin NAME --out FILE' and pass --log-key FILE (or pass --unsigned-log to run without signed checkpoints)")
	}
	for _, a := range opts.Protected {
		if err := registry.CheckAlias(a); err != nil {
			return usagef("--protected-alias: %v", err)
		}
	}
	if err := opts.checkMonitors(); err != nil {
		return err
	}
	gate, policyCfg, err := opts.gate(ctx)
	if err != nil {
		return err
	}
	st, err := opts.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	// The transparency log joins every write transaction as a TxHook: each
	// change and its log entry commit together.
	svc := registry.New(st, registry.Options{Verifier: verifier, Hooks: []registry.TxHook{tlog.Hook{}},
		Gate: gate, PolicyConfig: policyCfg, ProtectedAliases: opts.Protected})
	policyDir := opts.Policy
	if policyDir == "" {
		policyDir = "(embedded defaults)"
	}
	log.Info("policy", "dir", policyDir, "config", policyCfg, "protected_aliases", opts.Protected)
	if signer == nil {
		log.Warn("--unsigned-log: every change is logged, but checkpoints are not signed (create a key with 'custody log keygen')")
	} else {
		log.Info("transparency log", "origin", signer.Name(), "verifier_key", vkey)
	}
	retention, err := opts.retention()
	if err != nil {
		return err
	}
	if opts.RetentionInterval <= 0 {
		return usagef("--retention-interval must be positive")
	}
	// Logged predictions have a store of their own (docs/predictions.md):
	// predictions.db beside the registry, or tables in the same PostgreSQL.
	metrics := api.NewMetrics()
	pst, err := opts.openPredictions(ctx, predsql.Options{OnCommit: metrics.ObserveCommit})
	if err != nil {
		return err
	}
	defer pst.Close()
	monitors, err := opts.openMonitors(log, svc, pst)
	if err != nil {
		return err
	}
	popts := predict.Options{Observers: []predict.Observer{metrics}}
	if monitors != nil {
		obs := predictionObserver{set: monitors, log: log}
		popts.Observers = append(popts.Observers, obs)
		popts.LabelObservers = []predict.LabelObserver{obs}
		popts.OnObserveError = func(err error) { log.Warn("monitors miss a label batch", "err", err) }
	}
	preds := predict.New(svc, pst, popts)
	ready := func(ctx context.Context) error {
		if err := st.Ping(ctx); err != nil {
			return err
		}
		return pst.Ping(ctx)
	}
	handler, err := api.New(svc, api.Options{Logger: log, RatePerSecond: opts.Rate, RateBurst: opts.Burst, Ready: ready,
		Log: tlog.New(st, signer), LogVerifierKey: vkey, Predictions: preds, Metrics: metrics, MaxIngestBytes: opts.MaxIngestBytes,
		Monitors: monitors})
	if err != nil {
		return usagef("%v", err)
	}
	if !retention.IsZero() {
		log.Info("prediction retention", "retention", retention.String(), "interval", opts.RetentionInterval)
		rctx, cancel := context.WithCancel(ctx)
		defer cancel() // before pst.Close
		go enforceRetention(rctx, log, preds, retention, opts.RetentionInterval)
	}
	if monitors != nil {
		names := []string{}
		for _, e := range monitors.Engines() {
			names = append(names, e.Monitor().Name)
		}
		log.Info("monitors", "config", opts.Monitors, "monitors", names, "interval", opts.MonitorInterval)
		stop := runMonitors(ctx, log, monitors, opts.MonitorInterval)
		defer stop() // before pst.Close and st.Close: the last evaluation may roll back
	}
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       5 * time.Minute,
		WriteTimeout:      5 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	addr := ln.Addr().String()
	if opts.AddrFile != "" {
		if err := fileutil.WriteFileAtomic(opts.AddrFile, []byte(addr+"\n"), 0o644); err != nil {
			ln.Close()
			return err
		}
	}
	backend := "sqlite"
	if opts.DB != "" {
		backend = "postgres"
	}
	log.Info("serving", "addr", addr, "store", backend, "trusted_keys", len(tc.Keys), "trusted_cas", len(tc.Roots), "sigstore_identities", len(tc.Keyless))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", opts.Shutdown)
	sctx, cancel := context.WithTimeout(context.Background(), opts.Shutdown)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("failed to shut down gracefully: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	m := handler.Metrics()
	log.Info("stopped", "requests", m.Requests.Load(), "client_errors", m.ClientErrors.Load(), "server_errors", m.ServerErrors.Load())
	return nil
}
