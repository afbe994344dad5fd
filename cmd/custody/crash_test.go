package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custody-ml/custody/internal/api"
	"github.com/custody-ml/custody/internal/client"
	"github.com/custody-ml/custody/internal/store/sqlite"
	"github.com/custody-ml/custody/internal/tlog"
)

// startServer runs `custody server` as a process and returns its URL.
func startServer(t testing.TB, dir string, extra ...string) (*exec.Cmd, string, *bytes.Buffer) {
	t.Helper()
	addrFile := filepath.Join(t.TempDir(), "addr")
	args := append([]string{"server", "--data", dir, "--listen", "127.0.0.1:0", "--addr-file", addrFile, "--rate", "100000", "--burst", "100000"}, extra...)
	cmd := exec.Command("custody", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(time.Minute); ; {
		if b, err := os.ReadFile(addrFile); err == nil && strings.HasSuffix(string(b), "\n") {
			return cmd, "http://" + strings.TrimSpace(string(b)), &stderr
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not start: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCrashKeepsLogAndState kills the server with SIGKILL while clients
// write, restarts it, and checks that every acknowledged change is there,
// logged, that every inclusion proof verifies against the new signed
// checkpoint, that the log is consistent with a checkpoint taken before the
// crash, and that the audit finds nothing.
func TestCrashKeepsLogAndState(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	out, err := exec.Command("custody", "token", "create", "--data", dir, "--role", "admin").Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	token := lines[len(lines)-1]
	srv, url, stderr := startServer(t, dir)
	v, err := tlog.ParseVerifier(filepath.Join(dir, "log.key.pub"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(url, token)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
	)
	stop := make(chan struct{})
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("w%d-m%d", w, i)
				if _, err := c.PutModel(ctx, name, api.ModelBody{Description: name}); err != nil {
					return // the server died
				}
				mu.Lock()
				acked = append(acked, name)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	before, err := c.LogCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cpBefore, err := tlog.OpenCheckpoint(before, v)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if err := srv.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	srv.Wait()
	close(stop)
	wg.Wait()
	if len(acked) == 0 {
		t.Fatalf("no write was acknowledged before the crash: %s", stderr.String())
	}

	_, url, _ = startServer(t, dir)
	c, _ = client.New(url, token)
	signed, err := c.LogCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := tlog.OpenCheckpoint(signed, v)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Size < int64(len(acked))+1 { // + the token
		t.Fatalf("log has %d entries after the crash, %d changes were acknowledged", cp.Size, len(acked)+1)
	}
	for _, name := range acked {
		if err := c.Get(ctx, "/api/v1/models/"+name, nil, nil); err != nil {
			t.Fatalf("acknowledged model %s lost: %v", name, err)
		}
	}
	for i := int64(0); i < cp.Size; i++ {
		p, err := c.LogEntry(ctx, i, cp.Size)
		if err != nil {
			t.Fatal(err)
		}
		if err := tlog.VerifyInclusion(cp, i, []byte(p.Entry), p.Proof); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := c.LogConsistency(ctx, cpBefore.Size, cp.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := tlog.VerifyConsistency(cpBefore, cp, cons.Proof); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.OpenDir(ctx, dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rep, err := tlog.Audit(context.WithoutCancel(ctx), st)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) > 0 || rep.Size != cp.Size {
		t.Fatalf("audit after the crash: size %d (checkpoint %d), findings:\n%s", rep.Size, cp.Size, strings.Join(rep.Findings, "\n"))
	}
	t.Logf("%d changes acknowledged before SIGKILL; log of %d entries intact", len(acked), cp.Size)
}
