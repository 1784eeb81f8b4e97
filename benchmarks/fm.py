"""Factorization machines: tastebud vs myFM (MCMC) vs Spark FM, same features, same splits.

    python benchmarks/fm.py [--quick] [--json PATH] [--no-spark] [--n-iter N] [--folds u1,u2]

* MovieLens-100K, official folds u1..u5, regression (RMSE), three feature sets built once with
  ``tastebud.FMFeatures`` and handed to every library as the same CSR matrix + feature groups:
  (a) user/item one-hot; (b) + age (standardised), gender, occupation, genres (normalised
  multi-hot); (c) + implicit feedback: the user's rated items and the item's raters (1/√|N|).
  tastebud and myFM both run MCMC at rank 10 with the same number of sweeps; Spark runs
  FMRegressor (adamW, the only thing it has).
* frappe: train on frappe.validation.libfm, test on frappe.test.libfm (classification, probit
  MCMC for tastebud and myFM, logistic FMClassifier for Spark): AUC and log-loss.

Fit seconds (wall) exclude feature building and prediction; CPU seconds of the in-process fits
(tastebud, myFM) are recorded too because the shared machine makes wall time noisy. numba compilation is excluded by a tiny
warm-up fit. Spark runs on the first fold only (its fits take minutes). ``--quick``: fold u1 only, 100
sweeps, settings (a) and (b); Spark only on (a) and frappe.
Setting (c) has ~310 non-zeros per row (24M in a fold): use ``--n-iter-c`` to bound its cost.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.sparse as sp  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from tastebud.data.libfm import read_libfm, write_libfm  # noqa: E402
from tastebud.data.readers import read_ml100k_items, read_ml100k_ratings, read_ml100k_users  # noqa: E402
from tastebud.models.fm.factorization_machine import FactorizationMachine  # noqa: E402
from tastebud.models.fm.features import FMFeatures  # noqa: E402

RANK = 10
CPU = {"last": float("nan")}  # CPU seconds of the last in-process fit (the shared machine makes wall time noisy)


def data_dir() -> Path:
    d = os.environ.get("TASTEBUD_DATA")
    if not d:
        raise SystemExit("set TASTEBUD_DATA to the shared data folder")
    return Path(d)


# ----------------------------------------------------------------------------- features
SETTINGS = {
    "a": dict(categorical=["user", "item"]),
    "b": dict(categorical=["user", "item", "gender", "occupation"], numeric=["age"], multi_hot=["genres"]),
    "c": dict(categorical=["user", "item", "gender", "occupation"], numeric=["age"], multi_hot=["genres"],
              implicit=[("user", "item"), ("item", "user")]),
}


def ml100k_fold(d: Path, fold: str, users: pd.DataFrame, items: pd.DataFrame):
    tr = read_ml100k_ratings(d / f"{fold}.base")
    te = read_ml100k_ratings(d / f"{fold}.test")
    side = lambda df: df.merge(users[["age", "gender", "occupation"]], left_on="user", right_index=True, how="left") \
        .merge(items[["genres"]], left_on="item", right_index=True, how="left")  # noqa: E731
    return side(tr), side(te)


def build(setting: str, tr: pd.DataFrame, te: pd.DataFrame):
    fb = FMFeatures(**SETTINGS[setting]).fit(tr)
    X, groups = fb.transform(tr)
    Xt, _ = fb.transform(te)
    return X, Xt, groups, fb.group_sizes()


# ----------------------------------------------------------------------------- libraries
def run_tastebud(X, y, Xt, groups, n_iter, task="regression", seed=0):
    m = FactorizationMachine(task=task, factors=RANK, solver="mcmc", epochs=n_iter, random_state=seed)
    t0, c0 = time.perf_counter(), time.process_time()
    m.fit(X, y, groups=groups)
    fit, CPU["last"] = time.perf_counter() - t0, time.process_time() - c0
    pred = m.predict_proba(Xt) if task == "classification" else m.predict(Xt)
    return pred, fit


def run_myfm(X, y, Xt, sizes, n_iter, task="regression", seed=0):
    import myfm

    cls = myfm.MyFMClassifier if task == "classification" else myfm.MyFMRegressor
    m = cls(rank=RANK, random_seed=seed)
    t0, c0 = time.perf_counter(), time.process_time()
    m.fit(X, y if task == "regression" else (y > 0).astype(int), n_iter=n_iter, group_shapes=sizes)
    fit, CPU["last"] = time.perf_counter() - t0, time.process_time() - c0
    pred = m.predict_proba(Xt) if task == "classification" else m.predict(Xt)
    return pred, fit


_SPARK = None


def spark():
    global _SPARK
    if _SPARK is None:
        from pyspark.sql import SparkSession

        _SPARK = (SparkSession.builder.master("local[2]").appName("tastebud-fm-bench")
                  .config("spark.ui.enabled", "false").config("spark.driver.memory", "4g")
                  .config("spark.sql.shuffle.partitions", "4").getOrCreate())
        _SPARK.sparkContext.setLogLevel("ERROR")
    return _SPARK


def run_spark(X, y, Xt, yt, n_iter, task="regression", tmp: Path | None = None):
    from pyspark.ml.regression import FMRegressor
    from pyspark.ml.classification import FMClassifier

    s = spark()
    p = X.shape[1]
    ftr, fte = tmp / "train.libsvm", tmp / "test.libsvm"
    lab = y if task == "regression" else (y > 0).astype(float)
    labt = yt if task == "regression" else (yt > 0).astype(float)
    write_libfm(ftr, X, lab, zero_based=False)
    write_libfm(fte, Xt, labt, zero_based=False)
    dtr = s.read.format("libsvm").option("numFeatures", p).load(str(ftr)).cache()
    dte = s.read.format("libsvm").option("numFeatures", p).load(str(fte)).cache()
    dtr.count(), dte.count()
    if task == "regression":
        est = FMRegressor(factorSize=RANK, maxIter=n_iter, stepSize=0.01, regParam=0.01, initStd=0.01, seed=0)
    else:
        est = FMClassifier(factorSize=RANK, maxIter=n_iter, stepSize=0.01, regParam=0.01, initStd=0.01, seed=0)
    t0 = time.perf_counter()
    model = est.fit(dtr)
    fit = time.perf_counter() - t0
    out = model.transform(dte)
    if task == "regression":
        pred = np.array([r.prediction for r in out.select("prediction").collect()])
    else:
        pred = np.array([float(r.probability[1]) for r in out.select("probability").collect()])
    dtr.unpersist(), dte.unpersist()
    return pred, fit


# ----------------------------------------------------------------------------- metrics
def rmse(y, p):
    return float(np.sqrt(np.mean((np.asarray(y) - np.asarray(p)) ** 2)))


def auc(y, p):
    y = np.asarray(y) > 0
    ranks = pd.Series(p).rank(method="average").to_numpy()
    npos = y.sum()
    return float((ranks[y].sum() - npos * (npos + 1) / 2) / (npos * (len(y) - npos)))


def logloss(y, p):
    y = np.asarray(y) > 0
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-15, 1 - 1e-15)
    return float(-np.mean(np.where(y, np.log(p), np.log1p(-p))))


# ----------------------------------------------------------------------------- main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", default=None)
    ap.add_argument("--no-spark", action="store_true")
    ap.add_argument("--n-iter", type=int, default=None, help="MCMC sweeps (default 200, quick 100)")
    ap.add_argument("--n-iter-c", type=int, default=None, help="sweeps for setting (c) (default: --n-iter)")
    ap.add_argument("--folds", default=None, help="comma-separated folds (default u1..u5, quick u1)")
    ap.add_argument("--settings", default=None, help="feature sets to run (default abc, quick ab)")
    ap.add_argument("--skip-frappe", action="store_true")
    ap.add_argument("--skip-ml", action="store_true")
    args = ap.parse_args()
    d = data_dir()
    n_iter = args.n_iter or (100 if args.quick else 200)
    n_iter_c = args.n_iter_c or n_iter
    folds = args.folds.split(",") if args.folds else (["u1"] if args.quick else [f"u{i}" for i in range(1, 6)])
    use_spark = not args.no_spark
    settings = args.settings or ("ab" if args.quick else "abc")
    try:
        import myfm  # noqa: F401
    except ImportError:
        raise SystemExit("myfm is not installed (pip install 'tastebud[bench]')")
    results: dict = {"rank": RANK, "n_iter": n_iter, "n_iter_c": n_iter_c, "folds": folds, "ml100k": [], "frappe": []}
    tmp = Path(tempfile.mkdtemp(prefix="tb_fm_bench_"))
    # warm-up: compile the numba kernels outside the timings
    Xw = sp.random(200, 20, density=0.2, format="csr", random_state=0)
    FactorizationMachine(epochs=2, factors=2).fit(Xw, np.random.default_rng(0).normal(size=200))
    FactorizationMachine(task="classification", epochs=2, factors=2).fit(Xw, np.arange(200) % 2)

    if not args.skip_ml:
        ml = d / "ml-100k"
        users = read_ml100k_users(ml / "u.user")
        items = read_ml100k_items(ml / "u.item")
        for setting in settings:
            it = n_iter_c if setting == "c" else n_iter
            for fold in folds:
                tr, te = ml100k_fold(ml, fold, users, items)
                X, Xt, groups, sizes = build(setting, tr, te)
                y, yt = tr["rating"].to_numpy(float), te["rating"].to_numpy(float)
                row = {"setting": setting, "fold": fold, "n_iter": it, "nnz_per_row": X.nnz / X.shape[0]}
                p, t = run_tastebud(X, y, Xt, groups, it)
                row["tastebud_rmse"], row["tastebud_fit_s"], row["tastebud_cpu_s"] = rmse(yt, p), t, CPU["last"]
                p, t = run_myfm(X, y, Xt, sizes, it)
                row["myfm_rmse"], row["myfm_fit_s"], row["myfm_cpu_s"] = rmse(yt, p), t, CPU["last"]
                # Spark is slow: first fold only (and only setting (a) with --quick)
                if use_spark and fold == folds[0] and (not args.quick or setting == "a") and setting != "c":
                    p, t = run_spark(X, y, Xt, yt, it, tmp=tmp)
                    row["spark_rmse"], row["spark_fit_s"] = rmse(yt, p), t
                results["ml100k"].append(row)
                print(json.dumps(row), flush=True)

    if not args.skip_frappe:
        fr = d / "frappe"
        X, y = read_libfm(fr / "frappe.validation.libfm")
        Xt, yt = read_libfm(fr / "frappe.test.libfm")
        p = max(X.shape[1], Xt.shape[1])
        X.resize((X.shape[0], p)), Xt.resize((Xt.shape[0], p))
        # fields are contiguous index ranges (position in the sorted row = field); unused columns
        # join the field before them
        A = sp.vstack([X, Xt]).tocsr()
        A.sort_indices()
        g = np.full(p, -1)
        g[A.indices] = np.concatenate([np.arange(n) for n in np.diff(A.indptr)])
        g = pd.Series(np.where(g < 0, np.nan, g)).ffill().fillna(0).to_numpy(int)
        sizes = np.bincount(g).tolist()
        for it in ([n_iter] if args.quick else [n_iter]):
            row = {"dataset": "frappe", "n_iter": it}
            pr, t = run_tastebud(X, y, Xt, g, it, task="classification")
            row.update(tastebud_auc=auc(yt, pr), tastebud_logloss=logloss(yt, pr), tastebud_fit_s=t, tastebud_cpu_s=CPU["last"])
            pr, t = run_myfm(X, y, Xt, sizes, it, task="classification")
            row.update(myfm_auc=auc(yt, pr), myfm_logloss=logloss(yt, pr), myfm_fit_s=t, myfm_cpu_s=CPU["last"])
            if use_spark:
                pr, t = run_spark(X, y, Xt, yt, it, task="classification", tmp=tmp)
                row.update(spark_auc=auc(yt, pr), spark_logloss=logloss(yt, pr), spark_fit_s=t)
            results["frappe"].append(row)
            print(json.dumps(row), flush=True)

    # ------------------------------------------------------------------ tables
    if results["ml100k"]:
        df = pd.DataFrame(results["ml100k"])
        agg = df.groupby("setting").mean(numeric_only=True)
        print(f"\nML-100K, mean over folds {','.join(folds)} (rank {RANK}; MCMC sweeps per setting in n_iter)")
        cols = [c for c in ["n_iter", "tastebud_rmse", "myfm_rmse", "spark_rmse", "tastebud_fit_s", "myfm_fit_s", "spark_fit_s",
                            "tastebud_cpu_s", "myfm_cpu_s"] if c in agg]
        agg["time_ratio_tb_vs_myfm"] = agg["tastebud_fit_s"] / agg["myfm_fit_s"]
        print(agg[cols + ["time_ratio_tb_vs_myfm"]].round(4).to_string())
        results["ml100k_mean"] = agg.reset_index().to_dict(orient="records")
    for row in results["frappe"]:
        print("\nfrappe (train: validation file, test: test file)")
        for lib in ("tastebud", "myfm", "spark"):
            if f"{lib}_auc" in row:
                cpu = f"  (CPU {row[lib + '_cpu_s']:.2f} s)" if lib + "_cpu_s" in row else ""
                print(f"  {lib:9s} AUC {row[lib + '_auc']:.4f}  log-loss {row[lib + '_logloss']:.4f}  fit {row[lib + '_fit_s']:.2f} s{cpu}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    if _SPARK is not None:
        _SPARK.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
