// Package alert delivers signed webhook notifications: a JSON POST with
// retries (exponential backoff with full jitter, bounded attempts, a
// timeout per attempt), an idempotency key, and an HMAC-SHA256 signature
// header that receivers verify with [Verify].
//
// # Signature
//
// Every request carries
//
//	X-Custody-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>
//	Idempotency-Key: <the same for every attempt of one notification>
//
// A receiver recomputes the HMAC over the decimal timestamp, a '.', and
// the raw body bytes, compares it in constant time, and rejects
// timestamps too far from its clock (replay). See docs/monitoring.md.
package alert

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Header names.
const (
	SignatureHeader   = "X-Custody-Signature"
	IdempotencyHeader = "Idempotency-Key"
)

// ErrSignature is returned by Verify for a missing, malformed, stale or
// wrong signature. Check with errors.Is.
var ErrSignature = errors.New("invalid webhook signature")

// Sign returns the signature header value for body at time t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Verify checks a signature header for body against secret: the
// timestamp must be within tolerance of now, and one v1 value must equal
// the HMAC (compared in constant time).
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return fmt.Errorf("%w: malformed header", ErrSignature)
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			b, err := hex.DecodeString(v)
			if err != nil || len(b) != sha256.Size {
				return fmt.Errorf("%w: malformed v1", ErrSignature)
			}
			sigs = append(sigs, b)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return fmt.Errorf("%w: missing t or v1", ErrSignature)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: timestamp outside the tolerance", ErrSignature)
	}
	want := mac(secret, ts, body)
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			return nil
		}
	}
	return fmt.Errorf("%w: no matching v1", ErrSignature)
}

// Webhook posts JSON bodies to one URL.
type Webhook struct {
	URL    string
	Secret []byte // HMAC key; no signature header when empty
	Client *http.Client
	// MaxAttempts bounds deliveries (default 5); Timeout bounds one
	// attempt (default 10 s); BaseDelay is the first backoff (default
	// 500 ms), doubled per attempt up to MaxDelay (default 30 s), each
	// delay drawn uniformly in [0, that] (full jitter).
	MaxAttempts int
	Timeout     time.Duration
	BaseDelay   time.Duration
	MaxDelay    time.Duration
	// Now is the clock of the signature (time.Now when nil).
	Now func() time.Time
}

// DeliveryError is returned when every attempt failed; it wraps the last
// attempt's error.
type DeliveryError struct {
	URL      string // without query or credentials
	Attempts int
	Err      error
}

func (e *DeliveryError) Error() string {
	return fmt.Sprintf("webhook %s: %d attempts failed: %v", e.URL, e.Attempts, e.Err)
}

func (e *DeliveryError) Unwrap() error { return e.Err }

// redact drops the query and user info of a URL for messages: tokens
// often ride there.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid url)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

// Send posts body (JSON) until a 2xx answer, at most MaxAttempts times.
// 4xx answers other than 408 and 429 are not retried. The idempotency key
// is sent with every attempt so that receivers can drop duplicates.
func (w *Webhook) Send(ctx context.Context, body []byte, idempotencyKey string) error {
	attempts := w.MaxAttempts
	if attempts <= 0 {
		attempts = 5
	}
	timeout, base, maxDelay := w.Timeout, w.BaseDelay, w.MaxDelay
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	if base <= 0 {
		base = 500 * time.Millisecond
	}
	if maxDelay <= 0 {
		maxDelay = 30 * time.Second
	}
	client := w.Client
	if client == nil {
		client = http.DefaultClient
	}
	now := w.Now
	if now == nil {
		now = time.Now
	}
	var last error
	for i := 0; i < attempts; i++ {
		if i > 0 {
			d := min(base<<(i-1), maxDelay)
			d = time.Duration(rand.Int64N(int64(d) + 1))
			select {
			case <-ctx.Done():
				return &DeliveryError{redact(w.URL), i, ctx.Err()}
			case <-time.After(d):
			}
		}
		retry, err := w.attempt(ctx, client, timeout, body, idempotencyKey, now())
		if err == nil {
			return nil
		}
		last = err
		if !retry {
			return &DeliveryError{redact(w.URL), i + 1, err}
		}
	}
	return &DeliveryError{redact(w.URL), attempts, last}
}

func (w *Webhook) attempt(ctx context.Context, client *http.Client, timeout time.Duration, body []byte, key string, t time.Time) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return false, errors.New("invalid webhook url")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "custody-monitor")
	if key != "" {
		req.Header.Set(IdempotencyHeader, key)
	}
	if len(w.Secret) > 0 {
		req.Header.Set(SignatureHeader, Sign(w.Secret, t, body))
	}
	resp, err := client.Do(req)
	if err != nil {
		// url.Error repeats the full URL; keep only its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return true, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return false, nil
	}
	err = fmt.Errorf("status %d", resp.StatusCode)
	retry = resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests
	return retry, err
}
