// Package shiptest is a real HTTP receiver implementing the ingest side of
// the prediction wire contract (POST /api/v1/predictions, docs/proxy.md),
// for tests and benchmarks of the shipper and the proxy until they run
// against the custody server itself.
package shiptest

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
	"time"
)

// Receiver is a real HTTP server implementing the ingest side of WIRE.md
// (POST /api/v1/predictions): NDJSON or a JSON array, gzip, bearer token,
// dedup by request_id (identical bytes: duplicate; different: rejected),
// per-record rejection (model "bad"), and scripted failures (status codes
// returned before storing anything). It can be stopped (listener closed)
// and restarted on the same address.
type Receiver struct {
	Token string

	mu       sync.Mutex
	byID     map[string][]byte
	order    []string // request ids in the order they were stored
	dups     int
	rejected []string
	hang     chan struct{}
	fail     []int // statuses to answer, one per request, before succeeding

	Requests atomic.Int64
	addr     string
	srvMu    sync.Mutex
	srv      *http.Server
}

// New starts a receiver on a loopback port; it accepts the bearer token
// "tok". Stop it with Stop.
func New() (*Receiver, error) {
	r := &Receiver{Token: "tok", byID: map[string][]byte{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r.addr = ln.Addr().String()
	r.serve(ln)
	return r, nil
}

// URL is the receiver's base URL.
func (r *Receiver) URL() string { return "http://" + r.addr }

func (r *Receiver) serve(ln net.Listener) {
	r.srvMu.Lock()
	defer r.srvMu.Unlock()
	r.srv = &http.Server{Handler: r}
	go r.srv.Serve(ln)
}

// Stop closes the listener and every connection: the server is
// unreachable until Restart.
func (r *Receiver) Stop() {
	r.srvMu.Lock()
	defer r.srvMu.Unlock()
	if r.srv != nil {
		r.srv.Close()
		r.srv = nil
	}
}

// Restart listens on the same address again.
func (r *Receiver) Restart() error {
	var ln net.Listener
	var err error
	for range 100 {
		if ln, err = net.Listen("tcp", r.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	r.serve(ln)
	return nil
}

// FailNext makes the next requests fail with these statuses, in order
// (0: that request succeeds).
func (r *Receiver) FailNext(codes ...int) {
	r.mu.Lock()
	r.fail = append(r.fail, codes...)
	r.mu.Unlock()
}

// Stored returns the request ids stored, in arrival order.
func (r *Receiver) Stored() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.order...)
}

func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.Requests.Add(1)
	if req.Method != http.MethodPost || req.URL.Path != "/api/v1/predictions" {
		http.Error(w, `{"status":"error","errorType":"not_found","error":"no route"}`, http.StatusNotFound)
		return
	}
	if req.Header.Get("Authorization") != "Bearer "+r.Token {
		http.Error(w, `{"status":"error","errorType":"unauthorized","error":"bad token"}`, http.StatusUnauthorized)
		return
	}
	r.mu.Lock()
	if h := r.hang; h != nil {
		r.mu.Unlock()
		select {
		case <-h:
		case <-req.Context().Done():
			return
		}
		r.mu.Lock()
	}
	if len(r.fail) > 0 && r.fail[0] == 0 {
		r.fail = r.fail[1:]
	} else if len(r.fail) > 0 {
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

// Record returns the stored bytes of a record.
func (r *Receiver) Record(id string) ([]byte, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.byID[id]
	return b, ok
}

// Duplicates counts records received again with identical content.
func (r *Receiver) Duplicates() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dups
}

// Preload marks records as already stored (as if acknowledged before).
func (r *Receiver) Preload(id string, rec []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.byID[id] = rec
	r.order = append(r.order, id)
}

// Hang makes every request block (the server accepts but never answers)
// until Release; requests cancelled by the client return.
func (r *Receiver) Hang() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hang = make(chan struct{})
}

// Release ends Hang.
func (r *Receiver) Release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.hang != nil {
		close(r.hang)
		r.hang = nil
	}
}
