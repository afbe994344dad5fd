package monitor

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Threshold is one user limit on a drift statistic, for one column or (when
// Column is empty) for every column.
//
// Distances (psi, jensen_shannon, wasserstein_normed, ks_statistic,
// chi2_statistic) and missing shares breach when value >= limit; p-values
// (ks_pvalue, chi2_pvalue) breach when value < limit.
type Threshold struct {
	Column string
	Stat   string
	Limit  float64
}

// Thresholds is a list of limits.
type Thresholds []Threshold

// ThresholdStats are the statistics a threshold can name.
var ThresholdStats = []string{
	"psi", "jensen_shannon", "wasserstein_normed", "ks_statistic", "ks_pvalue",
	"chi2_statistic", "chi2_pvalue", "missing_share",
}

func isPValue(stat string) bool { return strings.HasSuffix(stat, "_pvalue") }

// ParseThreshold parses "STAT=LIMIT" or "COLUMN:STAT=LIMIT". The column
// name is everything before the last ':' so that names may contain ':'.
func ParseThreshold(s string) (Threshold, error) {
	eq := strings.LastIndexByte(s, '=')
	if eq < 0 {
		return Threshold{}, fmt.Errorf("threshold %q: want [COLUMN:]STAT=LIMIT", s)
	}
	lhs, rhs := s[:eq], s[eq+1:]
	var t Threshold
	if c := strings.LastIndexByte(lhs, ':'); c >= 0 {
		t.Column, t.Stat = lhs[:c], lhs[c+1:]
		if t.Column == "" {
			return Threshold{}, fmt.Errorf("threshold %q: empty column name", s)
		}
	} else {
		t.Stat = lhs
	}
	known := false
	for _, k := range ThresholdStats {
		if k == t.Stat {
			known = true
		}
	}
	if !known {
		return Threshold{}, fmt.Errorf("threshold %q: unknown statistic %q (one of %s)", s, t.Stat, strings.Join(ThresholdStats, ", "))
	}
	v, err := strconv.ParseFloat(rhs, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return Threshold{}, fmt.Errorf("threshold %q: limit is not a finite number", s)
	}
	if v < 0 || (isPValue(t.Stat) || t.Stat == "missing_share") && v > 1 {
		return Threshold{}, fmt.Errorf("threshold %q: limit out of range", s)
	}
	t.Limit = v
	return t, nil
}

// AppliesTo reports whether some threshold covers the column: names it or
// is general, on a statistic the column's kind has.
func (ts Thresholds) AppliesTo(d *ColumnDrift) bool {
	for _, t := range ts {
		if t.Column != "" && t.Column != d.Column {
			continue
		}
		if _, ok := d.stat(t.Stat); ok {
			return true
		}
	}
	return false
}

// Check returns the thresholds the column breaches. A column-specific limit
// replaces a general one for the same statistic. Statistics that do not
// apply to the column's kind are ignored.
func (ts Thresholds) Check(d *ColumnDrift) []Breach {
	limits := map[string]float64{}
	for _, t := range ts {
		if t.Column == "" {
			if _, ok := limits[t.Stat]; !ok {
				limits[t.Stat] = t.Limit
			}
		}
	}
	for _, t := range ts {
		if t.Column == d.Column {
			limits[t.Stat] = t.Limit
		}
	}
	var out []Breach
	for _, stat := range ThresholdStats {
		lim, ok := limits[stat]
		if !ok {
			continue
		}
		v, ok := d.stat(stat)
		if !ok {
			continue
		}
		breach := v >= lim
		if isPValue(stat) {
			breach = v < lim
		}
		if breach {
			out = append(out, Breach{Stat: stat, Value: Float(v), Threshold: lim})
		}
	}
	return out
}

func (d *ColumnDrift) stat(name string) (float64, bool) {
	get := func(p *Float) (float64, bool) {
		if p == nil {
			return 0, false
		}
		return float64(*p), true
	}
	switch name {
	case "psi":
		return float64(d.PSI), true
	case "jensen_shannon":
		return float64(d.JensenShannon), true
	case "wasserstein_normed":
		return get(d.WassersteinNormed)
	case "ks_statistic":
		return get(d.KSStatistic)
	case "ks_pvalue":
		return get(d.KSPValue)
	case "chi2_statistic":
		return get(d.Chi2Statistic)
	case "chi2_pvalue":
		return get(d.Chi2PValue)
	case "missing_share":
		return math.Max(float64(d.CurrentMissingShare), 0), true
	}
	return 0, false
}
