#!/usr/bin/python3
"""Writes cmd/custody/testdata/script/monitor_run.txt: a reference file,
four hourly windows of logged predictions with labels (two calibrated, two
with scores shifted by +0.4), and the ECE that scikit-learn's
calibration_curve bins give for each window, which `custody monitor run`
and `custody monitor report` must print.

Run from the repository root: /usr/bin/python3 internal/monitor/testdata/make_monitor_script.py
"""
import numpy as np
from sklearn.calibration import calibration_curve

BINS = 5
rng = np.random.default_rng(20261120)


def rows(n, shift):
    q = rng.random(n)
    y = (rng.random(n) < q).astype(int)
    x = np.round(rng.normal(0, 1, n), 3)
    color = rng.choice(["red", "green", "blue"], n)
    sport = rng.choice(["NBA", "NFL"], n)
    score = np.round(np.clip(q + shift, 0, 1), 4)
    return x, color, sport, score, y


def ece(p, y):
    edges = np.linspace(0, 1, BINS + 1)
    idx = np.searchsorted(edges[1:-1], p)
    counts = np.bincount(idx, minlength=BINS)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=BINS)
    nz = counts[counts > 0]
    return float(np.sum(nz / len(p) * np.abs(prob_true - prob_pred)))


ref = rows(300, 0.0)
windows = [rows(100, s) for s in (0.0, 0.0, 0.4, 0.4)]
eces = [ece(w[3], w[4]) for w in windows]
assert eces[0] < 0.2 and eces[1] < 0.2 and eces[2] >= 0.2 and eces[3] >= 0.2, eces

out = []
w = out.append
w("# custody monitor run / report: a monitor over four hourly windows of logged")
w("# predictions, two calibrated then two with shifted scores. ECE from the")
w("# summaries equals scikit-learn's on the same rows (numbers written by")
w("# internal/monitor/testdata/make_monitor_script.py).")
w("")
w("exec custody monitor profile --input ref.csv --label-column label --prob-column score --segment-column sport --bins %d --out profile.json" % BINS)
w("stdout '^profiled 2 columns of 300 rows to profile.json$'")
w("")
w("# Two breaching windows in a row: the rollback fires (offline, it cannot move")
w("# the alias) and the verb exits 1.")
w("status 1 custody monitor run --config monitors.yaml --input preds.csv --html last.html")
w("stdout '^monitor churn-prod: 400 predictions \\(0 for other models or too old\\), 400 labelled, 4 windows$'")
for i, e in enumerate(eces):
    status = "ok" if e < 0.2 else "breached"
    w("stdout '^2026-11-20T0%d:00:00Z \\.\\. 2026-11-20T0%d:00:00Z  %s +predictions 100  labelled 100  ece %s '" % (i, i + 1, status, ("%.6g" % e).replace(".", "\\.")))
w("stdout 'rollback_failed: monitor churn-prod: ece .* for 2 consecutive windows'")
w("stderr 'thresholds breached in 2 windows'")
w("exec grep -c '<svg' last.html")
w("stdout '^[2-9]'")
w("")
w("# The report reads the persisted summaries: the same ECE for the window,")
w("# and the two calibrated windows merged.")
w("exec custody monitor report --config monitors.yaml --window 2026-11-20T02:30:00Z --json")
w("stdout '\"ece\": %s' " % ("%.12g" % eces[2])[:14].replace(".", "\\."))
w("stdout '\"status\": \"breached\"'")
w("exec custody monitor report churn-prod --config monitors.yaml --window 2026-11-20T00:00:00Z..2026-11-20T02:00:00Z")
w("stdout 'predictions 200  labelled 200'")
w("exec custody monitor report --config monitors.yaml --html report.html")
w("stdout '^wrote the HTML report to report.html$'")
w("exec grep -c 'reliability diagram' report.html")
w("")
w("# Offline calibration of the third window's rows gives the same ECE.")
w("exec custody calibration --input w2.csv --prob-column prediction --label-column label --bins %d --json" % BINS)
w("stdout '\"ece\": %s' " % ("%.12g" % eces[2])[:14].replace(".", "\\."))
w("")
w("# Predictions and labels in separate files, joined by request_id.")
w("exec custody monitor run --config monitors.yaml --state-dir st2 --input preds.jsonl --labels labels.csv --json")
w("stdout '\"labelled\": 2,'")
w("stdout '\"status\": \"insufficient_data\"'")
w("")
w("# Configuration errors.")
w("! exec custody monitor run --config bad.yaml --input preds.csv")
w("stderr 'field colour not found'")
w("! exec custody monitor report --config monitors.yaml --name nope")
w("stderr 'no monitor named \"nope\"'")
w("! exec custody monitor report --config monitors.yaml --window yesterday")
w("stderr 'not an RFC 3339 time'")
w("")
w("-- monitors.yaml --")
w("""monitors:
  - name: churn-prod
    model: churn
    reference: profile.json
    window: 1h
    min_rows: 30
    bins: %d
    segments: [sport]
    metrics:
      ece: 0.2
      drift:
        - {feature: x, psi: 5}
    consecutive: 2
    rollback: true""" % BINS)
w("-- bad.yaml --")
w("""monitors:
  - name: a
    model: m
    reference: profile.json
    window: 1h
    colour: red""")
w("-- ref.csv --")
w("x,color,sport,score,label")
for i in range(len(ref[0])):
    w("%s,%s,%s,%s,%d" % (ref[0][i], ref[1][i], ref[2][i], ref[3][i], ref[4][i]))
w("-- preds.csv --")
w("ts,request_id,x,color,sport,prediction,label")
for k, win in enumerate(windows):
    for i in range(len(win[0])):
        w("2026-11-20T0%d:%02d:%02dZ,r%d-%d,%s,%s,%s,%s,%d" % (k, i * 60 // 100, (i * 36) % 60, k, i, win[0][i], win[1][i], win[2][i], win[3][i], win[4][i]))
w("-- w2.csv --")
w("prediction,label")
for i in range(len(windows[2][0])):
    w("%s,%d" % (windows[2][3][i], windows[2][4][i]))
w("-- preds.jsonl --")
w('{"ts": "2026-11-21T00:00:01Z", "request_id": "a1", "model": "churn", "features": {"x": 0.5, "color": "red"}, "prediction": 0.9, "segment": {"sport": "NBA"}}')
w('{"ts": 1795219202, "request_id": "a2", "model": "churn", "features": {"x": null, "color": "blue"}, "prediction": {"1": 0.2, "0": 0.8}}')
w('{"ts": "2026-11-21T00:00:03Z", "request_id": "a3", "model": "other", "features": {}, "prediction": 0.1}')
w("-- labels.csv --")
w("request_id,label")
w("a1,1")
w("a2,0")
w("a3,1")
w("zz,1")
open("cmd/custody/testdata/script/monitor_run.txt", "w").write("\n".join(out) + "\n")
print("ECE per window:", eces)
