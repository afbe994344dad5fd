package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custody-ml/custody/internal/client"
	"github.com/custody-ml/custody/internal/predstore/predsql"
)

// predictionEnv is a data directory with an admin and an ingester token
// and a registered, signed model "m"; digest is its pinned digest.
type predictionEnv struct {
	dir, admin, ingester, digest string
	keyPub                       string
}

func cli(t testing.TB, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command("custody", args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("custody %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func newPredictionEnv(t testing.TB) *predictionEnv {
	t.Helper()
	work := t.TempDir()
	e := &predictionEnv{dir: filepath.Join(work, "data")}
	e.admin = lastLine(cli(t, nil, "token", "create", "--data", e.dir, "--role", "admin"))
	e.ingester = lastLine(cli(t, nil, "token", "create", "--data", e.dir, "--role", "ingester"))
	key := filepath.Join(work, "key")
	cli(t, nil, "keygen", "--out", key)
	e.keyPub = key + ".pub"
	model := filepath.Join(work, "model")
	os.MkdirAll(model, 0o755)
	os.WriteFile(filepath.Join(model, "weights.bin"), []byte("weights"), 0o644)
	cli(t, nil, "sign", model, "--key", key+".key", "--sig", filepath.Join(work, "model.sig"))
	return e
}

// register starts using a running server: registers model m and returns
// its digest.
func (e *predictionEnv) register(t testing.TB, url string) {
	t.Helper()
	work := filepath.Dir(e.dir)
	out := cli(t, []string{"CUSTODY_SERVER=" + url, "CUSTODY_TOKEN=" + e.admin},
		"model", "register", "m", "--version", "1", "--model", filepath.Join(work, "model"), "--sig", filepath.Join(work, "model.sig"))
	e.digest = regexp.MustCompile(`sha256:[0-9a-f]{64}`).FindString(out)
	if e.digest == "" {
		t.Fatalf("no digest in %q", out)
	}
}

func batch(prefix string, n int, digest string) []byte {
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, `{"ts":%d.%03d,"request_id":"%s-%d","model":"m","model_sha256":"%s","features":{"f1":%d,"f2":"v%d","f3":0.5},"prediction":%g,"latency_ms":1.25}`+"\n",
			1_780_000_000+i, i%1000, prefix, i, digest[7:23], i, i%7, float64(i%100)/100)
	}
	return b.Bytes()
}

// TestPredictionsSurviveKill ingests from concurrent clients, kills the
// server with SIGKILL mid-way, restarts it and checks that every
// acknowledged record is stored.
func TestPredictionsSurviveKill(t *testing.T) {
	e := newPredictionEnv(t)
	srv, url, stderr := startServer(t, e.dir, "--trusted-key", e.keyPub)
	e.register(t, url)
	c, err := client.New(url, e.ingester)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.WithoutCancel(t.Context())
	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
	)
	const perBatch = 200
	for w := range 4 {
		wg.Go(func() {
			for i := 0; i < 10_000; i++ {
				prefix := fmt.Sprintf("w%d-b%d", w, i)
				res, err := c.IngestPredictions(ctx, bytes.NewReader(batch(prefix, perBatch, e.digest)), true, false)
				if err != nil {
					return // the server died
				}
				if res.Stored != perBatch {
					t.Errorf("batch %s: %+v", prefix, res)
					return
				}
				mu.Lock()
				acked = append(acked, prefix)
				mu.Unlock()
			}
		})
	}
	time.Sleep(1500 * time.Millisecond)
	if err := srv.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	srv.Wait()
	wg.Wait()
	if len(acked) == 0 {
		t.Fatalf("nothing acknowledged before the crash: %s", stderr.String())
	}
	// Restart: the server recovers the database; then check every record.
	_, url, _ = startServer(t, e.dir, "--trusted-key", e.keyPub)
	st, err := predsql.OpenDir(ctx, e.dir, predsql.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, prefix := range acked {
		for i := range perBatch {
			if _, _, err := st.Get(ctx, fmt.Sprintf("%s-%d", prefix, i)); err != nil {
				t.Fatalf("acknowledged record %s-%d lost: %v", prefix, i, err)
			}
		}
	}
	// And through the restarted server's API.
	admin, _ := client.New(url, e.admin)
	if l, err := admin.GetPrediction(ctx, acked[len(acked)-1]+"-0"); err != nil || l.Version.Version != "1" {
		t.Fatalf("lookup after restart: %+v %v", l, err)
	}
	t.Logf("%d records acknowledged before SIGKILL, all present after restart", len(acked)*perBatch)
}

// A file larger than one request is sent in batches; rejection indexes
// count over the whole file.
func TestPredictionsIngestBatches(t *testing.T) {
	e := newPredictionEnv(t)
	_, url, _ := startServer(t, e.dir, "--trusted-key", e.keyPub)
	e.register(t, url)
	lines := bytes.Split(bytes.TrimSpace(batch("f", 25_001, e.digest)), []byte("\n"))
	lines[20_005] = []byte(`{"ts": 1, "model": "m"}`)
	file := filepath.Join(t.TempDir(), "p.ndjson")
	os.WriteFile(file, append(bytes.Join(lines, []byte("\n")), '\n'), 0o644)
	cmd := exec.Command("custody", "predictions", "ingest", file)
	cmd.Env = append(os.Environ(), "CUSTODY_SERVER="+url, "CUSTODY_TOKEN="+e.ingester)
	out, err := cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, want 1: %s", err, out)
	}
	if !strings.Contains(string(out), "stored 25000, duplicates 0, rejected 1") || !strings.Contains(string(out), "record 20005 ()") {
		t.Fatalf("output %s", out)
	}
}
