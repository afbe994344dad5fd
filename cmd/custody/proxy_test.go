package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/custody-ml/custody/internal/client"
	"github.com/custody-ml/custody/internal/ship/shiptest"
	"github.com/rogpeppe/go-internal/testscript"
)

// Script commands for testdata/script/proxy.txt: a real receiver of the
// prediction wire contract (the custody server's ingest endpoint is not
// needed to test the sidecar), a tiny KServe v2 upstream, and an HTTP client.
var (
	receiversMu sync.Mutex
	receivers   = map[*testscript.TestScript]*shiptest.Receiver{}
)

func receiverOf(ts *testscript.TestScript) *shiptest.Receiver {
	receiversMu.Lock()
	defer receiversMu.Unlock()
	r := receivers[ts]
	if r == nil {
		ts.Fatalf("no wirereceiver started")
	}
	return r
}

func init() {
	// wirereceiver VAR: start a receiver (token "tok"); VAR is its URL.
	scriptCmds["wirereceiver"] = func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) != 1 {
			ts.Fatalf("usage: wirereceiver VAR")
		}
		r, err := shiptest.New()
		ts.Check(err)
		receiversMu.Lock()
		receivers[ts] = r
		receiversMu.Unlock()
		ts.Defer(func() {
			r.Stop()
			receiversMu.Lock()
			delete(receivers, ts)
			receiversMu.Unlock()
		})
		ts.Setenv(args[0], r.URL())
	}
	// wirestop / wirerestart: the receiver becomes unreachable / comes back.
	scriptCmds["wirestop"] = func(ts *testscript.TestScript, neg bool, args []string) { receiverOf(ts).Stop() }
	scriptCmds["wirerestart"] = func(ts *testscript.TestScript, neg bool, args []string) {
		ts.Check(receiverOf(ts).Restart())
	}
	// wirewait N: wait (up to a minute) until N records are stored, then
	// print their request ids in arrival order and the duplicate count.
	scriptCmds["wirewait"] = func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) != 1 {
			ts.Fatalf("usage: wirewait N")
		}
		var n int
		fmt.Sscan(args[0], &n)
		r := receiverOf(ts)
		deadline := time.Now().Add(time.Minute)
		for len(r.Stored()) < n {
			if time.Now().After(deadline) {
				ts.Fatalf("wirewait: %d records stored, want %d", len(r.Stored()), n)
			}
			time.Sleep(20 * time.Millisecond)
		}
		for _, id := range r.Stored() {
			fmt.Fprintln(ts.Stdout(), id)
		}
		fmt.Fprintf(ts.Stdout(), "duplicates %d\n", r.Duplicates())
	}
	// wirerecord ID: print a stored record.
	scriptCmds["wirerecord"] = func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) != 1 {
			ts.Fatalf("usage: wirerecord ID")
		}
		b, ok := receiverOf(ts).Record(args[0])
		if ok == neg {
			ts.Fatalf("wirerecord %s: stored=%v", args[0], ok)
		}
		fmt.Fprintf(ts.Stdout(), "%s\n", b)
	}
	// waitpred ID...: wait (up to a minute) until the server at
	// $CUSTODY_SERVER holds predictions with these request ids (token
	// $CUSTODY_TOKEN, a reader).
	scriptCmds["waitpred"] = func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) == 0 {
			ts.Fatalf("usage: waitpred ID...")
		}
		c, err := client.New(ts.Getenv("CUSTODY_SERVER"), ts.Getenv("CUSTODY_TOKEN"))
		ts.Check(err)
		deadline := time.Now().Add(time.Minute)
		for _, id := range args {
			for {
				_, err := c.GetPrediction(context.Background(), id)
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					ts.Fatalf("waitpred %s: %v", id, err)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	// kserve VAR: a KServe v2 upstream answering P(yes) = 0.75 for every
	// row (outputs "probs" [B,2]); VAR is its URL.
	scriptCmds["kserve"] = func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) != 1 {
			ts.Fatalf("usage: kserve VAR")
		}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var req struct {
				Inputs []struct {
					Shape []int `json:"shape"`
				} `json:"inputs"`
			}
			if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Inputs) == 0 || len(req.Inputs[0].Shape) == 0 {
				http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
				return
			}
			b := req.Inputs[0].Shape[0]
			var probs []float64
			for range b {
				probs = append(probs, 0.25, 0.75)
			}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"model_name": "wp", "outputs": []map[string]any{
				{"name": "probs", "shape": []int{b, 2}, "datatype": "FP64", "data": probs}}})
		}))
		ts.Defer(srv.Close)
		ts.Setenv(args[0], srv.URL)
	}
	// httppost URL FILE [Name:Value...]: POST FILE as JSON; print the status,
	// the custody response headers and the body.
	scriptCmds["httppost"] = func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) < 2 {
			ts.Fatalf("usage: httppost URL FILE [Name:Value...]")
		}
		body, err := os.ReadFile(ts.MkAbs(args[1]))
		ts.Check(err)
		req, err := http.NewRequest(http.MethodPost, args[0], bytes.NewReader(body))
		ts.Check(err)
		req.Header.Set("Content-Type", "application/json")
		for _, h := range args[2:] {
			k, v, _ := strings.Cut(h, ":")
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		ts.Check(err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		ts.Check(err)
		fmt.Fprintf(ts.Stdout(), "status %d\n", resp.StatusCode)
		var keys []string
		for k := range resp.Header {
			if strings.HasPrefix(k, "X-") {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(ts.Stdout(), "%s: %s\n", strings.ToLower(k), resp.Header.Get(k))
		}
		fmt.Fprintf(ts.Stdout(), "%s\n", b)
	}
}
