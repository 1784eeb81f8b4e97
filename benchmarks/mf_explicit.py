"""Explicit-rating matrix factorization on MovieLens-100K official folds u1..u5, side by side with
Surprise (``SVD``, ``SVDpp``) at its default settings, same data, same run.

    .venv/bin/python benchmarks/mf_explicit.py [--quick] [--json PATH] [--folds 1,2,3] [--no-sweep]

Reports per model: mean RMSE and MAE over the folds (and over the ``--repeats`` fits per fold,
seeds 0..repeats-1), fit seconds — wall clock and CPU (process time, all threads) — as the median
of the fits per fold averaged over folds (one fit, seed 0, for the SVD++ pair), and the ratios to
the Surprise reference. A small tuning sweep reports the best mean RMSE each tastebud model reaches (the
sweep selects on the same test folds, so those numbers are optimistic, as in most published
ML-100K tables). Needs $TASTEBUD_DATA (the datasets folder with ml-100k/).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy is imported
os.environ.setdefault("TQDM_DISABLE", "1")
# numba's OpenMP threads sleep instead of spinning while they wait: on a shared, oversubscribed
# machine spinning threads steal the time slices of the working ones
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from tastebud.data.interactions import Interactions  # noqa: E402
from tastebud.data.readers import read_ml100k_ratings  # noqa: E402
from tastebud.models.mf.als import ALS  # noqa: E402
from tastebud.models.mf.matrix_factorization import MatrixFactorization  # noqa: E402
from tastebud.models.mf.svdpp import SVDpp  # noqa: E402

# Surprise defaults: SVD(n_factors=100, n_epochs=20, lr_all=.005, reg_all=.02, init_std_dev=.1),
# SVDpp(n_factors=20, n_epochs=20, lr_all=.007, reg_all=.02, init_std_dev=.1). SVDpp's defaults match
# them; MatrixFactorization's defaults changed (issue #14: tuned on a validation split), so the
# side-by-side rows pass Surprise's SVD settings explicitly (tastebud names: factors, epochs, lr, reg, init_std).
SURPRISE_SVD = {"factors": 100, "epochs": 20, "lr": 0.005, "reg": 0.02, "init_std": 0.1, "shuffle": False}
# Spark MLlib ALS's defaults (rank 10, maxIter 10, regParam 0.1, no biases); tastebud ALS's own differ since issue #14
SPARK_ALS = {"factors": 10, "epochs": 10, "reg": 0.1, "biased": False}
SWEEP = {
    "MatrixFactorization": [
        {"factors": 100, "epochs": 50, "lr": 0.01, "reg": 0.1, "shuffle": True},
        {"factors": 100, "epochs": 60, "lr": 0.01, "reg": 0.1, "shuffle": True, "init_std": 0.01},
        {"factors": 100, "epochs": 60, "lr": 0.01, "reg": 0.09, "reg_bias": 0.005, "shuffle": True, "init_std": 0.01},
        {"factors": 100, "epochs": 60, "lr": 0.007, "reg": 0.08, "reg_bias": 0.005, "shuffle": True, "init_std": 0.01},
    ],
    "SVDpp": [
        {"factors": 20, "epochs": 40, "lr": 0.007, "reg": 0.05, "reg_bias": 0.005, "shuffle": True, "init_std": 0.01},
        {"factors": 50, "epochs": 50, "lr": 0.007, "reg": 0.06, "reg_bias": 0.005, "shuffle": True, "init_std": 0.01},
        {"factors": 100, "epochs": 50, "lr": 0.007, "reg": 0.06, "reg_bias": 0.005, "shuffle": True, "init_std": 0.01},
    ],
    "ALS": [
        {"factors": 10, "epochs": 15, "reg": 0.15, "biased": True},
        {"factors": 20, "epochs": 15, "reg": 0.15, "biased": True},
        {"factors": 20, "epochs": 15, "reg": 0.12, "biased": True},
    ],
}
CLASSES = {"MatrixFactorization": MatrixFactorization, "SVDpp": SVDpp, "ALS": ALS}


def load_folds(folds: list[int]):
    root = os.environ.get("TASTEBUD_DATA")
    if not root or not (Path(root) / "ml-100k" / "u1.base").exists():
        sys.exit("set TASTEBUD_DATA to the datasets folder (with ml-100k/u1.base ...)")
    d = Path(root) / "ml-100k"
    out = []
    for f in folds:
        tr = read_ml100k_ratings(d / f"u{f}.base")
        te = read_ml100k_ratings(d / f"u{f}.test")
        out.append((f, d / f"u{f}.base", d / f"u{f}.test", Interactions.from_frame(tr, rating="rating"), te))
    return out


def metrics(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    e = np.asarray(y, np.float64) - np.asarray(p, np.float64)
    return float(np.sqrt(np.mean(e ** 2))), float(np.mean(np.abs(e)))


def timed(fit, repeats: int):
    """Fit ``repeats`` times with seeds 0..repeats-1; (models, median wall s, median CPU s, walls)."""
    walls, cpus, models = [], [], []
    for seed in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        models.append(fit(seed))
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return models, statistics.median(walls), statistics.median(cpus), walls


def run_tastebud(cls, params, fold, repeats):
    _, _, _, train, test = fold
    models, sec, cpu, walls = timed(lambda seed: cls(**{"random_state": seed, **params}).fit(train), repeats)
    y = test.rating.to_numpy()
    ms = [metrics(y, m.predict(test.user.to_numpy(), test.item.to_numpy())) for m in models]
    return {"rmse": float(np.mean([m[0] for m in ms])), "mae": float(np.mean([m[1] for m in ms])),
            "fit_s": sec, "fit_cpu_s": cpu, "fit_s_all": walls, "rmse_all": [m[0] for m in ms]}


def run_surprise(algo_name, fold, repeats):
    import surprise
    from surprise.model_selection import PredefinedKFold

    _, base, testp, _, _ = fold
    reader = surprise.Reader(line_format="user item rating timestamp", sep="\t")
    data = surprise.Dataset.load_from_folds([(str(base), str(testp))], reader=reader)
    trainset, testset = next(PredefinedKFold().split(data))
    cls = getattr(surprise, algo_name)
    models, sec, cpu, walls = timed(lambda seed: cls(random_state=seed).fit(trainset), repeats)
    ms = []
    for algo in models:
        preds = algo.test(testset)  # clips to the rating scale, as tastebud's clip=True does
        ms.append(metrics([p.r_ui for p in preds], [p.est for p in preds]))
    return {"rmse": float(np.mean([m[0] for m in ms])), "mae": float(np.mean([m[1] for m in ms])),
            "fit_s": sec, "fit_cpu_s": cpu, "fit_s_all": walls, "rmse_all": [m[0] for m in ms]}


_SPARK = None


def run_spark_als(fold, params):
    """Spark MLlib ALS (explicit, weighted-λ like ours) on ``local[2]``; same fold, predictions
    for unseen users/items filled with the training mean and clipped to [1, 5] as ours are."""
    global _SPARK
    from pyspark.ml.recommendation import ALS as SparkALS
    from pyspark.sql import SparkSession

    if _SPARK is None:
        _SPARK = (SparkSession.builder.master("local[2]").appName("tastebud-mf-bench")
                  .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false").config("spark.sql.shuffle.partitions", "4")
                  .config("spark.driver.memory", "2g").getOrCreate())
        _SPARK.sparkContext.setLogLevel("ERROR")
    _, base, _, _, test = fold
    train = read_ml100k_ratings(base)[["user", "item", "rating"]]
    tr = _SPARK.createDataFrame(train).cache()
    tr.count()
    te = _SPARK.createDataFrame(test[["user", "item", "rating"]])
    als = SparkALS(rank=params["factors"], maxIter=params["epochs"], regParam=params["reg"], userCol="user",
                   itemCol="item", ratingCol="rating", coldStartStrategy="nan", seed=0)
    if not getattr(run_spark_als, "_warm", False):  # JVM class loading / JIT outside the timing
        SparkALS(rank=2, maxIter=1, userCol="user", itemCol="item", ratingCol="rating").fit(tr).itemFactors.count()
        run_spark_als._warm = True
    t, c = time.perf_counter(), time.process_time()
    model = als.fit(tr)
    model.userFactors.count()  # fit is lazy in parts: materialise the factors inside the timing
    model.itemFactors.count()
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    pred = model.transform(te).select("user", "item", "rating", "prediction").toPandas()
    p = pred["prediction"].fillna(float(train.rating.mean())).clip(1, 5).to_numpy()
    rmse, mae = metrics(pred["rating"].to_numpy(), p)
    return {"rmse": rmse, "mae": mae, "fit_s": wall, "fit_cpu_s": float("nan"), "driver_cpu_s": cpu,
            "fit_s_all": [wall], "rmse_all": [rmse]}


def summarise(rows: list[dict]) -> dict:
    return {k: float(np.mean([r[k] for r in rows])) for k in ("rmse", "mae", "fit_s", "fit_cpu_s")} | {"per_fold": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="folds u1,u2; 1 repeat; a reduced sweep on u1")
    ap.add_argument("--json", type=Path, help="write all results as JSON here")
    ap.add_argument("--folds", help="comma-separated fold numbers (default 1..5; --quick: 1,2)")
    ap.add_argument("--repeats", type=int, help="fits per fold for MF/SVD/ALS timing (median; default 3, --quick 1)")
    ap.add_argument("--no-sweep", action="store_true", help="skip the tuning sweep")
    ap.add_argument("--no-surprise", action="store_true", help="skip the Surprise reference runs")
    ap.add_argument("--spark", action="store_true",
                    help="also run Spark MLlib ALS (local[2], rank 10, 10 iterations, regParam 0.1) beside tastebud ALS")
    args = ap.parse_args()
    folds = [int(x) for x in args.folds.split(",")] if args.folds else ([1, 2] if args.quick else [1, 2, 3, 4, 5])
    repeats = args.repeats or (1 if args.quick else 3)
    have_surprise = not args.no_surprise
    if have_surprise:
        try:
            import surprise  # noqa: F401
        except ImportError:
            print("scikit-surprise is not installed: reference columns are skipped", file=sys.stderr)
            have_surprise = False
    data = load_folds(folds)
    import numba

    from tastebud._threads import num_threads

    # warm-up: load the numba kernels from the on-disk cache (or compile them) outside the timings
    warm = data[0][3]
    MatrixFactorization(epochs=1).fit(warm)
    MatrixFactorization(epochs=1, parallel=True).fit(warm)
    SVDpp(epochs=1).fit(warm)
    ALS(epochs=1).fit(warm)

    configs = [
        ("MatrixFactorization (Surprise SVD settings)", MatrixFactorization, SURPRISE_SVD, "SVD", repeats),
        ("MatrixFactorization parallel=True (Surprise SVD settings)", MatrixFactorization, {**SURPRISE_SVD, "parallel": True},
         "SVD", repeats),
        ("MatrixFactorization (defaults)", MatrixFactorization, {}, None, repeats),
        ("SVDpp", SVDpp, {}, "SVDpp", 1),
        ("SVDpp parallel=True", SVDpp, {"parallel": True}, "SVDpp", 1),
        ("ALS (Spark settings)", ALS, SPARK_ALS, "ALS", repeats),
        ("ALS biased=True (Spark settings)", ALS, {**SPARK_ALS, "biased": True}, None, repeats),
        ("ALS (defaults)", ALS, {}, None, repeats),
    ]
    per_model: dict[str, list[dict]] = {}
    for fold in data:
        print(f"fold u{fold[0]} ...", file=sys.stderr, flush=True)
        if have_surprise:
            per_model.setdefault("surprise.SVD", []).append(run_surprise("SVD", fold, repeats))
            per_model.setdefault("surprise.SVDpp", []).append(run_surprise("SVDpp", fold, 1))
        for name, cls, params, _, rep in configs:
            per_model.setdefault(name, []).append(run_tastebud(cls, params, fold, rep))
        if args.spark:
            per_model.setdefault("spark.ALS", []).append(run_spark_als(fold, {"factors": 10, "epochs": 10, "reg": 0.1}))
    results = {name: summarise(rows) for name, rows in per_model.items()}

    lines = [f"ML-100K official folds {', '.join('u%d' % f for f in folds)}; {repeats} fit(s) per fold with seeds "
             f"0..{repeats - 1} (SVD++ pair: 1 fit, seed 0); RMSE/MAE: mean over folds and seeds; fit s: median per "
             "fold, mean over folds; wall = wall clock, CPU = process time of all threads", ""]
    lines.append("| model | RMSE | MAE | fit wall s | fit CPU s | reference | RMSE − ref | ref wall / wall | ref CPU / CPU |")
    lines.append("|---|---|---|---|---|---|---|---|---|")
    for name, cls, params, ref, _ in configs:
        r = results[name]
        head = f"| tastebud {name} | {r['rmse']:.4f} | {r['mae']:.4f} | {r['fit_s']:.3f} | {r['fit_cpu_s']:.3f} |"
        lib = "spark" if ref == "ALS" else "surprise"
        if ref and f"{lib}.{ref}" in results:
            s = results[f"{lib}.{ref}"]
            cpu_ratio = f"{s['fit_cpu_s'] / r['fit_cpu_s']:.1f}×" if np.isfinite(s["fit_cpu_s"]) else "–"
            lines.append(f"{head} {lib.title()} {ref} | {r['rmse'] - s['rmse']:+.4f} | {s['fit_s'] / r['fit_s']:.1f}× | "
                         f"{cpu_ratio} |")
        else:
            lines.append(f"{head} – | – | – | – |")
    for ref in ("SVD", "SVDpp"):
        if f"surprise.{ref}" in results:
            s = results[f"surprise.{ref}"]
            lines.append(f"| Surprise {ref} (defaults) | {s['rmse']:.4f} | {s['mae']:.4f} | {s['fit_s']:.3f} | "
                         f"{s['fit_cpu_s']:.3f} | | | | |")
    if "spark.ALS" in results:
        s = results["spark.ALS"]
        lines.append(f"| Spark ALS (local[2], rank 10, 10 it., λ 0.1) | {s['rmse']:.4f} | {s['mae']:.4f} | {s['fit_s']:.3f} | "
                     "– (JVM) | | | | |")
    print("\n".join(lines), flush=True)

    sweep_out: dict[str, list[dict]] = {}
    if not args.no_sweep:
        sweep_folds = data[:1] if args.quick else data
        print(f"\nTuning sweep (mean RMSE over {', '.join('u%d' % f[0] for f in sweep_folds)}; selected on these folds)")
        print("| model | params | RMSE | MAE | fit wall s | fit CPU s |")
        print("|---|---|---|---|---|---|")
        for name, grid in SWEEP.items():
            grid = grid[1:3] if args.quick else grid
            for params in grid:
                rows = [run_tastebud(CLASSES[name], params, f, 1) for f in sweep_folds]
                s = summarise(rows)
                sweep_out.setdefault(name, []).append({"params": params, **{k: s[k] for k in ("rmse", "mae", "fit_s", "fit_cpu_s")}})
                print(f"| {name} | {json.dumps(params)} | {s['rmse']:.4f} | {s['mae']:.4f} | {s['fit_s']:.2f} | "
                      f"{s['fit_cpu_s']:.2f} |", flush=True)
        print("\nbest RMSE per model:")
        for name, rows in sweep_out.items():
            best = min(rows, key=lambda r: r["rmse"])
            print(f"  {name}: {best['rmse']:.4f}  ({json.dumps(best['params'])})")

    env = {"python": platform.python_version(), "numpy": np.__version__, "numba": numba.__version__,
           "cpus": os.cpu_count(), "tastebud_threads": num_threads(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "command": " ".join(sys.argv)}
    try:
        import surprise

        env["surprise"] = surprise.__version__
    except ImportError:
        pass
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"env": env, "folds": folds, "repeats": repeats, "results": results,
                                         "sweep": sweep_out}, indent=2))
        print(f"\nwrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
