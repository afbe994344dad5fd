// Package pgtest starts throwaway PostgreSQL clusters for tests: initdb and
// pg_ctl from Debian's postgresql package, in a temporary directory, on a
// free loopback port. It is imported only by tests.
//
// Clusters for tests run with fsync and synchronous commit off: nothing
// survives a power loss, and nothing needs to. Clusters for benchmarks
// ([StartDurable]; [RunTests] when -test.bench is set, or with
// CUSTODY_PGTEST_DURABLE=1) keep PostgreSQL's durable defaults, so that
// the figures are those of a real server.
//
// When the PostgreSQL binaries are missing, [Start] returns [ErrUnavailable];
// tests skip then, except when [Required] says the environment must have
// them (CI=true or CUSTODY_TEST_POSTGRES=1), in which case they fail.
package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync/atomic"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// ErrUnavailable means no PostgreSQL server binaries were found.
var ErrUnavailable = errors.New("PostgreSQL server binaries (initdb, pg_ctl) not found; install Debian's postgresql package")

// Required reports whether PostgreSQL tests must run rather than skip.
func Required() bool {
	return os.Getenv("CI") == "true" || os.Getenv("CUSTODY_TEST_POSTGRES") == "1"
}

// Cluster is a running throwaway PostgreSQL cluster.
type Cluster struct {
	dir, bin string
	port     int
	asUser   []string // prefix running a command as the postgres user
	n        atomic.Int64
}

func findBin() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", ErrUnavailable
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start initializes and starts a cluster. initdb refuses to run as root, so
// as root the cluster belongs to the "postgres" system user (commands run
// through runuser).
func Start() (*Cluster, error) {
	return start(os.Getenv("CUSTODY_PGTEST_DURABLE") == "1")
}

// StartDurable is Start with PostgreSQL's durability settings left on
// (fsync, synchronous_commit, full_page_writes).
func StartDurable() (*Cluster, error) { return start(true) }

func start(durable bool) (*Cluster, error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "custody-pg-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir, bin: bin}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root and no postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		c.asUser = []string{"runuser", "-u", "postgres", "--"}
	}
	if err := c.run(filepath.Join(bin, "initdb"), "-D", filepath.Join(dir, "data"), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C"); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		if c.port, err = freePort(); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=200", c.port, dir)
		if !durable {
			opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
		}
		err = c.run(filepath.Join(bin, "pg_ctl"), "-D", filepath.Join(dir, "data"), "-l", filepath.Join(dir, "log"), "-o", opts, "-w", "-t", "60", "start")
		if err == nil {
			break
		}
		if attempt == 2 {
			log, _ := os.ReadFile(filepath.Join(dir, "log"))
			os.RemoveAll(dir)
			return nil, fmt.Errorf("%w\n%s", err, log)
		}
	}
	return c, nil
}

func (c *Cluster) run(name string, args ...string) error {
	argv := append(append([]string{}, c.asUser...), name)
	argv = append(argv, args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = c.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v\n%s", filepath.Base(name), err, out)
	}
	return nil
}

// URL returns the connection URL of database db.
func (c *Cluster) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

// NewDatabase creates an empty database and returns its URL.
func (c *Cluster) NewDatabase(ctx context.Context) (string, error) {
	name := fmt.Sprintf("t%d_%d", os.Getpid(), c.n.Add(1))
	db, err := sql.Open("pgx", c.URL("postgres"))
	if err != nil {
		return "", err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("failed to create database: %w", err)
	}
	return c.URL(name), nil
}

// Stop stops the cluster and removes its directory.
func (c *Cluster) Stop() error {
	err := c.run(filepath.Join(c.bin, "pg_ctl"), "-D", filepath.Join(c.dir, "data"), "-m", "immediate", "-w", "-t", "30", "stop")
	// The server may need a moment to release the directory.
	for i := 0; i < 50; i++ {
		if rerr := os.RemoveAll(c.dir); rerr == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}
