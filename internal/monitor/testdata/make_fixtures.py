#!/usr/bin/python3
"""Generate the monitor test fixtures and their expected values.

Run from this directory with Debian's interpreter (numpy 1.24, scipy 1.10,
scikit-learn 1.2, pandas 1.5):

    /usr/bin/python3 make_fixtures.py

It writes small input files (CSV/JSONL) and expected.json. Evidently itself
is not installable here (no PyPI), so its drift formulas are re-implemented
below in numpy/scipy line for line from evidently/legacy/calculations/
stattests (utils.get_binned_data, psi, jensenshannon, wasserstein_distance_norm,
chisquare_stattest, z_stattest, registry._get_default_stattest). The
Kolmogorov-Smirnov test, chi-square, Jensen-Shannon and Wasserstein come
straight from scipy; calibration curves and Brier score from scikit-learn.
"""
import json
import math
import os
import sys

import numpy as np
import pandas as pd
from scipy import special, stats
from scipy.spatial import distance
from sklearn.calibration import calibration_curve
from sklearn.metrics import (accuracy_score, brier_score_loss,
                             precision_score, recall_score)
from statsmodels.stats.meta_analysis import combine_effects
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportions_ztest

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(20261122)


def fnum(v):
    """JSON-safe float: NaN -> None, inf -> '+Inf'/'-Inf'."""
    v = float(v)
    if math.isnan(v):
        return None
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return v


# ---------------------------------------------------------------- Evidently
def get_binned_data(reference, current, numerical, feel_zeroes=True):
    n_vals = reference.nunique()
    if numerical and n_vals > 20:
        combined = np.asarray(pd.concat([reference, current], axis=0).values)
        bins = np.histogram_bin_edges(combined, bins="sturges")
        ref_p = np.histogram(reference, bins)[0] / len(reference)
        cur_p = np.histogram(current, bins)[0] / len(current)
        binning = "sturges"
    else:
        keys = list(set(reference.dropna().unique()) | set(current.dropna().unique()))
        rd = {**dict.fromkeys(keys, 0), **dict(reference.value_counts())}
        cd = {**dict.fromkeys(keys, 0), **dict(current.value_counts())}
        ref_p = np.array([rd[k] / len(reference) for k in keys])
        cur_p = np.array([cd[k] / len(current) for k in keys])
        binning = "values"
    if feel_zeroes:
        m = min(ref_p[ref_p != 0])
        np.place(ref_p, ref_p == 0, m / 10**6 if m <= 0.0001 else 0.0001)
        m = min(cur_p[cur_p != 0])
        np.place(cur_p, cur_p == 0, m / 10**6 if m <= 0.0001 else 0.0001)
    return ref_p, cur_p, binning


def psi(reference, current, numerical):
    r, c, binning = get_binned_data(reference, current, numerical)
    return float(np.sum((r - c) * np.log(r / c))), binning, len(r)


def jensenshannon(reference, current, numerical):
    r, c, _ = get_binned_data(reference, current, numerical, False)
    return float(distance.jensenshannon(r, c))


def wasserstein_norm(reference, current):
    norm = max(float(np.std(reference)), 0.001)
    return float(stats.wasserstein_distance(reference, current) / norm)


def chi_stat(reference, current):
    keys = list(set(reference.dropna().unique()) | set(current.dropna().unique()))
    rd = {**dict.fromkeys(keys, 0), **dict(reference.value_counts())}
    cd = {**dict.fromkeys(keys, 0), **dict(current.value_counts())}
    k_norm = current.shape[0] / reference.shape[0]
    f_exp = [rd[k] * k_norm for k in keys]
    f_obs = [cd[k] for k in keys]
    with np.errstate(divide="ignore", invalid="ignore"):
        res = stats.chisquare(f_obs, f_exp)
    return float(res[0]), float(res[1])


def z_stat(reference, current):
    if (reference.nunique() == 1 and current.nunique() == 1
            and reference.unique()[0] == current.unique()[0]):
        return 1.0
    keys = sorted(list(set(reference.dropna().unique()) | set(current.dropna().unique())))
    r = reference.apply(lambda x, key=keys[0]: 0 if x == key else 1)
    c = current.apply(lambda x, key=keys[0]: 0 if x == key else 1)
    n1, n2 = len(r), len(c)
    p1 = float(sum(r)) / n1
    p2 = float(sum(c)) / n2
    P = float(p1 * n1 + p2 * n2) / (n1 + n2)
    z = (p1 - p2) / np.sqrt(P * (1 - P) * (1.0 / n1 + 1.0 / n2))
    return float(2 * (1 - stats.norm.cdf(np.abs(z))))


def default_stattest(reference, current, numerical):
    n_values = pd.concat([reference, current]).nunique()
    if reference.shape[0] <= 1000:
        if numerical and n_values > 5:
            p = stats.ks_2samp(reference, current)[1]
            return "ks", float(p), bool(p <= 0.05)
        if n_values > 2:
            p = chi_stat(reference, current)[1]
            return "chisquare", p, bool(p < 0.05)
        p = z_stat(reference, current)
        return "z", p, bool(p < 0.05)
    if numerical and n_values > 5:
        w = wasserstein_norm(reference, current)
        return "wasserstein", w, bool(w >= 0.1)
    js = jensenshannon(reference, current, numerical)
    return "jensenshannon", js, bool(js >= 0.1)


def drift_case(name, ref_df, cur_df, fmt="csv"):
    write_frame(ref_df, f"drift/{name}_ref.{fmt}", fmt)
    write_frame(cur_df, f"drift/{name}_cur.{fmt}", fmt)
    # Read back as pandas would, so NA handling is pandas'.
    if fmt == "csv":
        ref = pd.read_csv(os.path.join(HERE, f"drift/{name}_ref.csv"))
        cur = pd.read_csv(os.path.join(HERE, f"drift/{name}_cur.csv"))
    else:
        ref = pd.read_json(os.path.join(HERE, f"drift/{name}_ref.jsonl"), lines=True)
        cur = pd.read_json(os.path.join(HERE, f"drift/{name}_cur.jsonl"), lines=True)
    cols = {}
    for col in ref.columns:
        numerical = (pd.api.types.is_numeric_dtype(ref[col])
                     and pd.api.types.is_numeric_dtype(cur[col]))
        r = ref[col].replace([-np.inf, np.inf], np.nan).dropna()
        c = cur[col].replace([-np.inf, np.inf], np.nan).dropna()
        if not numerical:
            r, c = r.astype(str), c.astype(str)
        out = {
            "type": "numerical" if numerical else "categorical",
            "reference_missing_share": float(ref[col].isna().mean()),
            "current_missing_share": float(cur[col].isna().mean()),
        }
        p, binning, bins = psi(r, c, numerical)
        out.update(psi=p, binning=binning, bins=bins,
                   jensen_shannon=jensenshannon(r, c, numerical))
        if numerical:
            ks = stats.ks_2samp(r, c)
            out.update(wasserstein_normed=wasserstein_norm(r, c),
                       ks_statistic=float(ks.statistic), ks_pvalue=float(ks.pvalue))
        else:
            s, pv = chi_stat(r, c)
            out.update(chi2_statistic=fnum(s), chi2_pvalue=fnum(pv))
        test, score, drifted = default_stattest(r, c, numerical)
        out.update(stattest=test, drift_score=fnum(score), stattest_drift=drifted)
        cols[col] = out
    return cols


def write_frame(df, rel, fmt):
    path = os.path.join(HERE, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if fmt == "csv":
        df.to_csv(path, index=False, float_format="%.17g")
    else:
        with open(path, "w") as f:
            for rec in df.to_dict(orient="records"):
                f.write(json.dumps({k: (None if isinstance(v, float) and math.isnan(v) else v)
                                    for k, v in rec.items()}) + "\n")


def drift_fixtures():
    cases = {}
    # basic: sizes below 1000 (exact KS, default tests ks/chisquare/z).
    n1, n2 = 500, 400
    x_ref = rng.normal(0, 1, n1)
    x_cur = rng.normal(0.3, 1.2, n2)
    nan_ref = rng.normal(5, 2, n1)
    nan_ref[rng.choice(n1, 40, replace=False)] = np.nan
    nan_ref[3] = np.inf
    nan_cur = rng.normal(5, 2, n2)
    nan_cur[rng.choice(n2, 10, replace=False)] = np.nan
    nan_cur[7] = -np.inf
    colors = np.array(["red", "green", "blue", "black"])
    ref = pd.DataFrame({
        "x": x_ref,
        "small_int": rng.integers(0, 12, n1),
        "with_nan": nan_ref,
        "const": np.full(n1, 3.5),
        "color": rng.choice(colors[:3], n1, p=[0.5, 0.3, 0.2]),
        "binary": rng.choice(["yes", "no"], n1, p=[0.7, 0.3]),
        "shifted": rng.normal(0, 1, n1),
    })
    cur = pd.DataFrame({
        "x": x_cur,
        "small_int": rng.integers(2, 14, n2),
        "with_nan": nan_cur,
        "const": np.where(rng.random(n2) < 0.8, 3.5, 4.5),
        "color": rng.choice(colors[[0, 1, 3]], n2, p=[0.4, 0.4, 0.2]),
        "binary": rng.choice(["yes", "no"], n2, p=[0.6, 0.4]),
        "shifted": rng.normal(3, 1, n2),
    })
    cases["basic"] = drift_case("basic", ref, cur)

    # equal sizes, combined size a power of two (Sturges width exact).
    ref = pd.DataFrame({"v": rng.normal(0, 1, 64), "u": rng.integers(0, 100, 64), "same": np.full(64, 7.0)})
    cur = pd.DataFrame({"v": rng.normal(0.5, 1, 64), "u": rng.integers(0, 100, 64), "same": np.full(64, 7.0)})
    cases["square"] = drift_case("square", ref, cur)

    # tiny samples: exact KS with few observations.
    ref = pd.DataFrame({"t": [0.1, 0.5, 0.9, 1.3, 2.0]})
    cur = pd.DataFrame({"t": [0.2, 0.4, 1.0, 1.1, 3.0, 3.5, 4.0]})
    cases["tiny"] = drift_case("tiny", ref, cur)

    # integers on bin edges; values > 20 distinct.
    ref = pd.DataFrame({"k": np.arange(0, 101)})
    cur = pd.DataFrame({"k": np.concatenate([np.arange(0, 101, 2), np.arange(50, 101)])})
    cases["edges"] = drift_case("edges", ref, cur)

    # large: asymptotic KS (n > 10000), default tests wasserstein / js.
    n1, n2 = 12000, 15000
    ref = pd.DataFrame({
        "a": np.round(rng.normal(0, 1, n1), 5),
        "b": np.round(rng.normal(0, 1, n1), 5),
        "c": np.round(rng.exponential(1, n1), 5),
        "few": rng.integers(0, 4, n1),
        "cat": rng.choice(["p", "q", "r", "s"], n1),
    })
    cur = pd.DataFrame({
        "a": np.round(rng.normal(0.02, 1, n2), 5),  # small drift: Pelz-Good region
        "b": np.round(rng.normal(0.4, 1, n2), 5),   # large drift: Smirnov tail
        "c": np.round(rng.exponential(1.05, n2), 5),
        "few": rng.integers(0, 5, n2),
        "cat": rng.choice(["p", "q", "r", "t"], n2),
    })
    cases["large"] = drift_case("large", ref, cur)

    # JSONL input with nulls and missing keys.
    ref = pd.DataFrame({"score": rng.normal(0, 1, 200), "city": rng.choice(["a", "b", "c"], 200)})
    cur = pd.DataFrame({"score": rng.normal(0.1, 1, 150), "city": rng.choice(["a", "b", "d"], 150)})
    ref.loc[5, "score"] = np.nan
    cases["jsonl"] = drift_case("jsonl", ref, cur, fmt="jsonl")
    return cases


# ---------------------------------------------------------------- scipy
def distribution_fixtures():
    kstwo = []
    ns = [1, 2, 3, 5, 10, 50, 139, 140, 141, 500, 5000, 100000, 100001, 400000, 2000000]
    for n in ns:
        for x in [0.3 / n, 0.5 / n, 0.7 / n, 1.0 / n, 1.5 / n, 0.9 / math.sqrt(n), 1.3 / math.sqrt(n),
                  1.8 / math.sqrt(n), 3.0 / math.sqrt(n), 0.01, 0.05, 0.1, 0.3, 0.5, 0.6, 0.9, 1 - 0.5 / n]:
            if 0 < x < 1:
                kstwo.append({"n": n, "x": x, "sf": float(stats.kstwo.sf(x, n))})
    smirnov = []
    for n in [1, 2, 7, 30, 100, 1000, 5000, 200000]:
        for x in [0.001, 0.01, 0.05, 0.1, 0.2, 0.5, 0.8, 0.99]:
            smirnov.append({"n": n, "x": x, "sf": float(special.smirnov(n, x))})
    chi2 = []
    for df in [1, 2, 3, 7, 10, 30, 100, 1000]:
        for x in [0.01, 0.5, 1, 3, 10, 50, 200, 1500]:
            chi2.append({"df": df, "x": x, "sf": float(stats.chi2.sf(x, df))})
    ks = []
    for n1, n2 in [(3, 3), (5, 9), (10, 10), (20, 35), (100, 100), (250, 400), (1000, 3000),
                   (10000, 10000), (10001, 300), (11000, 3000), (40, 12000)]:
        a = np.round(rng.normal(0, 1, n1), 3)
        b = np.round(rng.normal(0.05, 1.1, n2), 3)
        r = stats.ks_2samp(a, b)
        ks.append({"a": a.tolist(), "b": b.tolist(), "statistic": float(r.statistic),
                   "pvalue": float(r.pvalue)})
    return {"kstwo_sf": kstwo, "smirnov_sf": smirnov, "chi2_sf": chi2}, ks


# ---------------------------------------------------------------- sklearn
def calibration_fixtures():
    n = 3000
    seg = rng.choice(["north", "south", "east"], n, p=[0.5, 0.3, 0.2])
    logits = rng.normal(0, 1.5, n)
    prob = 1 / (1 + np.exp(-logits))
    prob = np.round(prob, 4)  # ties and values on uniform edges
    prob[:5] = [0.0, 1.0, 0.5, 0.2, 0.8]
    bias = np.where(seg == "south", 0.15, 0.0)
    label = (rng.random(n) < np.clip(prob + bias, 0, 1)).astype(int)
    df = pd.DataFrame({"prob": prob, "label": label, "segment": seg})
    write_frame(df, "calibration/preds.csv", "csv")
    df = pd.read_csv(os.path.join(HERE, "calibration/preds.csv"))
    out = {}
    for strategy in ["uniform", "quantile"]:
        for nb in [5, 10, 15]:
            key = f"{strategy}_{nb}"
            out[key] = {"all": calib(df["label"].values, df["prob"].values, nb, strategy)}
            for s in sorted(df["segment"].unique()):
                m = df["segment"] == s
                out[key][s] = calib(df["label"][m].values, df["prob"][m].values, nb, strategy)
    return out


def calib(y, p, nb, strategy):
    prob_true, prob_pred = calibration_curve(y, p, n_bins=nb, strategy=strategy)
    # Bin counts the way calibration_curve assigns bins (sklearn 1.2 source).
    if strategy == "quantile":
        bins = np.percentile(p, np.linspace(0, 1, nb + 1) * 100)
    else:
        bins = np.linspace(0.0, 1.0, nb + 1)
    binids = np.searchsorted(bins[1:-1], p)
    total = np.bincount(binids, minlength=len(bins))
    nonzero = total != 0
    counts = total[nonzero]
    gaps = np.abs(prob_true - prob_pred)
    return {
        "edges": bins.tolist(),
        "counts": counts.tolist(),
        "prob_true": prob_true.tolist(),
        "prob_pred": prob_pred.tolist(),
        "ece": float(np.sum(counts / len(p) * gaps)),
        "mce": float(np.max(gaps)),
        "brier": float(brier_score_loss(y, p)),
    }


# ------------------------------------------------ performance and fairness
def performance_fixtures():
    """Multi-class predictions in a reference and a current window; the
    current window loses accuracy in class "c" and segment "mobile" only.
    Expected values: sklearn metrics, statsmodels two-proportion z-tests,
    Holm correction and Cochran's Q (combine_effects), fairlearn's
    definitions computed with numpy (fairlearn is not installable here)."""
    classes = np.array(["a", "b", "c", "d"])

    def window(n, bad_class, bad_seg, p_bad):
        y = rng.choice(classes, n, p=[0.4, 0.3, 0.2, 0.1])
        seg = rng.choice(["web", "mobile", "store"], n)
        sex = rng.choice(["f", "m"], n)
        correct = rng.random(n) < 0.85
        if bad_class is not None:
            correct &= ~((y == bad_class) & (rng.random(n) < p_bad))
        if bad_seg is not None:
            correct &= ~((seg == bad_seg) & (rng.random(n) < p_bad / 2))
        wrong = np.array([rng.choice(classes[classes != c]) for c in y])
        pred = np.where(correct, y, wrong)
        return pd.DataFrame({"label": y, "pred": pred, "segment": seg, "sex": sex})

    ref = window(2000, None, None, 0)
    cur = window(1500, "c", "mobile", 0.5)
    write_frame(ref, "performance/ref.csv", "csv")
    write_frame(cur, "performance/cur.csv", "csv")
    ref = pd.read_csv(os.path.join(HERE, "performance/ref.csv"))
    cur = pd.read_csv(os.path.join(HERE, "performance/cur.csv"))

    def perf(df):
        labels = sorted(set(df["label"]) | set(df["pred"]))
        return {
            "accuracy": float(accuracy_score(df["label"], df["pred"])),
            "classes": labels,
            "precision": precision_score(df["label"], df["pred"], labels=labels, average=None, zero_division=0).tolist(),
            "recall": recall_score(df["label"], df["pred"], labels=labels, average=None, zero_division=0).tolist(),
        }

    def concentration(by):
        strata = sorted(set(ref[by]) | set(cur[by]))
        zs, ps, d, v = [], [], [], []
        for s in strata:
            r, c = ref[ref[by] == s], cur[cur[by] == s]
            k1, n1 = int((r["label"] == r["pred"]).sum()), len(r)
            k2, n2 = int((c["label"] == c["pred"]).sum()), len(c)
            z, p = proportions_ztest([k2, k1], [n2, n1])
            zs.append(float(z))
            ps.append(float(p))
            a1, b1 = (k1 + 0.5) / (n1 + 1), (k2 + 0.5) / (n2 + 1)
            d.append(k2 / n2 - k1 / n1)
            v.append(a1 * (1 - a1) / n1 + b1 * (1 - b1) / n2)
        holm = multipletests(ps, method="holm")[1]
        res = combine_effects(np.array(d), np.array(v))
        k1, n1 = int((ref["label"] == ref["pred"]).sum()), len(ref)
        k2, n2 = int((cur["label"] == cur["pred"]).sum()), len(cur)
        z, p = proportions_ztest([k2, k1], [n2, n1])
        return {"strata": strata, "z": zs, "p": ps, "holm": holm.tolist(),
                "q": float(res.q), "q_df": int(res.df_resid),
                "q_p": float(stats.chi2.sf(res.q, res.df_resid)),
                "overall_z": float(z), "overall_p": float(p)}

    # Binary predictions with a protected attribute, for fairness.
    n = 1200
    grp = rng.choice(["g1", "g2", "g3"], n, p=[0.5, 0.3, 0.2])
    y = (rng.random(n) < np.where(grp == "g3", 0.3, 0.5)).astype(int)
    prob = np.clip(np.round(0.5 * y + rng.normal(0.25, 0.2, n) - np.where(grp == "g2", 0.1, 0), 3), 0, 1)
    fair = pd.DataFrame({"label": y, "prob": prob, "group": grp})
    write_frame(fair, "performance/fairness.csv", "csv")
    fair = pd.read_csv(os.path.join(HERE, "performance/fairness.csv"))
    yp = (fair["prob"] >= 0.5).astype(int)
    groups = sorted(fair["group"].unique())
    sel, tpr, fpr = [], [], []
    for g in groups:
        m = fair["group"] == g
        sel.append(float(yp[m].mean()))
        tpr.append(float(recall_score(fair["label"][m], yp[m])))
        neg = m & (fair["label"] == 0)
        fpr.append(float(yp[neg].mean()))
    fairness = {
        "groups": groups, "selection_rate": sel, "tpr": tpr, "fpr": fpr,
        "demographic_parity_difference": max(sel) - min(sel),
        "demographic_parity_ratio": min(sel) / max(sel),
        "equalized_odds_difference": max(max(tpr) - min(tpr), max(fpr) - min(fpr)),
        "four_fifths_rule_passed": bool(min(sel) / max(sel) >= 0.8),
        "accuracy": float(accuracy_score(fair["label"], yp)),
    }
    return {"reference": perf(ref), "current": perf(cur),
            "by_class": concentration("label"), "by_segment": concentration("segment"),
            "fairness": fairness}


def main():
    cases = drift_fixtures()
    dists, ks = distribution_fixtures()
    calib_exp = calibration_fixtures()
    perf_exp = performance_fixtures()
    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump({"drift": cases, "distributions": dists, "calibration": calib_exp,
                   "performance": perf_exp,
                   "versions": {"numpy": np.__version__, "scipy": __import__("scipy").__version__,
                                "sklearn": __import__("sklearn").__version__,
                                "pandas": pd.__version__,
                                "statsmodels": __import__("statsmodels").__version__}}, f, indent=1, sort_keys=True)
    with open(os.path.join(HERE, "ks_2samp.json"), "w") as f:
        json.dump(ks, f)


if __name__ == "__main__":
    # Evidently iterates over Python sets of category keys; string hashing
    # is randomised per process, which changes summation order and so the
    # last bit of PSI/JS. Fix the seed so that the fixtures are reproducible.
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.execve(sys.executable, [sys.executable] + sys.argv, {**os.environ, "PYTHONHASHSEED": "0"})
    main()
