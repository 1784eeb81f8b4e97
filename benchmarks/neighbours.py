"""Neighbourhood models side by side with their references, same data, same run.

    .venv/bin/python benchmarks/neighbours.py [--quick] [--parts implicit,surprise,sar,ndcg] [--json PATH]

1. implicit ``CosineRecommender`` / ``TFIDFRecommender`` / ``BM25Recommender`` (K=20) vs
   ``tb.ItemKNN(similarity=..., k=20)`` on MovieLens-100K (20% per-user holdout, seed 0, ratings as
   values) and amazon-games (20% per-user holdout, counts): similarity matrices compared bit for
   bit, top-10 of every user compared (identical lists; lists identical up to the order of equal
   scores), fit and recommend seconds (median of ``--repeats`` runs taken A B A B in turn) and
   their ratio.
2. Surprise ``KNNBasic`` / ``KNNWithMeans`` / ``KNNWithZScore`` / ``KNNBaseline`` (pearson_baseline)
   / ``SlopeOne`` vs tastebud's classes of the same names on the official folds u1..u5 (defaults
   otherwise): RMSE per fold, fit + predict seconds, speed-up.
3. Microsoft Recommenders ``SARSingleNode`` vs ``tb.SAR`` on the ML-100K holdout (jaccard, lift,
   counts; jaccard with a 30-day half-life decay): top-10 identical / identical up to ties, score
   agreement, fit + recommend seconds.
4. Best ML-100K 20%-holdout ndcg@10 of tastebud models, hyperparameters chosen on a validation
   split carved from train (20% per user, seed 1), then refit on train and scored once on test
   with ``tb.evaluate`` (every relevant test item counts, including items absent from train).

Reference libraries come from the ``bench`` extra; a missing one skips its rows with a note.
``recommenders`` 1.2.1 is used as installed with ``pip install recommenders --no-deps`` (its SAR
module needs only numpy, pandas and scipy); it still calls ``np.NaN``, removed in numpy 2, so this
script restores that alias before importing it.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy is imported

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.sparse as sp  # noqa: E402

import tastebud as tb  # noqa: E402
from tastebud.data.interactions import Interactions  # noqa: E402

warnings.filterwarnings("ignore", module="implicit")
DATA = Path(os.environ.get("TASTEBUD_DATA", "/work/shared/data"))


def paired(fa, fb, repeats):
    """Run fa, fb alternately ``repeats`` times; medians of each and of the per-pair ratio a/b."""
    ta, tb_, ra, rb = [], [], None, None
    for _ in range(repeats):
        t = time.perf_counter()
        ra = fa()
        ta.append(time.perf_counter() - t)
        t = time.perf_counter()
        rb = fb()
        tb_.append(time.perf_counter() - t)
    return ra, rb, float(np.median(ta)), float(np.median(tb_)), float(np.median(np.array(ta) / np.array(tb_)))


def same_up_to_ties(ours_idx, ours_sc, ref_idx, ref_scores_of, tol=1e-6):
    """Row r agrees up to ties when our k items score (under the reference) exactly the reference's
    k best scores, in the same order of scores: only the order among equal scores may differ."""
    ok = np.zeros(len(ours_idx), dtype=bool)
    for r in range(len(ours_idx)):
        a = ref_scores_of(r, ours_idx[r])
        b = ref_scores_of(r, ref_idx[r])
        ok[r] = len(a) == len(b) and np.allclose(a, b, rtol=tol, atol=tol * 1e-3)
    return ok


# ---------------------------------------------------------------------------- data
def ml100k(timestamps=False):
    from tastebud.data.readers import read_ml100k_ratings

    df = read_ml100k_ratings(DATA / "ml-100k" / "u.data")
    inter = Interactions.from_frame(df, rating="rating", timestamp="timestamp" if timestamps else None)
    return tb.split.holdout(inter, test_size=0.2, per_user=True, random_state=0)


def amazon_games():
    df = pd.read_csv(DATA / "amazon-games" / "sequences.txt", sep=" ", header=None, names=["user", "item"])
    inter = Interactions.from_frame(df, duplicates="sum")
    return tb.split.holdout(inter, test_size=0.2, per_user=True, random_state=0)


# ---------------------------------------------------------------------------- 1. implicit
def part_implicit(repeats, quick):
    try:
        from implicit.nearest_neighbours import BM25Recommender, CosineRecommender, TFIDFRecommender
    except ImportError:
        print("  implicit not installed: part skipped", flush=True)
        return []
    rows = []
    sets = [("ml-100k", ml100k)] + ([] if quick else [("amazon-games", amazon_games)])
    for dname, load in sets:
        train, _ = load()
        R = sp.csr_matrix(train.matrix, dtype=np.float32)
        users = np.arange(R.shape[0])
        ext = train.users.ids
        print(f"  {dname}: {R.shape[0]} users, {R.shape[1]} items, {R.nnz} interactions", flush=True)
        for sim, cls in (("cosine", CosineRecommender), ("tfidf", TFIDFRecommender), ("bm25", BM25Recommender)):
            def ours_fit():
                return tb.ItemKNN(similarity=sim, k=20).fit(train)

            def ref_fit():
                m = cls(K=20)
                m.fit(R, show_progress=False)
                return m

            ours_fit(), ref_fit()  # warm-up (numba cache load, first-call costs)
            m, ref, fit_a, fit_b, fit_ratio = paired(ours_fit, ref_fit, repeats)
            (ids, sc), (ri, rs), rec_a, rec_b, rec_ratio = paired(lambda: m.recommend(ext, k=10),
                                                                  lambda: ref.recommend(users, R, N=10), repeats)
            S, Sr = m.similarity_, ref.similarity.tocsr()
            Sr.sort_indices()
            bitwise = bool(np.array_equal(S.indptr, Sr.indptr) and np.array_equal(S.indices, Sr.indices)
                           and np.array_equal(S.data, Sr.data))
            oi = train.items.index(ids.ravel()).reshape(ids.shape)
            identical = (oi == ri).all(axis=1)
            Rd = R

            def ref_scores_of(r, items, S=Sr):
                row = (Rd[r] @ S).toarray().ravel()
                row[Rd[r].indices] = 0.0  # implicit scores liked items 0
                return row[items]
            tie = same_up_to_ties(oi, sc, ri, ref_scores_of)
            row = {"part": "implicit", "data": dname, "model": sim, "similarity_bitwise_equal": bitwise,
                   "top10_identical": float(identical.mean()), "top10_identical_up_to_ties": float(tie.mean()),
                   "fit_s_tastebud": fit_a, "fit_s_ref": fit_b, "rec_s_tastebud": rec_a, "rec_s_ref": rec_b,
                   "fit_ratio": fit_ratio, "rec_ratio": rec_ratio,
                   "total_ratio": (fit_a + rec_a) / (fit_b + rec_b)}
            rows.append(row)
            print(f"    {sim:6s} S bit-equal {bitwise}  top-10 identical {identical.mean():.4f} (up to ties {tie.mean():.4f})"
                  f"  fit {fit_a:.3f}s vs {fit_b:.3f}s  recommend {rec_a:.3f}s vs {rec_b:.3f}s"
                  f"  (fit+rec) ratio {row['total_ratio']:.2f}", flush=True)
    return rows


# ---------------------------------------------------------------------------- 2. Surprise
def part_surprise(quick):
    try:
        import surprise
        from surprise.model_selection import PredefinedKFold
    except ImportError:
        print("  scikit-surprise not installed: part skipped", flush=True)
        return []
    folds = [1] if quick else [1, 2, 3, 4, 5]
    pairs = tb.split.official_folds(str(DATA / "ml-100k"), folds=[f"u{f}" for f in folds])
    cases = [("KNNBasic", {}, {}), ("KNNWithMeans", {}, {}), ("KNNWithZScore", {}, {}),
             ("KNNBaseline", {"similarity": "pearson_baseline"}, {"sim_options": {"name": "pearson_baseline"}}),
             ("SlopeOne", {}, None)]
    warm = pairs[0][0]
    for name, kw, _ in cases:  # warm-up: numba cache load
        getattr(tb, name)(**kw).fit(warm).predict(warm.users.ids[:2], warm.items.ids[:2])
    rows = []
    for f, (train, test) in zip(folds, pairs):
        data = surprise.Dataset.load_from_folds([(str(DATA / "ml-100k" / f"u{f}.base"), str(DATA / "ml-100k" / f"u{f}.test"))],
                                                reader=surprise.Reader("ml-100k"))
        trainset, testset = next(PredefinedKFold().split(data))
        for name, kw, skw in cases:
            t = time.perf_counter()
            res = tb.evaluate(getattr(tb, name)(**kw).fit(train), test, ["rmse", "mae"])
            a = time.perf_counter() - t
            t = time.perf_counter()
            algo = getattr(surprise, name)(**skw, verbose=False) if skw is not None else surprise.SlopeOne()
            preds = algo.fit(trainset).test(testset)
            rr = surprise.accuracy.rmse(preds, verbose=False)
            b = time.perf_counter() - t
            rows.append({"part": "surprise", "fold": f"u{f}", "model": name, "rmse_tastebud": res["rmse"], "rmse_ref": rr,
                         "s_tastebud": a, "s_ref": b, "speedup": b / a})
            print(f"    u{f} {name:14s} RMSE {res['rmse']:.5f} vs {rr:.5f} ({res['rmse'] - rr:+.5f})  "
                  f"{a:.2f}s vs {b:.2f}s  ({b / a:.1f}x)", flush=True)
    return rows


# ---------------------------------------------------------------------------- 3. SAR
def part_sar(repeats):
    try:
        np.NaN = np.nan  # recommenders 1.2.1 still uses the alias numpy 2 removed
        from recommenders.models.sar.sar_singlenode import SARSingleNode
    except ImportError:
        print("  recommenders not installed: part skipped", flush=True)
        return []
    import logging

    logging.getLogger().setLevel(logging.WARNING)
    train, _ = ml100k(timestamps=True)
    df = train.to_frame().rename(columns={"user": "userID", "item": "itemID"})
    users = pd.DataFrame({"userID": train.users.ids})
    rows = []
    for st, decay in (("jaccard", False), ("lift", False), ("counts", False), ("jaccard", True)):
        def ours():
            m = tb.SAR(similarity_type=st, time_decay=decay, half_life_days=30).fit(train)
            return m, m.recommend(train.users.ids, k=10)

        def ref():
            m = SARSingleNode(similarity_type={"counts": "cooccurrence"}.get(st, st), timedecay_formula=decay,
                              time_decay_coefficient=30)
            m.fit(df)
            return m, m.recommend_k_items(users, top_k=10, remove_seen=True)

        ours(), ref()
        (m, (ids, sc)), (rm, top), a, b, ratio = paired(ours, ref, repeats)
        ref_ids = np.array(top.groupby("userID", sort=False)["itemID"].apply(list).loc[list(train.users.ids)].tolist())
        ref_sc = np.array(top.groupby("userID", sort=False)["prediction"].apply(list).loc[list(train.users.ids)].tolist())
        identical = (ids == ref_ids).all(axis=1)
        full = np.asarray(rm.score(users, remove_seen=True))
        full = np.hstack([full, np.zeros((len(full), 1))])  # items absent from training score 0 in both
        col = np.array([rm.item2index.get(i, full.shape[1] - 1) for i in train.items.ids])

        def ref_scores_of(r, items):
            return full[r, col[items]]
        oi = train.items.index(ids.ravel()).reshape(ids.shape)
        ri = train.items.index(ref_ids.ravel()).reshape(ref_ids.shape)
        tie = same_up_to_ties(oi, sc, ri, ref_scores_of)
        rel = float(np.max(np.abs(sc - ref_sc) / np.abs(ref_sc)))
        name = st + (" + decay 30 d" if decay else "")
        rows.append({"part": "sar", "model": name, "top10_identical": float(identical.mean()),
                     "top10_identical_up_to_ties": float(tie.mean()), "max_rel_score_diff": rel,
                     "s_tastebud": a, "s_ref": b, "ratio": ratio})
        print(f"    {name:20s} top-10 identical {identical.mean():.4f} (up to ties {tie.mean():.4f})  max rel score diff {rel:.1e}"
              f"  fit+recommend {a:.3f}s vs {b:.3f}s ({b / a:.1f}x faster)", flush=True)
    return rows


# ---------------------------------------------------------------------------- 4. best ndcg@10
def part_ndcg(quick):
    train, test = ml100k()
    fit_tr, val = tb.split.holdout(train, test_size=0.2, per_user=True, random_state=1)
    grids = {
        "ItemKNN": (tb.ItemKNN, [dict(similarity=s, k=k, shrinkage=h, binarize=True, asymmetric_alpha=a)
                                 for s, alphas in (("cosine", [0.5]), ("asymmetric", [0.2, 0.35]), ("bm25", [0.5]))
                                 for a in alphas for k in ([50, 100] if quick else [20, 50, 100, 200])
                                 for h in ([0, 10] if quick else [0, 10, 50])]),
        "UserKNN": (tb.UserKNN, [dict(similarity=s, k=k, binarize=True) for s in ("cosine", "bm25", "tfidf")
                                 for k in ([60, 100] if quick else [30, 60, 100, 200])]),
        "SAR": (tb.SAR, [dict(similarity_type=s) for s in ("jaccard", "lift", "counts", "cosine", "inclusion_index")]),
        "EASE": (tb.EASE, [dict(lambda_=lam) for lam in ([200.0, 500.0] if quick else [100.0, 200.0, 300.0, 500.0, 1000.0])]),
    }
    rows = []
    for name, (cls, grid) in grids.items():
        scored = [(tb.evaluate(cls(**p).fit(fit_tr), val, ["ndcg@10"])["ndcg@10"], p) for p in grid]
        v, best = max(scored, key=lambda t: t[0])
        res = tb.evaluate(cls(**best).fit(train), test, ["ndcg@10", "recall@20"])
        rows.append({"part": "ndcg", "model": name, "params": best, "val_ndcg@10": v, **res})
        print(f"    {name:8s} val {v:.4f}  test ndcg@10 {res['ndcg@10']:.4f}  recall@20 {res['recall@20']:.4f}  {best}", flush=True)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--parts", default="implicit,surprise,sar,ndcg")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    parts = args.parts.split(",")
    print(f"# neighbours benchmark — {platform.node()} {platform.python_version()} tastebud {tb.__version__}; "
          f"load {os.getloadavg()[0]:.1f}", flush=True)
    rows = []
    for p, fn in (("implicit", lambda: part_implicit(args.repeats, args.quick)), ("surprise", lambda: part_surprise(args.quick)),
                  ("sar", lambda: part_sar(args.repeats)), ("ndcg", lambda: part_ndcg(args.quick))):
        if p in parts:
            print(f"\n## {p}  (load {os.getloadavg()[0]:.1f})", flush=True)
            rows += fn()
    print(f"\nload at the end: {os.getloadavg()[0]:.1f}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(rows, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
