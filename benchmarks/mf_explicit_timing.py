"""Focused fit timing: tastebud ``MatrixFactorization`` at Surprise's SVD settings vs Surprise ``SVD`` (defaults) on
ML-100K official folds, plus the SGD kernel alone and a split of ``fit`` into kernel vs Python-side
setup. Much shorter than ``mf_explicit.py`` (no SVD++/ALS/sweep), for checking the speed ratio.

    .venv/bin/python benchmarks/mf_explicit_timing.py [--folds 1,2,3,4,5] [--repeats 7] [--no-surprise]

Per fold: median and minimum wall seconds and median CPU seconds (process time, all threads) of
``--repeats`` fits with seeds 0.., the mean test RMSE (predictions clipped to [1, 5], as in
``mf_explicit.py``), and the load average before/after so a reader can judge the machine's state.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy is imported
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from tastebud.data.interactions import Interactions  # noqa: E402
from tastebud.data.readers import read_ml100k_ratings  # noqa: E402
from tastebud.kernels import sgd as K  # noqa: E402
from tastebud.models.mf.matrix_factorization import MatrixFactorization  # noqa: E402

# Surprise SVD's defaults in tastebud's names (MatrixFactorization's own defaults differ since issue #14)
SURPRISE_SVD = {"factors": 100, "epochs": 20, "lr": 0.005, "reg": 0.02, "init_std": 0.1, "shuffle": False}


def timed(fn, repeats: int) -> tuple[float, float, float]:
    """(median wall, min wall, median CPU) over ``repeats`` calls fn(seed)."""
    walls, cpus = [], []
    for seed in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn(seed)
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), min(walls), statistics.median(cpus)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folds", default="1,2,3,4,5")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--no-surprise", action="store_true")
    ap.add_argument("--quick", action="store_true", help="fold u1 only, 3 repeats (well under 5 minutes)")
    ap.add_argument("--json", default=None, help="write the per-fold rows as JSON here")
    args = ap.parse_args()
    if args.quick:
        args.folds, args.repeats = "1", 3
    root = os.environ.get("TASTEBUD_DATA")
    if not root or not (Path(root) / "ml-100k" / "u1.base").exists():
        sys.exit("set TASTEBUD_DATA to the datasets folder (with ml-100k/u1.base ...)")
    d = Path(root) / "ml-100k"
    surprise = None
    if not args.no_surprise:
        try:
            import surprise
            from surprise.model_selection import PredefinedKFold
        except ImportError:
            print("scikit-surprise not installed: reference skipped", file=sys.stderr)
    rows = []
    for fold in (int(x) for x in args.folds.split(",")):
        tr = Interactions.from_frame(read_ml100k_ratings(d / f"u{fold}.base"), rating="rating")
        te = read_ml100k_ratings(d / f"u{fold}.test")
        y = te.rating.to_numpy(np.float64)
        MatrixFactorization(epochs=1).fit(tr)  # load the kernels (numba cache) outside the timing
        MatrixFactorization(epochs=1, parallel=True).fit(tr)
        MatrixFactorization(epochs=1, parallel="hogwild").fit(tr)
        before = load()
        row = {"fold": fold}
        for name, params in (("mf", SURPRISE_SVD), ("mf_parallel", {**SURPRISE_SVD, "parallel": True}),
                             ("mf_hogwild", {**SURPRISE_SVD, "parallel": "hogwild"})):
            models: list = []
            w, mn, c = timed(lambda s: models.append(MatrixFactorization(random_state=s, **params).fit(tr)), args.repeats)
            rm = [float(np.sqrt(np.mean((y - m.predict(te.user.to_numpy(), te.item.to_numpy())) ** 2))) for m in models]
            row[name] = (w, mn, c, float(np.mean(rm)))
        # the kernel alone: 20 default epochs on freshly initialised float32 factors
        u, i, r, _ = tr.coo()
        u, i, r = u.astype(np.int64), i.astype(np.int64), r.astype(np.float64)
        order = np.arange(len(r), dtype=np.int64)
        mu = float(r.mean())

        def kernel(seed: int) -> None:
            rng = np.random.default_rng(seed)
            P = (rng.standard_normal((tr.shape[0], 100), dtype=np.float32) * np.float32(0.1))
            Q = (rng.standard_normal((tr.shape[1], 100), dtype=np.float32) * np.float32(0.1))
            bu, bi = np.zeros(tr.shape[0]), np.zeros(tr.shape[1])
            for _ in range(20):
                K.mf_sgd_epoch(u, i, r, order, mu, bu, bi, P, Q, 0.005, 0.005, 0.02, 0.02, True)

        row["kernel"] = timed(kernel, args.repeats)
        row["nnz"] = len(r)
        if surprise is not None:
            reader = surprise.Reader(line_format="user item rating timestamp", sep="\t")
            data = surprise.Dataset.load_from_folds([(str(d / f"u{fold}.base"), str(d / f"u{fold}.test"))], reader=reader)
            ts, testset = next(PredefinedKFold().split(data))
            algos: list = []
            w, mn, c = timed(lambda s: algos.append(surprise.SVD(random_state=s).fit(ts)), max(3, args.repeats // 2))
            rm = []
            for a in algos:
                preds = a.test(testset)
                e = np.array([p.r_ui - p.est for p in preds])
                rm.append(float(np.sqrt(np.mean(e ** 2))))
            row["surprise"] = (w, mn, c, float(np.mean(rm)))
        row["load"] = f"{before} -> {load()}"
        rows.append(row)
        kw, kmn, kc = row["kernel"]
        line = (f"u{fold}: MF wall {row['mf'][0]:.4f} (min {row['mf'][1]:.4f}) CPU {row['mf'][2]:.4f} RMSE {row['mf'][3]:.4f} | "
                f"MF parallel (DSGD) wall {row['mf_parallel'][0]:.4f} CPU {row['mf_parallel'][2]:.4f} RMSE {row['mf_parallel'][3]:.4f} | "
                f"Hogwild wall {row['mf_hogwild'][0]:.4f} RMSE {row['mf_hogwild'][3]:.4f} | "
                f"kernel-only 20 ep CPU {kc:.4f} ({kmn / 20 / row['nnz'] * 1e9:.1f} ns/update at min wall)")
        if "surprise" in row:
            s = row["surprise"]
            line += (f" | Surprise SVD wall {s[0]:.4f} CPU {s[2]:.4f} RMSE {s[3]:.4f} | ratio CPU {s[2] / row['mf'][2]:.2f}x "
                     f"wall {s[0] / row['mf'][0]:.2f}x (DSGD wall {s[0] / row['mf_parallel'][0]:.2f}x, Hogwild wall {s[0] / row['mf_hogwild'][0]:.2f}x)")
        print(line + f" | load {row['load']}", flush=True)
    if args.json:
        import json

        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(rows, indent=1, default=str))
    if len(rows) > 1:
        mean = lambda key, j: float(np.mean([r[key][j] for r in rows]))  # noqa: E731
        print(f"mean: MF wall {mean('mf', 0):.4f} CPU {mean('mf', 2):.4f} RMSE {mean('mf', 3):.4f}; "
              f"DSGD wall {mean('mf_parallel', 0):.4f} CPU {mean('mf_parallel', 2):.4f} RMSE {mean('mf_parallel', 3):.4f}; "
              f"Hogwild wall {mean('mf_hogwild', 0):.4f} RMSE {mean('mf_hogwild', 3):.4f}; kernel CPU {mean('kernel', 2):.4f}"
              + (f"; Surprise wall {mean('surprise', 0):.4f} CPU {mean('surprise', 2):.4f} RMSE {mean('surprise', 3):.4f}; "
                 f"ratio CPU {mean('surprise', 2) / mean('mf', 2):.2f}x wall {mean('surprise', 0) / mean('mf', 0):.2f}x "
                 f"DSGD wall {mean('surprise', 0) / mean('mf_parallel', 0):.2f}x" if "surprise" in rows[0] else ""))


if __name__ == "__main__":
    main()
