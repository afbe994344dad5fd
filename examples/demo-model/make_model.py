"""Trains the demo logistic-regression model with scikit-learn and writes
model/model.json (weights, bias, feature names, class names) and
testdata/expected.json (inputs and predict_proba outputs, the ground truth
for main_test.go). Run: /usr/bin/python3 examples/demo-model/make_model.py"""
import json, os
import numpy as np
from sklearn.linear_model import LogisticRegression

here = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(7)
features = ["elo_diff", "rest_days", "injuries", "home"]
n = 2000
X = np.column_stack([
    rng.normal(0, 100, n),
    rng.integers(0, 5, n).astype(float),
    rng.integers(0, 4, n).astype(float),
    rng.integers(0, 2, n).astype(float),
])
logit = 0.01 * X[:, 0] + 0.2 * X[:, 1] - 0.4 * X[:, 2] + 0.3 * X[:, 3]
y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
clf = LogisticRegression(max_iter=1000).fit(X, y)
model = {
    "name": "win-probability",
    "features": features,
    "weights": [float(w) for w in clf.coef_[0]],
    "bias": float(clf.intercept_[0]),
    "classes": ["loss", "win"],
}
with open(os.path.join(here, "model", "model.json"), "w") as f:
    json.dump(model, f, indent=2)
    f.write("\n")
rows = X[:20]
proba = clf.predict_proba(rows)
with open(os.path.join(here, "testdata", "expected.json"), "w") as f:
    json.dump({"rows": rows.tolist(), "probabilities": proba.tolist(),
               "labels": [model["classes"][i] for i in clf.predict(rows)]}, f)
    f.write("\n")
