package alert

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// receiver is a real HTTP server that fails the first `fail` requests
// with 503 and verifies signatures, as a receiver following the docs.
type receiver struct {
	mu       sync.Mutex
	fail     int
	requests int
	bodies   []string
	keys     []string
	verified []error
}

func (rc *receiver) handler(secret []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		rc.requests++
		rc.keys = append(rc.keys, r.Header.Get(IdempotencyHeader))
		rc.verified = append(rc.verified, Verify(secret, r.Header.Get(SignatureHeader), body, time.Now(), 5*time.Minute))
		if rc.requests <= rc.fail {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		rc.bodies = append(rc.bodies, string(body))
		w.WriteHeader(http.StatusNoContent)
	}
}

func TestSendRetriesAndSigns(t *testing.T) {
	secret := []byte("s3cret-value")
	rc := &receiver{fail: 2}
	srv := httptest.NewServer(rc.handler(secret))
	defer srv.Close()
	w := &Webhook{URL: srv.URL + "/hook?token=abc", Secret: secret, BaseDelay: time.Millisecond, MaxAttempts: 4}
	body := []byte(`{"event":"breach"}`)
	if err := w.Send(t.Context(), body, "m/1/breach"); err != nil {
		t.Fatal(err)
	}
	if rc.requests != 3 || len(rc.bodies) != 1 || rc.bodies[0] != string(body) {
		t.Fatalf("requests %d, delivered %q", rc.requests, rc.bodies)
	}
	for i, err := range rc.verified {
		if err != nil {
			t.Errorf("attempt %d: signature: %v", i, err)
		}
		if rc.keys[i] != "m/1/breach" {
			t.Errorf("attempt %d: idempotency key %q", i, rc.keys[i])
		}
	}
}

func TestSendGivesUp(t *testing.T) {
	rc := &receiver{fail: 100}
	srv := httptest.NewServer(rc.handler([]byte("k")))
	defer srv.Close()
	w := &Webhook{URL: srv.URL + "/hook?token=TOPSECRET", Secret: []byte("k"), BaseDelay: time.Millisecond, MaxAttempts: 3}
	err := w.Send(t.Context(), []byte(`{}`), "k")
	var de *DeliveryError
	if !errors.As(err, &de) || de.Attempts != 3 || rc.requests != 3 {
		t.Fatalf("err %v, requests %d", err, rc.requests)
	}
	if strings.Contains(err.Error(), "TOPSECRET") {
		t.Fatalf("error leaks the url query: %v", err)
	}
}

func TestSendNoRetryOn4xx(t *testing.T) {
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n++
		w.WriteHeader(http.StatusBadRequest)
	}))
	defer srv.Close()
	w := &Webhook{URL: srv.URL, BaseDelay: time.Millisecond}
	if err := w.Send(t.Context(), []byte(`{}`), ""); err == nil || n != 1 {
		t.Fatalf("err %v after %d requests", err, n)
	}
}

func TestSendTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	w := &Webhook{URL: srv.URL, Timeout: 20 * time.Millisecond, BaseDelay: time.Millisecond, MaxAttempts: 2}
	err := w.Send(t.Context(), []byte(`{}`), "")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want a deadline error, got %v", err)
	}
}

func TestVerify(t *testing.T) {
	secret := []byte("key")
	body := []byte(`{"a":1}`)
	now := time.Unix(1_800_000_000, 0)
	h := Sign(secret, now, body)
	if err := Verify(secret, h, body, now.Add(time.Minute), 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		secret, body []byte
		header       string
		at           time.Time
	}{
		"wrong secret": {[]byte("other"), body, h, now},
		"changed body": {secret, []byte(`{"a":2}`), h, now},
		"stale":        {secret, body, h, now.Add(10 * time.Minute)},
		"malformed":    {secret, body, "garbage", now},
		"no v1":        {secret, body, "t=1800000000", now},
		"bad hex":      {secret, body, "t=1800000000,v1=zz", now},
	} {
		if err := Verify(c.secret, c.header, c.body, c.at, 5*time.Minute); !errors.Is(err, ErrSignature) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// A known vector computed outside Go:
// python3 -c 'import hmac,hashlib;print(hmac.new(b"key",b"1800000000.{\"a\":1}",hashlib.sha256).hexdigest())'
func TestSignVector(t *testing.T) {
	got := Sign([]byte("key"), time.Unix(1_800_000_000, 0), []byte(`{"a":1}`))
	want := "t=1800000000,v1=" + pyHMAC
	if got != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
}

func FuzzVerify(f *testing.F) {
	f.Add("t=1800000000,v1=00", []byte("{}"))
	f.Add(Sign([]byte("k"), time.Unix(1_800_000_000, 0), []byte("{}")), []byte("{}"))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		err := Verify([]byte("k"), header, body, time.Unix(1_800_000_000, 0), time.Hour)
		if err == nil && header != Sign([]byte("k"), time.Unix(1_800_000_000, 0), body) && !strings.Contains(header, "v1=") {
			t.Fatalf("accepted %q", header)
		}
	})
}
