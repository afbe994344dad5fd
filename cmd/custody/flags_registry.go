package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/custody-ml/custody/internal/api"
	"github.com/custody-ml/custody/internal/client"
	"github.com/custody-ml/custody/internal/registry"
	"github.com/custody-ml/custody/internal/store"
	"github.com/custody-ml/custody/internal/store/postgres"
	"github.com/custody-ml/custody/internal/store/sqlite"
	"github.com/spf13/pflag"
)

// storeOptions select the registry's database: SQLite in a data directory
// (the default) or PostgreSQL.
type storeOptions struct {
	Data       string
	DB         string
	SQLiteSync string
}

func (o *storeOptions) AddFlags(f *pflag.FlagSet) {
	f.StringVar(&o.Data, "data", "", "data directory (SQLite database and local files)")
	f.StringVar(&o.DB, "db", "", "PostgreSQL URL (postgres://...); replaces the SQLite database")
	f.StringVar(&o.SQLiteSync, "sqlite-sync", "full", "SQLite commit durability: full (survives power loss) or normal (survives process crashes; faster)")
}

func (o *storeOptions) open(ctx context.Context) (store.Store, error) {
	switch {
	case o.DB != "" && o.Data != "":
		return nil, usagef("--data and --db are exclusive")
	case o.DB != "":
		return postgres.Open(ctx, o.DB)
	case o.Data != "":
		return sqlite.OpenDir(ctx, o.Data, sqlite.Options{Sync: o.SQLiteSync})
	default:
		return nil, usagef("say where the registry lives: --data DIR or --db postgres://...")
	}
}

// clientOptions locate the server and the token for client verbs.
type clientOptions struct {
	Server string
	Token  string
}

func (o *clientOptions) AddFlags(f *pflag.FlagSet) {
	f.StringVar(&o.Server, "server", "", "registry server URL (default $CUSTODY_SERVER)")
	f.StringVar(&o.Token, "token", "", "API token (default $CUSTODY_TOKEN)")
}

func (o *clientOptions) client() (*client.Client, error) {
	srv, tok := o.Server, o.Token
	if srv == "" {
		srv = os.Getenv("CUSTODY_SERVER")
	}
	if tok == "" {
		tok = os.Getenv("CUSTODY_TOKEN")
	}
	c, err := client.New(srv, tok)
	if err != nil {
		return nil, usagef("%v", err)
	}
	return c, nil
}

// serverError maps a refusal that means "the property does not hold" to
// exit 1: different bytes under an existing version, a signature that does
// not verify, or something that does not exist. Everything else (bad
// requests, auth, transport) could not be checked: exit 2.
func serverError(err error) error {
	var ce *client.Error
	if errors.As(err, &ce) && ce.Type == api.ErrPolicyDenied {
		return notHold(&policyDenial{ce})
	}
	for _, t := range []api.ErrorType{api.ErrConflict, api.ErrUnverified, api.ErrNotFound} {
		if client.IsType(err, t) {
			return notHold(err)
		}
	}
	return err
}

// policyDenial prints a policy's deny reasons one per line; a denial means
// the property (the policy) does not hold: exit 1.
type policyDenial struct{ e *client.Error }

func (d *policyDenial) Error() string {
	if len(d.e.Reasons) == 0 {
		return d.e.Error()
	}
	head := strings.TrimSuffix(d.e.Msg, ": "+strings.Join(d.e.Reasons, "; "))
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s, HTTP %d):", head, d.e.Type, d.e.Status)
	for _, r := range d.e.Reasons {
		b.WriteString("\n  - " + r)
	}
	return b.String()
}

func (d *policyDenial) Unwrap() error { return d.e }

// refClient parses a NAME@VERSION argument and opens the client: the start
// of every verb about one version on a server.
func (o *clientOptions) refClient(ref string) (name, version string, c *client.Client, err error) {
	if name, version, err = refArg(ref); err != nil {
		return "", "", nil, err
	}
	if c, err = o.client(); err != nil {
		return "", "", nil, err
	}
	return name, version, c, nil
}

// refArg parses NAME@VERSION as a usage error when malformed.
func refArg(s string) (string, string, error) {
	n, v, err := registry.ParseRef(s)
	if err != nil {
		var e error = err
		if errors.Is(err, registry.ErrInvalid) {
			return "", "", usagef("%v", e)
		}
		return "", "", err
	}
	return n, v, nil
}

// newLogger returns the structured logger of a long-running verb
// (--log-format json or text).
func newLogger(w io.Writer, format string) (*slog.Logger, error) {
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, nil)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, nil)), nil
	}
	return nil, usagef("--log-format must be json or text")
}
