package watch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/custody-ml/custody/internal/monitor/alert"
)

// WebhookAlerter sends alerts to a monitor's webhooks (signed when the
// webhook names a secret_env).
type WebhookAlerter struct {
	hooks []*alert.Webhook
}

// NewWebhookAlerter builds the webhooks of a monitor, reading each secret
// from the environment through getenv (os.Getenv). A named variable that
// is unset or empty is an error: alerts must not go out unsigned by
// mistake. The error names the variable, never its value.
func NewWebhookAlerter(hooks []Webhook, getenv func(string) string, client *http.Client) (*WebhookAlerter, error) {
	a := &WebhookAlerter{}
	for _, h := range hooks {
		w := &alert.Webhook{URL: h.URL, Client: client}
		if h.SecretEnv != "" {
			s := getenv(h.SecretEnv)
			if s == "" {
				return nil, fmt.Errorf("alerts: environment variable %s (secret_env) is not set: %w", h.SecretEnv, ErrConfig)
			}
			w.Secret = []byte(s)
		}
		a.hooks = append(a.hooks, w)
	}
	return a, nil
}

// Alert posts the alert as JSON to every webhook (in turn, each with its
// own retries) and returns the failures joined.
func (a *WebhookAlerter) Alert(ctx context.Context, al Alert) error {
	body, err := json.Marshal(al)
	if err != nil {
		return err
	}
	var errs []error
	for _, h := range a.hooks {
		if err := h.Send(ctx, body, al.IdempotencyKey); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
