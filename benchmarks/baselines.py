"""Baselines side by side with their references, same data, same run.

    .venv/bin/python benchmarks/baselines.py [--quick] [--json PATH] [--repeats R]

1. ``BaselinePredictor`` vs Surprise ``BaselineOnly`` (ALS, reg_u=15, reg_i=10, 10 epochs — both
   defaults) on MovieLens-100K's official folds u1..u5: RMSE, MAE and fit seconds per fold (median of
   ``--repeats`` fits), mean over folds, and the ratio of fit times. Surprise is skipped (with a note)
   when it is not installed (``pip install -e .[bench]``).
2. ``Popularity`` top-10 on a 20% per-user random holdout (seed 0): ndcg@10, recall@10, precision@10
   and evaluate seconds, next to a brute-force pandas computation of the same numbers.

``--quick``: folds u1 and u2, one repeat. Needs $TASTEBUD_DATA (the folder holding ml-100k/).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy is imported

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import tastebud as tb  # noqa: E402


def timed(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, float(np.median(times))


def baseline_folds(ds, folds, repeats):
    rows = []
    try:
        from surprise import BaselineOnly, Dataset, Reader, accuracy
        from surprise.model_selection import PredefinedKFold
    except ImportError:
        BaselineOnly = None
        print("note: scikit-surprise is not installed; reference column skipped", file=sys.stderr)
    pairs = tb.split.official_folds(ds, folds=[f"u{f}" for f in folds])
    for f, (train, test) in zip(folds, pairs):
        model, fit_s = timed(lambda: tb.BaselinePredictor().fit(train), repeats)
        res = tb.evaluate(model, test, ["rmse", "mae"])
        row = {"fold": f"u{f}", "tastebud_rmse": res["rmse"], "tastebud_mae": res["mae"], "tastebud_fit_s": fit_s,
               "tastebud_fallbacks": model.n_fallbacks_}
        if BaselineOnly is not None:
            path = Path(ds.path)
            data = Dataset.load_from_folds([(str(path / f"u{f}.base"), str(path / f"u{f}.test"))],
                                           reader=Reader("ml-100k"))
            trainset, testset = next(PredefinedKFold().split(data))
            algo, s_fit = timed(lambda: BaselineOnly(verbose=False).fit(trainset), repeats)
            preds = algo.test(testset)
            row.update(surprise_rmse=accuracy.rmse(preds, verbose=False), surprise_mae=accuracy.mae(preds, verbose=False),
                       surprise_fit_s=s_fit)
        rows.append(row)
        print(f"  u{f}: tastebud RMSE {row['tastebud_rmse']:.4f} ({fit_s * 1000:.1f} ms)"
              + (f"   Surprise RMSE {row['surprise_rmse']:.4f} ({row['surprise_fit_s'] * 1000:.1f} ms)" if "surprise_rmse" in row else ""),
              flush=True)
    return rows


def popularity_bruteforce(train, test, k=10):
    tr, te = train.to_frame(), test.to_frame()
    counts = tr.groupby("item").size()
    order = pd.DataFrame({"item": train.items.ids, "idx": np.arange(train.n_items)})
    order["count"] = order["item"].map(counts).fillna(0).astype(int)
    ranking = order.sort_values(["count", "idx"], ascending=[False, True])["item"].tolist()
    seen = tr.groupby("user")["item"].apply(set).to_dict()
    nd, rc, pr = [], [], []
    for user, g in te.groupby("user"):
        rel = set(g["item"])
        s = seen.get(user, set())
        top = [i for i in ranking if i not in s][:k]
        hits = [1 if i in rel else 0 for i in top]
        nd.append(sum(h / math.log2(j + 2) for j, h in enumerate(hits)) / sum(1 / math.log2(j + 2) for j in range(min(k, len(rel)))))
        rc.append(sum(hits) / len(rel))
        pr.append(sum(hits) / k)
    return {"ndcg@10": float(np.mean(nd)), "recall@10": float(np.mean(rc)), "precision@10": float(np.mean(pr))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="folds u1, u2 and one repeat")
    ap.add_argument("--json", type=str, default=None)
    ap.add_argument("--repeats", type=int, default=None)
    args = ap.parse_args()
    if not os.environ.get("TASTEBUD_DATA"):
        sys.exit("set TASTEBUD_DATA to the folder holding ml-100k/")
    repeats = args.repeats or (1 if args.quick else 3)
    folds = [1, 2] if args.quick else [1, 2, 3, 4, 5]
    ds = tb.datasets.load("movielens-100k", download=False)

    print(f"BaselinePredictor vs Surprise BaselineOnly, ML-100K folds {', '.join(f'u{f}' for f in folds)}:")
    rows = baseline_folds(ds, folds, repeats)
    summary = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k != "fold"}

    train, test = tb.split.holdout(ds.interactions, test_size=0.2, per_user=True, random_state=0)
    t = time.perf_counter()
    model = tb.Popularity().fit(train)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    pop = tb.evaluate(model, test, ["ndcg@10", "recall@10", "precision@10"])
    eval_s = time.perf_counter() - t
    t = time.perf_counter()
    ref = popularity_bruteforce(train, test)
    ref_s = time.perf_counter() - t

    print("\n| model | data | RMSE | MAE | fit s/fold | ratio (Surprise / tastebud time) |")
    print("|---|---|---|---|---|---|")
    print(f"| tastebud BaselinePredictor | ML-100K {len(folds)} folds | {summary['tastebud_rmse']:.4f} | "
          f"{summary['tastebud_mae']:.4f} | {summary['tastebud_fit_s']:.4f} | |")
    if "surprise_rmse" in summary:
        print(f"| Surprise BaselineOnly | ML-100K {len(folds)} folds | {summary['surprise_rmse']:.4f} | "
              f"{summary['surprise_mae']:.4f} | {summary['surprise_fit_s']:.4f} | "
              f"{summary['surprise_fit_s'] / summary['tastebud_fit_s']:.1f}× |")
        print(f"\nRMSE difference (tastebud − Surprise): {summary['tastebud_rmse'] - summary['surprise_rmse']:+.5f}")
    print("\n| Popularity, 20% per-user holdout | ndcg@10 | recall@10 | precision@10 | seconds |")
    print("|---|---|---|---|---|")
    print(f"| tastebud (fit + evaluate) | {pop['ndcg@10']:.4f} | {pop['recall@10']:.4f} | {pop['precision@10']:.4f} | "
          f"{fit_s + eval_s:.3f} |")
    print(f"| brute-force pandas | {ref['ndcg@10']:.4f} | {ref['recall@10']:.4f} | {ref['precision@10']:.4f} | {ref_s:.3f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"benchmark": "baselines", "folds": [r["fold"] for r in rows], "repeats": repeats,
                       "per_fold": rows, "mean": summary,
                       "popularity": {"tastebud": pop, "tastebud_seconds": fit_s + eval_s, "bruteforce": ref,
                                      "bruteforce_seconds": ref_s},
                       "python": platform.python_version(), "cpus": os.cpu_count()}, f, indent=2)


if __name__ == "__main__":
    main()
