"""Issue #14 item 1: ranking metrics before and after counting every unseen relevant item, side by side.

Before the fix, ``tb.evaluate`` mapped every test item the model had never seen to one sentinel before
de-duplicating, so two unseen items of a user counted once in R, and sampled metrics dropped unseen
items altogether. Only test sets whose items are absent from the model's id map are affected (a test
set read separately from its training set, or a user's own files); splits of one Interactions share
its id maps, so there every test item is known to the model and nothing changes. This script runs:

A. the issue's example (train users 1-3 over items 10-12; test user 1 = {12, 98, 99}), Popularity;
B. ML-100K u1 with ``u1.base`` and ``u1.test`` read as two files (32 test pairs of 15 users fall on
   items absent from u1.base; 6 users have two or more), Popularity, EASE and ImplicitALS: every
   full-ranking metric at 10 and the sampled ones (100 negatives);
C. the protocol behind benchmarks/baselines.py, mf_implicit.py and the demo's top-N table (a 20%
   per-user holdout of ML-100K, shared id maps), Popularity and EASE: expected unchanged;
D. ml-latest-small split in time (the latest 20% of ratings as test) into two frames read
   separately, as a user with a train file and a test file would: new movies of the test period
   are unknown to the model. Popularity and ImplicitALS.

    OPENBLAS_NUM_THREADS=1 TASTEBUD_DATA=... python benchmarks/evaluation_fix.py --before /path/to/old/src

``--before SRC`` runs the same cases in a subprocess with ``SRC`` first on ``PYTHONPATH`` (the code
before the fix) and prints both columns; without it only the current code runs.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

FULL = ["precision@10", "recall@10", "ndcg@10", "map@10", "mrr@10", "hit_rate@10", "coverage@10"]
SAMPLED = ["sampled_hit_rate@10", "sampled_ndcg@10", "sampled_mrr@10", "sampled_auc"]


def run_cases() -> dict:
    import pandas as pd

    import tastebud as tb
    from tastebud.data.readers import read_ml100k_ratings

    warnings.simplefilter("ignore")
    out: dict = {}
    train = tb.Interactions.from_frame(pd.DataFrame({"user": [1, 1, 2, 2, 3, 3], "item": [10, 11, 10, 12, 11, 12]}))
    test = tb.Interactions.from_frame(pd.DataFrame({"user": [1, 1, 1], "item": [12, 98, 99]}))
    out["A issue example, Popularity"] = tb.evaluate(tb.Popularity().fit(train), test, ["recall@1", "ndcg@3", "map@3"])

    d = Path(os.environ["TASTEBUD_DATA"]) / "ml-100k"
    tr = tb.Interactions.from_frame(read_ml100k_ratings(d / "u1.base"), rating="rating", timestamp="timestamp")
    te = tb.Interactions.from_frame(read_ml100k_ratings(d / "u1.test"), rating="rating", timestamp="timestamp")
    models = {"Popularity": lambda: tb.Popularity(), "EASE": lambda: tb.EASE(),
              "ImplicitALS": lambda: tb.ImplicitALS(factors=64, epochs=15, random_state=0)}
    for name, make in models.items():
        t0 = time.perf_counter()
        m = make().fit(tr.binarize())
        res = tb.evaluate(m, te, FULL + SAMPLED, n_negatives=100, random_state=0)
        res["seconds"] = time.perf_counter() - t0
        out[f"B ML-100K u1 as two files, {name}"] = res

    ds = tb.datasets.load("movielens-100k", download=False)
    trh, teh = tb.split.holdout(ds.interactions.binarize(), test_size=0.2, per_user=True, random_state=0)
    for name in ("Popularity", "EASE"):
        m = models[name]().fit(trh)
        out[f"C ML-100K 20% per-user holdout, {name}"] = tb.evaluate(
            m, teh, ["ndcg@10", "recall@10", "precision@10", "recall@20", "hit_rate@10"])

    from tastebud.data.readers import read_ml_latest_ratings

    df = read_ml_latest_ratings(Path(os.environ["TASTEBUD_DATA"]) / "ml-latest-small" / "ratings.csv")
    df = df.sort_values(["timestamp", "user", "item"], kind="stable")
    cut = int(round(0.8 * len(df)))
    trd = tb.Interactions.from_frame(df.iloc[:cut], rating="rating", timestamp="timestamp")
    ted = tb.Interactions.from_frame(df.iloc[cut:], rating="rating", timestamp="timestamp")
    for name in ("Popularity", "ImplicitALS"):
        m = models[name]().fit(trd.binarize())
        out[f"D ml-latest-small, latest 20% as a separate test file, {name}"] = tb.evaluate(
            m, ted, FULL + SAMPLED, n_negatives=100, random_state=0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", default=None, help="src folder of the code before the fix")
    ap.add_argument("--emit-json", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--json", default=None, help="write both columns here")
    args = ap.parse_args()
    if not os.environ.get("TASTEBUD_DATA"):
        sys.exit("set TASTEBUD_DATA to the folder holding ml-100k/")
    if args.emit_json:
        print(json.dumps(run_cases()))
        return
    before = None
    if args.before:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([args.before, os.environ.get("PYTHONPATH", "")]))
        proc = subprocess.run([sys.executable, __file__, "--emit-json"], env=env, capture_output=True, text=True, check=True)
        before = json.loads(proc.stdout.strip().splitlines()[-1])
    after = run_cases()
    for case, vals in after.items():
        print(f"\n### {case}\n")
        print("| metric | before | after | change |" if before else "| metric | value |")
        print("|---|---|---|---|" if before else "|---|---|")
        for k, v in vals.items():
            if k == "seconds":
                continue
            if before:
                b = before[case][k]
                print(f"| {k} | {b:.6f} | {v:.6f} | {v - b:+.6f} |")
            else:
                print(f"| {k} | {v:.6f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"before": before, "after": after}, f, indent=2)


if __name__ == "__main__":
    main()
