#!/usr/bin/python3
"""numpy/scipy/pandas baseline for bench/monitor.sh: the same statistics as
`custody drift` and `custody calibration`, computed the way Evidently and
scikit-learn compute them (pandas.read_csv, numpy histograms, scipy tests).

    monitor_baseline.py drift REF CUR      -> JSON + seconds on stderr
    monitor_baseline.py calibration PREDS  -> JSON + seconds on stderr

The timing (wall and CPU seconds on stderr) covers reading the files and
computing, not interpreter start-up or imports.
"""
import json
import os
import sys
import time

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import distance

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "internal", "monitor", "testdata"))
from make_fixtures import get_binned_data  # noqa: E402  Evidently's binning


def drift(ref_path, cur_path):
    ref = pd.read_csv(ref_path)["x"]
    cur = pd.read_csv(cur_path)["x"]
    out = {"reference_missing_share": float(ref.isna().mean()),
           "current_missing_share": float(cur.isna().mean())}
    r = ref.replace([-np.inf, np.inf], np.nan).dropna()
    c = cur.replace([-np.inf, np.inf], np.nan).dropna()
    rp, cp, _ = get_binned_data(r, c, True)
    out["psi"] = float(np.sum((rp - cp) * np.log(rp / cp)))
    rp, cp, _ = get_binned_data(r, c, True, False)
    out["jensen_shannon"] = float(distance.jensenshannon(rp, cp))
    out["wasserstein_normed"] = float(stats.wasserstein_distance(r, c) / max(float(np.std(r)), 0.001))
    ks = stats.ks_2samp(r, c)
    out["ks_statistic"], out["ks_pvalue"] = float(ks.statistic), float(ks.pvalue)
    return out


def calibration(path, n_bins=10):
    df = pd.read_csv(path)
    y, p = df["label"].to_numpy() == 1, df["prob"].to_numpy()
    out = {"brier": float(np.mean((y - p) ** 2))}
    for strategy in ["uniform", "quantile"]:
        if strategy == "quantile":
            bins = np.percentile(p, np.linspace(0, 1, n_bins + 1) * 100)
        else:
            bins = np.linspace(0.0, 1.0, n_bins + 1)
        binids = np.searchsorted(bins[1:-1], p)
        bin_sums = np.bincount(binids, weights=p, minlength=len(bins))
        bin_true = np.bincount(binids, weights=y, minlength=len(bins))
        bin_total = np.bincount(binids, minlength=len(bins))
        nz = bin_total != 0
        gap = np.abs(bin_true[nz] / bin_total[nz] - bin_sums[nz] / bin_total[nz])
        out["ece_" + strategy] = float(np.sum(bin_total[nz] / len(p) * gap))
        if strategy == "uniform":
            out["mce"] = float(np.max(gap))
    return out


if __name__ == "__main__":
    w0, c0 = time.perf_counter(), time.process_time()
    res = drift(sys.argv[2], sys.argv[3]) if sys.argv[1] == "drift" else calibration(sys.argv[2])
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    print(json.dumps(res))
    print(f"{wall:.3f} {cpu:.3f}", file=sys.stderr)
