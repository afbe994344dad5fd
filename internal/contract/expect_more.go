package contract

import (
	"encoding/json"
	"fmt"
	"hash/maphash"
	"regexp"
)

// distinctChecker counts distinct non-null values (pandas nunique) with the
// same bounded hash set as the uniqueness check, for
// expect_column_unique_value_count_to_be_between and
// expect_column_proportion_of_unique_values_to_be_between (distinct /
// non-null count).
type distinctChecker struct {
	col        int
	proportion bool
	r          rng
	set        *hashSet
	seed       maphash.Seed
	nonnull    int64
	limit      int
	full       bool
}

func (d *distinctChecker) column() int { return d.col }
func (d *distinctChecker) cost() int   { return 3 }

func (d *distinctChecker) observe(rec []Cell, _ int64) {
	c := &rec[d.col]
	if c.Kind == KindNull || d.full {
		return
	}
	d.nonnull++
	d.set.add(valueHash(d.seed, c))
	if d.set.n > d.limit {
		d.full = true
	}
}

func (d *distinctChecker) finish(_ int64, r *Result) {
	if d.full {
		r.Status, r.Detail = StatusError, fmt.Sprintf("more than %d distinct values: not counted (raise the unique cap)", d.limit)
		return
	}
	v := float64(d.set.n)
	if d.proportion {
		if d.nonnull == 0 {
			r.Status, r.Detail = StatusFail, "no non-null values"
			return
		}
		v /= float64(d.nonnull)
	}
	r.Observed = v
	r.Status = StatusPass
	if !d.r.contains(v) {
		r.Status = StatusFail
	}
}

func buildDistinct(proportion bool) builder {
	return func(env *buildEnv, kw *kwargs, r *Result) checker {
		col := env.column(kw, r)
		rg := readRange(kw, false)
		if col < 0 || kw.err != nil {
			return nil
		}
		return &distinctChecker{col: col, proportion: proportion, r: rg, set: newHashSet(), seed: maphash.MakeSeed(), limit: env.limits.UniqueCap}
	}
}

// valueHash hashes a value as the uniqueness checks compare values: typed
// numbers by value (-0 = 0), booleans by value, everything else by its text.
func valueHash(seed maphash.Seed, c *Cell) uint64 {
	switch c.Kind {
	case KindInt, KindFloat:
		f, _ := c.Float()
		if f == 0 {
			f = 0
		}
		return maphash.Comparable(seed, f)
	case KindBool:
		b, _ := c.Bool()
		return maphash.Comparable(seed, b)
	}
	return maphash.Bytes(seed, c.Raw)
}

func buildJSONParseable(env *buildEnv, kw *kwargs, r *Result) checker {
	m := newMap(env, kw, r)
	if m == nil || kw.err != nil {
		return nil
	}
	m.test = func(c *Cell) (bool, string) { return json.Valid(c.Raw), "" }
	return m
}

// buildRegexList: GE's expect_column_values_to_match_regex_list, match_on
// "any" (default: some regex matches) or "all"; the _not_ form fails a
// value that matches any regex.
func buildRegexList(negate bool) builder {
	return func(env *buildEnv, kw *kwargs, r *Result) checker {
		m := newMap(env, kw, r)
		pats := stringList(kw, "regex_list")
		all := false
		if !negate {
			switch kw.str("match_on", false) {
			case "", "any":
			case "all":
				all = true
			default:
				kw.fail(`"match_on" must be "any" or "all"`)
			}
		}
		if kw.err != nil {
			return nil
		}
		if len(pats) == 0 {
			kw.fail(`"regex_list" is empty`)
			return nil
		}
		var res []*regexp.Regexp
		for _, p := range pats {
			re, err := regexp.Compile(p)
			if err != nil {
				kw.fail("invalid regex (Go RE2 syntax): %v", err)
				return nil
			}
			res = append(res, re)
		}
		if m == nil {
			return nil
		}
		m.weight = 2 * len(res)
		m.test = func(c *Cell) (bool, string) {
			for _, re := range res {
				ok := re.Match(c.Raw)
				switch {
				case negate && ok:
					return false, "matches " + re.String()
				case !negate && all && !ok:
					return false, "does not match " + re.String()
				case !negate && !all && ok:
					return true, ""
				}
			}
			return negate || all, ""
		}
		return m
	}
}
