"""Do the library defaults beat the baselines? (issue #14 item 11)

    .venv/bin/python benchmarks/defaults.py check [--json PATH]     # every model with its defaults
    .venv/bin/python benchmarks/defaults.py tune-mf [--json PATH]   # MatrixFactorization grid on validation
    .venv/bin/python benchmarks/defaults.py tune-als [--json PATH]  # explicit ALS grid on validation

``check`` runs what ``tastebud evaluate`` runs (``evaluation.runner.run_comparison`` with library
defaults, ``quick=False``): rating models on ml-latest-small (seeded 80/20 holdout) and on the five
official MovieLens-100K folds against ``BaselinePredictor``; top-N models on MovieLens-100K (20% of
each user's items held out, full ranking) against ``Popularity``; Item2Vec on amazon-games (last item
held out) against ``Popularity`` and ``ItemTransitions``.

``tune-mf`` / ``tune-als`` pick settings without looking at any test data: ml-latest-small's
training part (the same seeded 80/20 holdout as ``check``) is split again 80/20 (seed 1) into fit and
validation ratings; each setting of a small grid is fitted on the fit part and scored by validation
RMSE. The chosen setting is then confirmed by ``check`` on the test split and on the ML-100K folds.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from tastebud import split  # noqa: E402
from tastebud.data import datasets  # noqa: E402
from tastebud.evaluation.evaluate import evaluate  # noqa: E402
from tastebud.evaluation.runner import run_comparison  # noqa: E402
from tastebud.models.baselines.baseline import BaselinePredictor  # noqa: E402
from tastebud.models.mf.als import ALS  # noqa: E402
from tastebud.models.mf.matrix_factorization import MatrixFactorization  # noqa: E402

CHECKS = [
    ("movielens-latest-small", ["baseline", "mf", "svdpp", "als", "fm"]),
    ("movielens-100k", ["baseline", "mf", "svdpp", "als", "fm", "popularity", "implicit-als", "bpr"]),
    ("amazon-games", ["transitions", "item2vec"]),
]

GRID = {  # around Surprise's SVD defaults (100 factors, 20 epochs, lr 0.005, reg 0.02, init_std 0.1)
    "factors": [50, 100],
    "epochs": [20, 40],
    "lr": [0.005, 0.01],
    "reg": [0.02, 0.05, 0.1],
    "reg_bias": [None, 0.005],
    "init_std": [0.1, 0.01],
    "shuffle": [False, True],
}


# second stage, around the best of GRID (100 factors, 40 epochs, lr 0.01, reg 0.05, init_std 0.01,
# shuffle: at GRID's edge in epochs and lr)
GRID2 = {"factors": [100], "epochs": [40, 60], "lr": [0.007, 0.01, 0.015], "reg": [0.04, 0.05, 0.07],
         "reg_bias": [None], "init_std": [0.01], "shuffle": [True]}


# explicit ALS: around Spark MLlib's defaults (rank 10, 10 iterations, regParam 0.1, no biases)
GRID_ALS = {"factors": [10, 20, 50], "epochs": [10, 20], "reg": [0.05, 0.1, 0.2], "biased": [False, True]}
SURPRISE_SVD = dict(factors=100, epochs=20, lr=0.005, reg=0.02, reg_bias=None, init_std=0.1, shuffle=False)
SPARK_ALS = dict(factors=10, epochs=10, reg=0.1, biased=False)


def check(out: dict, only: list[str] | None = None) -> None:
    for name, models in CHECKS:
        if only:
            models = [m for m in models if m in only or m in ("baseline", "popularity", "transitions")]
            if not set(models) & set(only):
                continue
        t0 = time.perf_counter()
        tables = run_comparison(name, models, quick=False)
        for title, df in tables.items():
            print(f"\n## {title}  ({time.perf_counter() - t0:.0f} s)\n")
            print(df.to_string(index=False, float_format=lambda x: f"{x:.4f}"), flush=True)
            out[title] = df.to_dict(orient="records")


def tune(out: dict, cls: type, grids: list[dict], reference: dict, ref_name: str) -> None:
    ds = datasets.load("movielens-latest-small")
    train, _ = split.holdout(ds.interactions, test_size=0.2, per_user=False, random_state=0)  # as `check`
    fit, valid = split.holdout(train, test_size=0.2, per_user=False, random_state=1)
    base = evaluate(BaselinePredictor().fit(fit), valid, metrics=["rmse"])["rmse"]
    print(f"ml-latest-small: fit {fit.nnz} ratings, validation {valid.nnz}; BaselinePredictor validation RMSE {base:.4f}")
    rows = []
    keys = list(grids[0])
    grid = [v for g in grids for v in itertools.product(*(g[k] for k in keys))]
    for values in dict.fromkeys(grid):
        params = dict(zip(keys, values))
        t0 = time.perf_counter()
        rmse = evaluate(cls(random_state=0, **params).fit(fit), valid, metrics=["rmse"])["rmse"]
        rows.append({**params, "valid_rmse": rmse, "fit_s": time.perf_counter() - t0})
    rows.sort(key=lambda r: r["valid_rmse"])
    ref = next(r for r in rows if all(r[k] == v for k, v in reference.items()))
    print(f"{ref_name} settings: validation RMSE {ref['valid_rmse']:.4f}")
    print("best 10 of", len(rows))
    for r in rows[:10]:
        print(json.dumps(r))
    out[f"tune_{cls.__name__}"] = {"baseline_valid_rmse": base, "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["check", "tune-mf", "tune-als"])
    ap.add_argument("--json", default=None)
    ap.add_argument("--models", default=None, help="check: only these models (comma-separated) and the baselines")
    args = ap.parse_args()
    out: dict = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load": os.getloadavg()}
    if args.what == "check":
        check(out, args.models.split(",") if args.models else None)
    elif args.what == "tune-mf":
        tune(out, MatrixFactorization, [GRID, GRID2], SURPRISE_SVD, "Surprise SVD")
    else:
        tune(out, ALS, [GRID_ALS], SPARK_ALS, "Spark ALS")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main()
