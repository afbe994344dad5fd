package watch

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"
)

// ErrConfig is returned (wrapped) for every invalid monitor configuration.
// Check with errors.Is.
var ErrConfig = errors.New("invalid monitor configuration")

// MaxConfigBytes caps the size of a configuration file.
const MaxConfigBytes = 1 << 20

// Defaults of a monitor.
const (
	DefaultAlias            = "production"
	DefaultKeep             = 30
	DefaultBins             = 10
	DefaultConsecutive      = 3
	DefaultECE              = 0.1
	DefaultMinRows          = 100
	DefaultAlpha            = 0.05
	DefaultParityRatio      = 0.8
	DefaultDecision         = 0.5
	DefaultMaxSegmentValues = 100
)

// Config is a monitor configuration file: a list of monitors, in YAML or
// JSON (JSON is read as YAML, which it is a subset of). Unknown keys are
// errors. See docs/monitoring.md for every key.
type Config struct {
	// StateDir is where file-backed summaries and results live; relative
	// to the configuration file.
	StateDir string    `yaml:"state_dir" json:"state_dir,omitempty"`
	Monitors []Monitor `yaml:"monitors" json:"monitors"`
}

// Monitor configures one monitor of one model alias.
type Monitor struct {
	Name      string `yaml:"name" json:"name"`
	Model     string `yaml:"model" json:"model"`
	Alias     string `yaml:"alias" json:"alias"`
	Reference string `yaml:"reference" json:"reference"` // profile file, relative to the configuration file
	// Window is the length of a window (windows are aligned on the Unix
	// epoch, UTC); Keep is how many windows of summaries are kept.
	Window Duration `yaml:"window" json:"window"`
	Keep   int      `yaml:"keep" json:"keep"`
	// LabelDelay is how long after a window ends it is evaluated by the
	// schedule, so that late labels are in.
	LabelDelay Duration `yaml:"label_delay" json:"label_delay"`
	// MinRows is the number of labelled predictions a window (or a
	// segment) needs for its calibration and performance metrics.
	MinRows int `yaml:"min_rows" json:"min_rows"`
	// Segments are the keys of the record's segment object (or, when
	// absent there, of its features) whose values split the summaries.
	Segments         []string `yaml:"segments" json:"segments,omitempty"`
	MaxSegmentValues int      `yaml:"max_segment_values" json:"max_segment_values"`
	// Binary outputs: the label of the positive class, the name given to
	// a negative prediction, and the score at which a score predicts
	// positive.
	PositiveClass     string   `yaml:"positive_class" json:"positive_class"`
	NegativeClass     string   `yaml:"negative_class" json:"negative_class"`
	DecisionThreshold *float64 `yaml:"decision_threshold" json:"decision_threshold,omitempty"`
	Bins              int      `yaml:"bins" json:"bins"`
	Metrics           Metrics  `yaml:"metrics" json:"metrics"`
	// Consecutive windows breaching a metric of RollbackOn before the
	// alias is rolled back (when Rollback is true).
	Consecutive int       `yaml:"consecutive" json:"consecutive"`
	Rollback    bool      `yaml:"rollback" json:"rollback"`
	RollbackOn  []string  `yaml:"rollback_on" json:"rollback_on"`
	Alerts      []Webhook `yaml:"alerts" json:"alerts,omitempty"`
}

// Metrics are the thresholds of a monitor. A nil threshold is not checked
// (ECE defaults to DefaultECE).
type Metrics struct {
	ECE   *float64 `yaml:"ece" json:"ece,omitempty"`     // breach when >=
	MCE   *float64 `yaml:"mce" json:"mce,omitempty"`     // breach when >=
	Brier *float64 `yaml:"brier" json:"brier,omitempty"` // breach when >=
	// AccuracyDrop: breach when reference accuracy − window accuracy >=.
	AccuracyDrop *float64 `yaml:"accuracy_drop" json:"accuracy_drop,omitempty"`
	// ConcentrationAlpha: significance level of the concentration test;
	// a drop concentrated in some classes or segments breaches.
	ConcentrationAlpha *float64       `yaml:"concentration_alpha" json:"concentration_alpha,omitempty"`
	Fairness           []FairnessRule `yaml:"fairness" json:"fairness,omitempty"`
	Drift              []DriftRule    `yaml:"drift" json:"drift,omitempty"`
}

// FairnessRule: the demographic parity ratio of the segment key Attribute
// must stay at or above MinRatio (default 0.8, the four-fifths rule).
type FairnessRule struct {
	Attribute string   `yaml:"attribute" json:"attribute"`
	MinRatio  *float64 `yaml:"min_ratio" json:"min_ratio,omitempty"`
}

// DriftRule sets drift thresholds for one feature of the reference
// profile, or for every feature when Feature is empty (a rule naming a
// feature replaces the general one for the statistics it sets). Each
// breaches at value >= limit.
type DriftRule struct {
	Feature       string   `yaml:"feature" json:"feature,omitempty"`
	PSI           *float64 `yaml:"psi" json:"psi,omitempty"`
	JensenShannon *float64 `yaml:"jensen_shannon" json:"jensen_shannon,omitempty"`
	Wasserstein   *float64 `yaml:"wasserstein" json:"wasserstein,omitempty"` // normed, numerical features only
}

// Webhook is one alert destination. The HMAC secret is read from the
// environment variable SecretEnv when alerts are sent; the file never
// holds it.
type Webhook struct {
	URL       string `yaml:"url" json:"url"`
	SecretEnv string `yaml:"secret_env" json:"secret_env,omitempty"`
	// Secret exists only to reject a secret written in the file with a
	// clear message.
	Secret string `yaml:"secret" json:"-"`
}

// Duration is a time.Duration written as "24h", "90m".
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: want a duration such as \"24h\"", n.Line)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: duration %q: want a duration such as \"24h\"", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration as text.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Duration(d).String() + `"`), nil
}

// Metric names, as results and rollback_on name them.
const (
	MetricECE           = "ece"
	MetricMCE           = "mce"
	MetricBrier         = "brier"
	MetricAccuracyDrop  = "accuracy_drop"
	MetricConcentration = "concentration"
	MetricParityRatio   = "demographic_parity_ratio"
	MetricPSI           = "psi"
	MetricJensenShannon = "jensen_shannon"
	MetricWasserstein   = "wasserstein"
)

var (
	// Compiled on first use: keyRE alone is a 5 MB program, which every
	// start of the CLI would otherwise build.
	nameRE   = lazyRegexp(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	envRE    = lazyRegexp(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
	keyRE    = lazyRegexp(`^[\pL\pN_.:/-]{1,128}$`)
	minWin   = time.Minute
	maxWin   = 366 * 24 * time.Hour
	maxKeep  = 10000
	maxItems = 256
)

func lazyRegexp(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}

// ParseConfig reads a configuration (YAML or JSON), applies the defaults
// and validates it. name is used in error messages.
func ParseConfig(r io.Reader, name string) (*Config, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("failed to read %s: %w", name, err)
	}
	if len(data) > MaxConfigBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes: %w", name, MaxConfigBytes, ErrConfig)
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty configuration: %w", name, ErrConfig)
		}
		return nil, fmt.Errorf("%s: %v: %w", name, strings.TrimPrefix(err.Error(), "yaml: "), ErrConfig)
	}
	var extra any
	if dec.Decode(&extra) != io.EOF {
		return nil, fmt.Errorf("%s: more than one YAML document: %w", name, ErrConfig)
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &c, nil
}

// Find returns the monitor named name.
func (c *Config) Find(name string) (*Monitor, error) {
	for i := range c.Monitors {
		if c.Monitors[i].Name == name {
			return &c.Monitors[i], nil
		}
	}
	var names []string
	for _, m := range c.Monitors {
		names = append(names, m.Name)
	}
	return nil, fmt.Errorf("no monitor named %q (have %s): %w", name, strings.Join(names, ", "), ErrConfig)
}

func (c *Config) validate() error {
	if len(c.Monitors) == 0 {
		return fmt.Errorf("no monitors: %w", ErrConfig)
	}
	if len(c.Monitors) > maxItems {
		return fmt.Errorf("more than %d monitors: %w", maxItems, ErrConfig)
	}
	seen := map[string]bool{}
	for i := range c.Monitors {
		m := &c.Monitors[i]
		if err := m.Validate(); err != nil {
			who := m.Name
			if who == "" {
				who = fmt.Sprintf("#%d", i+1)
			}
			return fmt.Errorf("monitor %s: %w", who, err)
		}
		if seen[m.Name] {
			return fmt.Errorf("monitor %s: defined twice: %w", m.Name, ErrConfig)
		}
		seen[m.Name] = true
	}
	return nil
}

func ptr(v float64) *float64 { return &v }

func checkLimit(what string, v *float64, lo, hi float64) error {
	if v == nil {
		return nil
	}
	if math.IsNaN(*v) || *v < lo || *v > hi {
		return fmt.Errorf("%s %v: must be between %v and %v: %w", what, *v, lo, hi, ErrConfig)
	}
	return nil
}

// Validate applies the defaults and checks m. It is idempotent.
func (m *Monitor) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf(format+": %w", append(args, ErrConfig)...)
	}
	if !nameRE().MatchString(m.Name) {
		return bad("name %q: want 1-63 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit", m.Name)
	}
	if m.Model == "" || len(m.Model) > 256 || strings.ContainsAny(m.Model, "\x00\n\r") {
		return bad("model: the registered model name is required")
	}
	if m.Alias == "" {
		m.Alias = DefaultAlias
	}
	if len(m.Alias) > 128 || strings.ContainsAny(m.Alias, "\x00\n\r/") {
		return bad("alias %q: not a valid alias", m.Alias)
	}
	if m.Reference == "" {
		return bad("reference: the reference profile file (custody monitor profile) is required")
	}
	if m.Window == 0 {
		return bad("window: required, e.g. \"24h\"")
	}
	if w := time.Duration(m.Window); w < minWin || w > maxWin || w%time.Second != 0 {
		return bad("window %s: must be whole seconds between %s and %s", w, minWin, maxWin)
	}
	if m.Keep == 0 {
		m.Keep = DefaultKeep
	}
	if m.Keep < 1 || m.Keep > maxKeep {
		return bad("keep %d: must be between 1 and %d", m.Keep, maxKeep)
	}
	if m.LabelDelay < 0 || time.Duration(m.LabelDelay) > time.Duration(m.Window)*time.Duration(m.Keep) {
		return bad("label_delay %s: must be >= 0 and shorter than the kept windows", time.Duration(m.LabelDelay))
	}
	if m.MinRows == 0 {
		m.MinRows = DefaultMinRows
	}
	if m.MinRows < 1 {
		return bad("min_rows %d: must be at least 1", m.MinRows)
	}
	if len(m.Segments) > 16 {
		return bad("segments: at most 16 keys")
	}
	for i, s := range m.Segments {
		if !keyRE().MatchString(s) {
			return bad("segments: key %q: want 1-128 letters, digits, '_', '.', ':', '/' or '-'", s)
		}
		if slices.Contains(m.Segments[:i], s) {
			return bad("segments: key %q listed twice", s)
		}
	}
	if m.MaxSegmentValues == 0 {
		m.MaxSegmentValues = DefaultMaxSegmentValues
	}
	if m.MaxSegmentValues < 1 || m.MaxSegmentValues > 10000 {
		return bad("max_segment_values %d: must be between 1 and 10000", m.MaxSegmentValues)
	}
	if m.PositiveClass == "" {
		m.PositiveClass = "1"
	}
	if m.NegativeClass == "" {
		m.NegativeClass = "0"
	}
	if m.PositiveClass == m.NegativeClass {
		return bad("positive_class and negative_class are both %q", m.PositiveClass)
	}
	if m.DecisionThreshold == nil {
		m.DecisionThreshold = ptr(DefaultDecision)
	}
	if err := checkLimit("decision_threshold", m.DecisionThreshold, 0, 1); err != nil {
		return err
	}
	if m.Bins == 0 {
		m.Bins = DefaultBins
	}
	if m.Bins < 1 || m.Bins > 1000 {
		return bad("bins %d: must be between 1 and 1000", m.Bins)
	}
	mt := &m.Metrics
	if mt.ECE == nil {
		mt.ECE = ptr(DefaultECE)
	}
	for _, l := range []struct {
		what string
		v    *float64
		hi   float64
	}{{"metrics.ece", mt.ECE, 1}, {"metrics.mce", mt.MCE, 1}, {"metrics.brier", mt.Brier, 1}, {"metrics.accuracy_drop", mt.AccuracyDrop, 1}} {
		if err := checkLimit(l.what, l.v, 0, l.hi); err != nil {
			return err
		}
	}
	if a := mt.ConcentrationAlpha; a != nil && !(*a > 0 && *a < 1) {
		return bad("metrics.concentration_alpha %v: must be in (0, 1)", *a)
	}
	if len(mt.Fairness) > maxItems || len(mt.Drift) > maxItems {
		return bad("metrics: at most %d fairness or drift rules", maxItems)
	}
	for i := range mt.Fairness {
		f := &mt.Fairness[i]
		if !slices.Contains(m.Segments, f.Attribute) {
			return bad("metrics.fairness: attribute %q must be one of the segments (%s)", f.Attribute, strings.Join(m.Segments, ", "))
		}
		if f.MinRatio == nil {
			f.MinRatio = ptr(DefaultParityRatio)
		}
		if err := checkLimit("metrics.fairness.min_ratio", f.MinRatio, 0, 1); err != nil {
			return err
		}
	}
	features := map[string]bool{}
	for _, d := range mt.Drift {
		if d.Feature != "" && !keyRE().MatchString(d.Feature) {
			return bad("metrics.drift: feature %q: not a valid feature name", d.Feature)
		}
		if features[d.Feature] {
			return bad("metrics.drift: feature %q has two rules", d.Feature)
		}
		features[d.Feature] = true
		if d.PSI == nil && d.JensenShannon == nil && d.Wasserstein == nil {
			return bad("metrics.drift: feature %q: set psi, jensen_shannon or wasserstein", d.Feature)
		}
		for _, l := range []struct {
			what string
			v    *float64
			hi   float64
		}{{"psi", d.PSI, math.MaxFloat64}, {"jensen_shannon", d.JensenShannon, 1}, {"wasserstein", d.Wasserstein, math.MaxFloat64}} {
			if err := checkLimit("metrics.drift."+l.what, l.v, 0, l.hi); err != nil {
				return err
			}
		}
	}
	if m.Consecutive == 0 {
		m.Consecutive = DefaultConsecutive
	}
	if m.Consecutive < 1 || m.Consecutive > 1000 {
		return bad("consecutive %d: must be between 1 and 1000", m.Consecutive)
	}
	if len(m.RollbackOn) == 0 {
		m.RollbackOn = []string{MetricECE}
	}
	configured := m.configuredMetrics()
	for _, r := range m.RollbackOn {
		if !slices.Contains(configured, r) {
			return bad("rollback_on: %q is not a configured metric (have %s)", r, strings.Join(configured, ", "))
		}
	}
	if len(m.Alerts) > 16 {
		return bad("alerts: at most 16 webhooks")
	}
	for _, w := range m.Alerts {
		if w.Secret != "" {
			return bad("alerts: a secret must not be written in the configuration; put it in an environment variable and name it with secret_env")
		}
		u, err := url.Parse(w.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
			return bad("alerts: url %q: want an http or https URL without credentials", w.URL)
		}
		if w.SecretEnv != "" && !envRE().MatchString(w.SecretEnv) {
			return bad("alerts: secret_env %q: not an environment variable name", w.SecretEnv)
		}
	}
	return nil
}

// configuredMetrics lists the metric names m checks.
func (m *Monitor) configuredMetrics() []string {
	mt := &m.Metrics
	out := []string{MetricECE}
	for _, x := range []struct {
		name string
		set  bool
	}{{MetricMCE, mt.MCE != nil}, {MetricBrier, mt.Brier != nil}, {MetricAccuracyDrop, mt.AccuracyDrop != nil},
		{MetricConcentration, mt.ConcentrationAlpha != nil}, {MetricParityRatio, len(mt.Fairness) > 0}} {
		if x.set {
			out = append(out, x.name)
		}
	}
	var psi, js, w bool
	for _, d := range mt.Drift {
		psi, js, w = psi || d.PSI != nil, js || d.JensenShannon != nil, w || d.Wasserstein != nil
	}
	for _, x := range []struct {
		name string
		set  bool
	}{{MetricPSI, psi}, {MetricJensenShannon, js}, {MetricWasserstein, w}} {
		if x.set {
			out = append(out, x.name)
		}
	}
	return out
}
