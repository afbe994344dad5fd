package ship

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// receiver is a real HTTP server implementing the ingest side of WIRE.md
// (POST /api/v1/predictions): NDJSON or a JSON array, gzip, bearer token,
// dedup by request_id (identical bytes: duplicate; different: rejected),
// per-record rejection (model "bad"), and scripted failures (status codes
// returned before storing anything). It can be stopped (listener closed)
// and restarted on the same address.
type receiver struct {
	t     *testing.T
	token string

	mu       sync.Mutex
	byID     map[string][]byte
	order    []string // request ids in the order they were stored
	dups     int
	rejected []string
	fail     []int // statuses to answer, one per request, before succeeding

	requests atomic.Int64
	addr     string
	srv      *http.Server
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	r := &receiver{t: t, token: "tok", byID: map[string][]byte{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	r.serve(ln)
	t.Cleanup(r.stop)
	return r
}

func (r *receiver) url() string { return "http://" + r.addr }

func (r *receiver) serve(ln net.Listener) {
	r.srv = &http.Server{Handler: r}
	go r.srv.Serve(ln)
}

// stop closes the listener and every connection: the server is unreachable.
func (r *receiver) stop() {
	if r.srv != nil {
		r.srv.Close()
		r.srv = nil
	}
}

// restart listens on the same address again.
func (r *receiver) restart() {
	r.t.Helper()
	var ln net.Listener
	var err error
	for range 100 {
		if ln, err = net.Listen("tcp", r.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatal(err)
	}
	r.serve(ln)
}

func (r *receiver) failNext(codes ...int) {
	r.mu.Lock()
	r.fail = append(r.fail, codes...)
	r.mu.Unlock()
}

func (r *receiver) stored() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.order...)
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.requests.Add(1)
	if req.Method != http.MethodPost || req.URL.Path != "/api/v1/predictions" {
		http.Error(w, `{"status":"error","errorType":"not_found","error":"no route"}`, http.StatusNotFound)
		return
	}
	if req.Header.Get("Authorization") != "Bearer "+r.token {
		http.Error(w, `{"status":"error","errorType":"unauthorized","error":"bad token"}`, http.StatusUnauthorized)
		return
	}
	r.mu.Lock()
	if len(r.fail) > 0 {
		code := r.fail[0]
		r.fail = r.fail[1:]
		r.mu.Unlock()
		w.WriteHeader(code)
		io.WriteString(w, `{"status":"error","errorType":"unavailable","error":"scripted failure"}`)
		return
	}
	r.mu.Unlock()
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			http.Error(w, `{"status":"error","errorType":"bad_data","error":"gzip"}`, http.StatusBadRequest)
			return
		}
		body = zr
	}
	raw, err := io.ReadAll(io.LimitReader(body, 64<<20))
	if err != nil {
		http.Error(w, `{"status":"error","errorType":"bad_data","error":"read"}`, http.StatusBadRequest)
		return
	}
	var lines [][]byte
	if req.Header.Get("Content-Type") == "application/x-ndjson" {
		sc := bufio.NewScanner(bytes.NewReader(raw))
		sc.Buffer(nil, 8<<20)
		for sc.Scan() {
			if len(bytes.TrimSpace(sc.Bytes())) > 0 {
				lines = append(lines, bytes.Clone(sc.Bytes()))
			}
		}
	} else {
		var arr []json.RawMessage
		if err := json.Unmarshal(raw, &arr); err != nil {
			http.Error(w, `{"status":"error","errorType":"bad_data","error":"json"}`, http.StatusBadRequest)
			return
		}
		for _, a := range arr {
			lines = append(lines, a)
		}
	}
	type rej struct {
		Index     int    `json:"index"`
		RequestID string `json:"request_id"`
		Reason    string `json:"reason"`
	}
	res := struct {
		Stored     int      `json:"stored"`
		Duplicates int      `json:"duplicates"`
		Rejected   []rej    `json:"rejected"`
		RequestIDs []string `json:"request_ids"`
	}{Rejected: []rej{}}
	r.mu.Lock()
	for i, l := range lines {
		var rec struct {
			RequestID string `json:"request_id"`
			Model     string `json:"model"`
		}
		err := json.Unmarshal(l, &rec)
		reason := ""
		switch {
		case err != nil:
			reason = "not a JSON object"
		case rec.Model == "bad":
			reason = "unknown model"
		case rec.RequestID == "":
			reason = "no request_id"
		}
		if prev, ok := r.byID[rec.RequestID]; reason == "" && ok {
			if bytes.Equal(prev, l) {
				res.Duplicates++
				res.RequestIDs = append(res.RequestIDs, rec.RequestID)
				r.dups++
				continue
			}
			reason = "request_id already used by a different record"
		}
		if reason != "" {
			res.Rejected = append(res.Rejected, rej{i, rec.RequestID, reason})
			res.RequestIDs = append(res.RequestIDs, "")
			r.rejected = append(r.rejected, rec.RequestID)
			continue
		}
		r.byID[rec.RequestID] = l
		r.order = append(r.order, rec.RequestID)
		res.Stored++
		res.RequestIDs = append(res.RequestIDs, rec.RequestID)
	}
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": res})
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

