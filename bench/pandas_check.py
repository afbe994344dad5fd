"""The pandas baseline for bench/data_check.sh: the same 15 expectations as
bench/contract.yaml, written directly in pandas (read_csv + vectorised
checks), following Great Expectations' pandas implementations (regex:
str.contains; quantiles: interpolation="nearest"; stdev: ddof=1; unique:
duplicated(keep=False)). Prints one line: seconds, rows, and the failures.
"""
import sys
import time

import pandas as pd

t0 = time.perf_counter()
df = pd.read_csv(sys.argv[1])
fails = []
n = len(df)
if list(df.columns) != ["id", "ts", "user_id", "amount", "qty", "category", "country", "email", "score", "flag"]:
    fails.append("columns")
if not n >= 1:
    fails.append("row_count")
if df["id"].isna().any():
    fails.append("id not null")
if df["id"].duplicated(keep=False).any():
    fails.append("id unique")
if df["user_id"].isna().any():
    fails.append("user_id not null")
a = df["amount"].dropna()
if not a.between(0, 10000).all():
    fails.append("amount between")
q = df["qty"].dropna()
if not q.between(1, 10).all():
    fails.append("qty between")
c = df["category"].dropna()
if not c.isin(["books", "games", "garden", "grocery", "health", "music", "sports", "toys"]).all():
    fails.append("category in set")
if not df["country"].dropna().astype(str).str.contains(r"^[A-Z]{2}$").all():
    fails.append("country regex")
e = df["email"].dropna().astype(str)
if not e.str.contains(r"^[a-z]+[0-9]+@[a-z]+\.[a-z]+$").all():
    fails.append("email regex")
lens = e.str.len()
if not lens.between(5, 64).all():
    fails.append("email lengths")
if not 4900 <= df["amount"].mean() <= 5100:
    fails.append("amount mean")
if not 0.28 <= df["score"].std() <= 0.30:
    fails.append("score stdev")
qs = df["amount"].quantile([0.5, 0.9], interpolation="nearest").tolist()
if not (4800 <= qs[0] <= 5200 and 8800 <= qs[1] <= 9200):
    fails.append("amount quantiles")
if not df["flag"].dropna().isin([True, False]).all():
    fails.append("flag in set")
print(f"{time.perf_counter() - t0:.3f} {n} {','.join(fails) or 'none'}")
