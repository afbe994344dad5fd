package watch

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const goodYAML = `
state_dir: state
monitors:
  - name: churn-prod
    model: churn
    reference: churn.profile.json
    window: 24h
    segments: [sport, region]
    metrics:
      ece: 0.05
      mce: 0.3
      brier: 0.25
      accuracy_drop: 0.05
      concentration_alpha: 0.05
      fairness:
        - attribute: region
      drift:
        - psi: 0.2
        - feature: amount
          wasserstein: 0.1
          jensen_shannon: 0.1
    rollback: true
    rollback_on: [ece, accuracy_drop]
    alerts:
      - url: https://hooks.example.com/custody
        secret_env: CUSTODY_ALERT_SECRET
`

func TestParseConfigDefaults(t *testing.T) {
	c, err := ParseConfig(strings.NewReader(goodYAML), "m.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := c.Monitors[0]
	if m.Alias != "production" || m.Keep != DefaultKeep || m.Consecutive != 3 || m.Bins != 10 || m.MinRows != 100 ||
		time.Duration(m.Window) != 24*time.Hour || *m.Metrics.ECE != 0.05 || *m.Metrics.Fairness[0].MinRatio != 0.8 ||
		m.PositiveClass != "1" || *m.DecisionThreshold != 0.5 || c.StateDir != "state" {
		t.Fatalf("defaults: %+v", m)
	}
	// The same configuration as JSON.
	js := `{"monitors": [{"name": "churn-prod", "model": "churn", "reference": "p.json", "window": "1h",
	  "metrics": {"ece": 0.2}, "alerts": [{"url": "http://127.0.0.1:9/x", "secret_env": "S"}]}]}`
	c, err = ParseConfig(strings.NewReader(js), "m.json")
	if err != nil {
		t.Fatal(err)
	}
	if m := c.Monitors[0]; time.Duration(m.Window) != time.Hour || *m.Metrics.ECE != 0.2 || m.RollbackOn[0] != "ece" || m.Rollback {
		t.Fatalf("json: %+v", m)
	}
}

func TestParseConfigErrors(t *testing.T) {
	base := "monitors:\n  - name: a\n    model: m\n    reference: r.json\n    window: 1h\n"
	for _, c := range []struct {
		yaml, want string
	}{
		{"", "empty configuration"},
		{"monitors: []", "no monitors"},
		{base + "    colour: red\n", "field colour not found"},
		{base + "    window2: 1h\n", "field window2 not found"},
		{"monitors:\n  - name: A\n    model: m\n    reference: r\n    window: 1h\n", "name \"A\""},
		{"monitors:\n  - name: a\n    reference: r\n    window: 1h\n", "model: the registered model name is required"},
		{"monitors:\n  - name: a\n    model: m\n    window: 1h\n", "reference"},
		{"monitors:\n  - name: a\n    model: m\n    reference: r\n", "window: required"},
		{"monitors:\n  - name: a\n    model: m\n    reference: r\n    window: soon\n", "want a duration"},
		{"monitors:\n  - name: a\n    model: m\n    reference: r\n    window: 10s\n", "window 10s"},
		{base + "    metrics: {ece: 1.5}\n", "metrics.ece 1.5"},
		{base + "    metrics: {ece: -0.1}\n", "metrics.ece -0.1"},
		{base + "    metrics: {concentration_alpha: 1}\n", "concentration_alpha"},
		{base + "    metrics: {fairness: [{attribute: sex}]}\n", "attribute \"sex\" must be one of the segments"},
		{base + "    metrics: {drift: [{feature: x}]}\n", "set psi, jensen_shannon or wasserstein"},
		{base + "    metrics: {drift: [{psi: 0.1}, {psi: 0.2}]}\n", "has two rules"},
		{base + "    rollback_on: [mce]\n", "rollback_on: \"mce\" is not a configured metric"},
		{base + "    consecutive: -1\n", "consecutive -1"},
		{base + "    segments: [a, a]\n", "listed twice"},
		{base + "    alerts: [{url: 'ftp://x'}]\n", "want an http or https URL"},
		{base + "    alerts: [{url: 'https://u:p@x/'}]\n", "without credentials"},
		{base + "    alerts: [{url: 'https://x/', secret: hunter2}]\n", "must not be written in the configuration"},
		{base + "    alerts: [{url: 'https://x/', secret_env: 'A B'}]\n", "not an environment variable name"},
		{base + "  - name: a\n    model: m\n    reference: r\n    window: 1h\n", "defined twice"},
		{base + "---\nmonitors: []\n", "more than one YAML document"},
		{base + "    positive_class: '0'\n", "both \"0\""},
	} {
		_, err := ParseConfig(strings.NewReader(c.yaml), "m.yaml")
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q:\n got %v\nwant an ErrConfig containing %q", c.yaml, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error repeats the secret: %v", err)
		}
	}
}

func TestConfigFind(t *testing.T) {
	c, err := ParseConfig(strings.NewReader(goodYAML), "m.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Find("nope"); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "churn-prod") {
		t.Fatal(err)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(goodYAML))
	f.Add([]byte(`{"monitors":[{"name":"a","model":"m","reference":"r","window":"1h"}]}`))
	f.Add([]byte("monitors:\n  - name: a\n    model: m\n    reference: r\n    window: 1h\n    metrics: {drift: [{psi: 0.1}]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(strings.NewReader(string(data)), "fuzz")
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error not wrapping ErrConfig: %v", err)
			}
			return
		}
		// A valid configuration stays valid (Validate is idempotent).
		for i := range c.Monitors {
			if err := c.Monitors[i].Validate(); err != nil {
				t.Fatalf("revalidation: %v", err)
			}
			if time.Duration(c.Monitors[i].Window) < time.Minute {
				t.Fatal("short window accepted")
			}
		}
	})
}
