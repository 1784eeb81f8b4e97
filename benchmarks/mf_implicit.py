"""Implicit top-N matrix factorization: tastebud vs implicit (and rusket), same data, same run.

(a) MovieLens-100K, all ratings as interactions, a random 20% of each user's items held out, full
    ranking over all items minus the user's training items: ndcg@10 and recall@20 for ImplicitALS
    vs implicit's AlternatingLeastSquares (same factors, regularization, iterations; each at its
    best alpha chosen on a validation split of the training data, because the confidence
    conventions differ: ours c = 1 + α·r, implicit's c = α·r), BPR vs implicit's
    BayesianPersonalizedRanking, PureSVD, EASE, Popularity.
(b) Seconds per ALS iteration on a synthetic power-law dataset (200,000 users × 50,000 items ×
    5,000,000 interactions, 64 factors; --quick: 50,000 × 20,000 × 1,000,000) for tastebud,
    implicit and rusket, each in its own subprocess so its peak RSS can be reported.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/mf_implicit.py [--quick] [--json PATH]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

warnings.filterwarnings("ignore", module="implicit")


# ---------------------------------------------------------------------------- protocol helpers
def _holdout(inter, test_size=0.2, seed=0):
    """Per-user random holdout (tastebud.split.holdout when available)."""
    try:
        from tastebud.split import holdout

        return holdout(inter, test_size=test_size, per_user=True, random_state=seed)
    except ImportError:
        pass
    rng = np.random.default_rng(seed)
    m = inter.matrix
    test = np.zeros(m.nnz, dtype=bool)
    for u in range(m.shape[0]):
        s, e = m.indptr[u], m.indptr[u + 1]
        n = e - s
        nt = int(round(test_size * n))
        if n >= 2 and nt > 0:
            test[s + rng.choice(n, nt, replace=False)] = True
    return inter.select(~test), inter.select(test)


def _dcg_metrics(ranked: np.ndarray, relevant: sp.csr_matrix, k_ndcg=10, k_recall=20) -> dict:
    """ndcg@10 and recall@20 (tastebud.evaluation.metrics when available), mean over users with test items."""
    try:
        from tastebud.evaluation.metrics import ndcg_at_k, recall_at_k

        return {"ndcg@10": float(ndcg_at_k(ranked, relevant, k_ndcg)),
                "recall@20": float(recall_at_k(ranked, relevant, k_recall)), "metrics": "tastebud.evaluation.metrics"}
    except ImportError:
        pass
    rel = relevant.tocsr()
    nd, rc = [], []
    disc = 1.0 / np.log2(np.arange(2, max(k_ndcg, k_recall) + 2))
    for u in range(rel.shape[0]):
        t = rel.indices[rel.indptr[u]:rel.indptr[u + 1]]
        if len(t) == 0:
            continue
        hit10 = np.isin(ranked[u, :k_ndcg], t)
        idcg = disc[:min(len(t), k_ndcg)].sum()
        nd.append((disc[:k_ndcg] * hit10).sum() / idcg)
        rc.append(np.isin(ranked[u, :k_recall], t).sum() / min(len(t), k_recall))
    return {"ndcg@10": float(np.mean(nd)), "recall@20": float(np.mean(rc)), "metrics": "local"}


def _rank(scores_fn, train_m: sp.csr_matrix, k=20, batch=512) -> np.ndarray:
    """Top-k item indices for every user from dense scores, training items excluded (same code for every library)."""
    from tastebud.models.base import topk_rows

    n = train_m.shape[0]
    out = np.empty((n, k), dtype=np.int64)
    for s in range(0, n, batch):
        u = np.arange(s, min(n, s + batch))
        S = np.array(scores_fn(u), dtype=np.float32)
        sub = train_m[u]
        S[np.repeat(np.arange(len(u)), np.diff(sub.indptr)), sub.indices] = -np.inf
        out[s:s + len(u)] = topk_rows(S, k)[0]
    return out


def _evaluate(scores_fn, train_m, test_m) -> dict:
    return _dcg_metrics(_rank(scores_fn, train_m), test_m)


# ---------------------------------------------------------------------------- (a) ML-100K
def ml100k_part(quick: bool) -> list[dict]:
    data_dir = os.environ.get("TASTEBUD_DATA", "/work/shared/data")
    from tastebud.data.interactions import Interactions
    from tastebud.data.readers import read_ml100k_ratings

    df = read_ml100k_ratings(Path(data_dir) / "ml-100k" / "u.data")
    inter = Interactions.from_frame(df, rating="rating")
    train, test = _holdout(inter, 0.2, seed=0)
    fit_tr, val = _holdout(train, 0.2, seed=1)  # validation split (inside train) to pick alpha
    R, T = train.matrix.tocsr(), test.matrix.tocsr()
    Rf, V = fit_tr.matrix.tocsr(), val.matrix.tocsr()
    rows: list[dict] = []

    import tastebud as tb

    reg, iters = 0.01, 15
    alphas_tb = [0.5, 1.0, 2.0, 5.0, 10.0] if quick else [0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0]
    alphas_imp = [1.0, 2.0, 5.0, 10.0, 20.0] if quick else [1.0, 2.0, 5.0, 10.0, 20.0, 40.0]

    def tb_als(a, mat, factors):
        m = tb.ImplicitALS(factors=factors, reg=reg, alpha=a, epochs=iters, random_state=0)
        return m.fit(Interactions(mat, train.users, train.items))

    def run_tb(name, make, note=""):
        t = time.perf_counter()
        m = make(R)
        fit_s = time.perf_counter() - t
        res = _evaluate(m._scores, R, T)
        rows.append({"part": "ml100k", "model": name, "library": "tastebud", **res, "fit_s": fit_s, "note": note})
        print(f"  {name:<38} ndcg@10 {res['ndcg@10']:.4f}  recall@20 {res['recall@20']:.4f}  fit {fit_s:6.2f}s  {note}", flush=True)
        return m

    try:
        from implicit.cpu.als import AlternatingLeastSquares
        from implicit.cpu.bpr import BayesianPersonalizedRanking
    except ImportError:
        print("  implicit not installed: its rows are skipped", flush=True)
        AlternatingLeastSquares = BayesianPersonalizedRanking = None

    def imp_als(a, mat, factors):
        m = AlternatingLeastSquares(factors=factors, regularization=reg, alpha=a, iterations=iters, random_state=0)
        m.fit(sp.csr_matrix(mat), show_progress=False)
        return m

    # f=100 (implicit's default) is the headline comparison; f=32 (full run only) shows a better-fitting size
    for factors in ([100] if quick else [100, 32]):
        sfx = "" if factors == 100 else f" f={factors}"
        # alpha selection on the validation split, for each library in its own convention
        best_tb = max(alphas_tb, key=lambda a: _evaluate(tb_als(a, Rf, factors)._scores, Rf, V)["ndcg@10"])
        run_tb("ImplicitALS" + sfx, lambda mat: tb_als(best_tb, mat, factors), f"alpha={best_tb} (c=1+αr), f={factors} λ={reg} it={iters}")
        if AlternatingLeastSquares is None:
            continue
        best_imp = max(alphas_imp, key=lambda a: _evaluate(lambda u, m=imp_als(a, Rf, factors): m.user_factors[u] @ m.item_factors.T, Rf, V)["ndcg@10"])
        for label, alpha in (("AlternatingLeastSquares" + sfx, best_imp), ("AlternatingLeastSquares (alpha=1 default)" + sfx, 1.0)):
            t = time.perf_counter()
            mi = imp_als(alpha, R, factors)
            fs = time.perf_counter() - t
            res = _evaluate(lambda u: mi.user_factors[u] @ mi.item_factors.T, R, T)
            note = f"alpha={alpha} (c=αr), f={factors} λ={reg} it={iters}"
            rows.append({"part": "ml100k", "model": label, "library": "implicit", **res, "fit_s": fs, "note": note})
            print(f"  {'implicit ' + label:<38} ndcg@10 {res['ndcg@10']:.4f}  recall@20 {res['recall@20']:.4f}  fit {fs:6.2f}s  {note}", flush=True)

    bpr_settings = [dict(factors=100, lr=0.01, reg=0.01, epochs=100)]
    if not quick:
        bpr_settings.append(dict(factors=100, lr=0.05, reg=0.01, epochs=100))
    for bpr_kw in bpr_settings:
        note = f"f={bpr_kw['factors']} lr={bpr_kw['lr']} λ={bpr_kw['reg']} it={bpr_kw['epochs']}"
        run_tb("BPR", lambda mat: tb.BPR(**bpr_kw, random_state=0).fit(Interactions(mat, train.users, train.items)), note)
        if BayesianPersonalizedRanking is not None:
            t = time.perf_counter()
            mb = BayesianPersonalizedRanking(factors=bpr_kw["factors"], learning_rate=bpr_kw["lr"], regularization=bpr_kw["reg"],
                                             iterations=bpr_kw["epochs"], random_state=0)
            mb.fit(sp.csr_matrix(R), show_progress=False)
            fs = time.perf_counter() - t
            res = _evaluate(lambda u: mb.user_factors[u] @ mb.item_factors.T, R, T)
            rows.append({"part": "ml100k", "model": "BayesianPersonalizedRanking", "library": "implicit", **res, "fit_s": fs, "note": note})
            print(f"  {'implicit BayesianPersonalizedRanking':<38} ndcg@10 {res['ndcg@10']:.4f}  recall@20 {res['recall@20']:.4f}  fit {fs:6.2f}s  {note}", flush=True)

    svd_f = [5, 10, 20] if quick else [5, 10, 15, 20, 30, 50]
    best_f = max(svd_f, key=lambda f: _evaluate(tb.PureSVD(factors=f, random_state=0).fit(Interactions(Rf, train.users, train.items))._scores, Rf, V)["ndcg@10"])
    run_tb("PureSVD", lambda mat: tb.PureSVD(factors=best_f, random_state=0).fit(Interactions(mat, train.users, train.items)), f"factors={best_f} (ratings as values)")
    lams = [200.0, 500.0, 1000.0, 2000.0] if quick else [100.0, 200.0, 500.0, 1000.0, 1500.0, 2000.0, 3000.0]
    best_l = max(lams, key=lambda lam: _evaluate(tb.EASE(reg=lam).fit(Interactions(Rf, train.users, train.items))._scores, Rf, V)["ndcg@10"])
    run_tb("EASE", lambda mat: tb.EASE(reg=best_l).fit(Interactions(mat, train.users, train.items)), f"lambda={best_l}")
    run_tb("Popularity", lambda mat: tb.Popularity().fit(Interactions(mat, train.users, train.items)))
    return rows


# ---------------------------------------------------------------------------- (b) timing
def _synthetic(size: tuple[int, int, int]) -> sp.csr_matrix:
    from tastebud.data.synthetic import powerlaw_implicit

    inter, _ = powerlaw_implicit(*size, random_state=0)
    return inter.matrix.tocsr()


def _peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM; unlike ru_maxrss it does not inherit the parent's peak across exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _worker(lib: str, data_path: str, iters: int, factors: int) -> dict:
    R = sp.load_npz(data_path).tocsr()
    rss0 = _peak_rss_mb()
    if lib == "tastebud":
        from tastebud.models.mf.implicit_als import ImplicitALS

        def fit(n):
            ImplicitALS(factors=factors, epochs=n, random_state=0).fit(R)
    elif lib == "implicit":
        from implicit.cpu.als import AlternatingLeastSquares

        def fit(n):
            AlternatingLeastSquares(factors=factors, iterations=n, random_state=0, calculate_training_loss=False).fit(R, show_progress=False)
    elif lib == "rusket":
        import rusket

        def fit(n):
            rusket.ALS(factors=factors, iterations=n, seed=0, cg_iters=3).fit(R)
    else:
        raise ValueError(lib)
    fit(1)  # warm-up (JIT compile / thread pools)
    t = time.perf_counter()
    fit(iters)
    total = time.perf_counter() - t
    rss = _peak_rss_mb()
    return {"library": lib, "s_per_iter": total / iters, "iters": iters, "peak_rss_mb": rss, "data_rss_mb": rss0,
            "nnz": int(R.nnz), "shape": list(R.shape)}


def timing_part(quick: bool, libs: list[str], repeats: int) -> list[dict]:
    """Each library in its own subprocess (peak RSS), ``repeats`` rounds interleaved (lib A, B, C, A, B, C...)
    so that load from other processes on a shared machine hits all alike; min and median reported."""
    size = (50_000, 20_000, 1_000_000) if quick else (200_000, 50_000, 5_000_000)
    iters = 3 if quick else 5
    runs: dict[str, list[dict]] = {lib: [] for lib in libs}
    import tempfile

    tmp = tempfile.TemporaryDirectory()
    data_path = os.path.join(tmp.name, "synthetic.npz")
    sp.save_npz(data_path, _synthetic(size), compressed=False)
    for rep in range(repeats):
        for lib in libs:
            cmd = [sys.executable, __file__, "--_worker", lib, "--_data", data_path, "--_iters", str(iters)]
            p = subprocess.run(cmd, capture_output=True, text=True)
            if p.returncode != 0:
                print(f"  {lib}: failed: {p.stderr.strip().splitlines()[-1:]}", flush=True)
                continue
            r = json.loads(p.stdout.strip().splitlines()[-1])
            runs[lib].append(r)
            print(f"  round {rep + 1}: {lib:<10} {r['s_per_iter']:7.3f} s/iter   peak RSS {r['peak_rss_mb']:7.0f} MB "
                  f"(data loaded: {r['data_rss_mb']:.0f} MB)", flush=True)
    out = []
    for lib, rs in runs.items():
        if not rs:
            continue
        t = [r["s_per_iter"] for r in rs]
        out.append({"part": "timing", "library": lib, "s_per_iter_min": min(t), "s_per_iter_median": float(np.median(t)),
                    "s_per_iter_all": t, "peak_rss_mb": max(r["peak_rss_mb"] for r in rs),
                    "data_rss_mb": rs[0]["data_rss_mb"], "nnz": rs[0]["nnz"], "shape": rs[0]["shape"], "iters": iters})
    tmp.cleanup()
    base = next((r for r in out if r["library"] == "tastebud"), None)
    print(f"  {'library':<10} {'min s/iter':>10} {'median':>8} {'ratio(min)':>10} {'peak RSS MB':>12}")
    for r in out:
        if base:
            r["ratio_vs_tastebud_min"] = r["s_per_iter_min"] / base["s_per_iter_min"]
        print(f"  {r['library']:<10} {r['s_per_iter_min']:10.3f} {r['s_per_iter_median']:8.3f} "
              f"{r.get('ratio_vs_tastebud_min', float('nan')):10.2f} {r['peak_rss_mb']:12.0f}", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", type=str, default=None)
    ap.add_argument("--skip-timing", action="store_true")
    ap.add_argument("--skip-ml100k", action="store_true")
    ap.add_argument("--libs", default="tastebud,implicit,rusket")
    ap.add_argument("--repeats", type=int, default=2, help="interleaved timing rounds per library")
    ap.add_argument("--_worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--_data", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--_iters", type=int, default=3, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a._worker:
        print(json.dumps(_worker(a._worker, a._data, a._iters, 64)))
        return
    t0 = time.time()
    rows: list[dict] = []
    if not a.skip_ml100k:
        print("(a) MovieLens-100K, 20% per-user holdout, full ranking (alpha/factors/lambda picked on a validation split of train)")
        rows += ml100k_part(a.quick)
        imp = {r["model"]: r for r in rows if r["library"] == "implicit"}
        tbr = {r["model"]: r for r in rows if r["library"] == "tastebud"}
        for sfx in ("", " f=32"):
            if "AlternatingLeastSquares" + sfx in imp and "ImplicitALS" + sfx in tbr:
                ratio = tbr["ImplicitALS" + sfx]["ndcg@10"] / imp["AlternatingLeastSquares" + sfx]["ndcg@10"]
                print(f"  ImplicitALS / implicit ALS ndcg@10 ratio{sfx or ' (f=100)'}: {ratio:.3f}")
    if not a.skip_timing:
        print("(b) seconds per iteration, synthetic power-law, 64 factors, CG 3 steps" + (" (quick size)" if a.quick else ""))
        rows += timing_part(a.quick, a.libs.split(","), a.repeats)
    print(f"total {time.time() - t0:.0f}s")
    if a.json:
        Path(a.json).write_text(json.dumps({"quick": a.quick, "rows": rows, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}, indent=2))


if __name__ == "__main__":
    main()
