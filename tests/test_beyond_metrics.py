"""Beyond-accuracy metrics (tastebud.evaluation.beyond and their names in tb.evaluate) against
brute-force computations written straight from each definition, loop by loop."""

import math
from itertools import combinations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import tastebud as tb
from tastebud.evaluation import beyond as B


def _case(seed=0, n_users=30, n_items=25, k=6):
    rng = np.random.default_rng(seed)
    seen = sp.csr_matrix((rng.random((n_users, n_items)) < 0.2).astype(np.float64))
    ranked = np.full((n_users, k), -1, dtype=np.int64)
    for u in range(n_users):
        free = np.flatnonzero(seen[u].toarray().ravel() == 0)
        m = k if u % 7 else rng.integers(0, k)  # some short (padded) lists, one empty
        ranked[u, :m] = rng.choice(free, size=min(m, len(free)), replace=False)
    rel = sp.csr_matrix((rng.random((n_users, n_items)) < 0.25).astype(np.float64))
    counts = np.asarray(seen.sum(0)).ravel().astype(np.int64)
    return seen, ranked, rel, counts


def _lists(ranked):
    return [[int(i) for i in row if i >= 0] for row in ranked]


def test_novelty_popularity_and_lift_brute_force():
    seen, ranked, _, counts = _case()
    N = seen.shape[0]
    nov, pop, lift = [], [], []
    for u, L in enumerate(_lists(ranked)):
        prof = [counts[i] for i in range(seen.shape[1]) if seen[u, i]]
        if not L:
            nov.append(np.nan), pop.append(np.nan), lift.append(np.nan)
            continue
        nov.append(sum(-math.log2(max(counts[i], 1) / N) for i in L) / len(L))
        pop.append(sum(counts[i] for i in L) / len(L))
        pp = sum(prof) / len(prof) if prof else np.nan
        lift.append((pop[-1] - pp) / pp if prof and pp > 0 else np.nan)
    np.testing.assert_allclose(B.novelty(ranked, counts, N, reduce="none"), nov, equal_nan=True)
    np.testing.assert_allclose(B.popularity(ranked, counts, reduce="none"), pop, equal_nan=True)
    np.testing.assert_allclose(B.popularity_lift(ranked, counts, seen, reduce="none"), lift, equal_nan=True)
    assert B.novelty(ranked, counts, N) == pytest.approx(np.nanmean(nov))


@pytest.mark.parametrize("dense", [True, False])
def test_diversity_brute_force(dense):
    seen, ranked, _, _ = _case(1)
    rng = np.random.default_rng(3)
    F = rng.normal(size=(seen.shape[1], 4))
    F[2] = 0.0  # an item without a vector: similar to nothing
    want = []
    for L in _lists(ranked):
        if len(L) < 2:
            want.append(np.nan)
            continue
        sims = []
        for a, b in combinations(L, 2):
            na, nb = np.linalg.norm(F[a]), np.linalg.norm(F[b])
            sims.append(0.0 if na == 0 or nb == 0 else F[a] @ F[b] / (na * nb))
        want.append(1 - np.mean(sims))
    got = B.diversity(ranked, F if dense else sp.csr_matrix(F), reduce="none")
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12, equal_nan=True)


def test_default_item_vectors_are_cooccurrence_cosine():
    seen, _, _, _ = _case(2)
    F = B.item_vectors_from_seen(seen)
    S = seen.toarray() > 0
    for a, b in [(0, 1), (3, 7), (10, 24)]:
        inter = (S[:, a] & S[:, b]).sum()
        want = inter / math.sqrt(S[:, a].sum() * S[:, b].sum())
        Fa, Fb = F[a].toarray().ravel(), F[b].toarray().ravel()
        assert Fa @ Fb / (np.linalg.norm(Fa) * np.linalg.norm(Fb)) == pytest.approx(want)


def test_serendipity_and_primitive_lists_brute_force():
    seen, ranked, rel, counts = _case(4)
    k = ranked.shape[1]
    order = sorted(range(len(counts)), key=lambda i: (-counts[i], i))
    pm = B.primitive_lists(counts, seen, k)
    want = []
    for u, L in enumerate(_lists(ranked)):
        prim = [i for i in order if not seen[u, i]][:k]
        assert [int(i) for i in pm[u] if i >= 0] == prim
        relset = set(np.flatnonzero(rel[u].toarray().ravel()))
        if not relset:
            want.append(np.nan)
            continue
        want.append(sum(1 for i in L if i in relset and i not in prim) / k)
    got = B.serendipity(ranked, rel, counts, seen, reduce="none")
    np.testing.assert_allclose(got, want, equal_nan=True)


def test_gini_and_exposure_brute_force():
    _, ranked, _, _ = _case(5)
    n_items = 25
    x = [sum(int(i == j) for row in _lists(ranked) for i in row) for j in range(n_items)]
    xs = sorted(x)
    # the mean-absolute-difference form of the Gini index, an independent formula
    mad = sum(abs(a - b) for a in xs for b in xs) / (n_items * n_items)
    assert B.gini(ranked, n_items) == pytest.approx(mad / (2 * np.mean(xs)))
    np.testing.assert_array_equal(B.exposure(ranked, n_items), x)
    assert B.gini(np.arange(n_items)[:, None], n_items) == pytest.approx(0.0)  # equal exposure
    assert B.gini(np.zeros((5, 1), np.int64), n_items) == pytest.approx(1 - 1 / n_items)  # one item gets all


def test_evaluate_accepts_beyond_names_and_matches_the_lists():
    rng = np.random.default_rng(0)
    n_u, n_i = 60, 40
    pairs = {(u, int(i)) for u in range(n_u) for i in rng.choice(n_i, 8, replace=False)}
    df = pd.DataFrame(sorted(pairs), columns=["user", "item"])
    data = tb.Interactions.from_frame(df)
    train, test = tb.split.holdout(data, test_size=0.25, random_state=0)
    model = tb.Popularity().fit(train)
    names = ["novelty@5", "diversity@5", "serendipity@5", "popularity@5", "popularity_lift@5", "gini@5", "coverage@5",
             "ndcg@5"]
    summary, frame = tb.evaluate(model, test, names, per_user=True)
    users = frame.index.to_numpy()
    ids, _ = model.recommend(users, k=5)
    ranked = model.items_.index(ids.ravel()).reshape(ids.shape)
    uidx = model.users_.index(users)
    counts, N = model.item_counts_, model.seen_.shape[0]
    assert summary["novelty@5"] == pytest.approx(B.novelty(ranked, counts, N))
    assert summary["popularity@5"] == pytest.approx(B.popularity(ranked, counts))
    assert summary["popularity_lift@5"] == pytest.approx(B.popularity_lift(ranked, counts, model.seen_[uidx]))
    assert summary["diversity@5"] == pytest.approx(B.diversity(ranked, B.item_vectors_from_seen(model.seen_)))
    assert summary["gini@5"] == pytest.approx(B.gini(ranked, len(model.items_)))
    assert summary["serendipity@5"] == 0.0  # popularity *is* the primitive recommender
    for n in ("novelty@5", "ndcg@5", "popularity@5"):
        assert frame[n].mean() == pytest.approx(summary[n])
    assert "gini@5" not in frame and "coverage@5" not in frame  # list-level: no per-user value
    # aliases and the model's own vectors
    assert tb.evaluate(model, test, ["arp@5"])["arp@5"] == pytest.approx(summary["popularity@5"])
    with pytest.raises(ValueError, match="item vectors"):
        tb.evaluate(model, test, ["diversity@5"], item_features="model")


def test_per_user_weights_recover_rating_and_sampled_summaries():
    rng = np.random.default_rng(1)
    rows = [(u, i, float(rng.integers(1, 6))) for u in range(40) for i in rng.choice(30, 10, replace=False)]
    data = tb.Interactions.from_frame(pd.DataFrame(rows, columns=["user", "item", "rating"]), rating="rating")
    train, test = tb.split.holdout(data, test_size=0.3, random_state=0)
    m = tb.BaselinePredictor().fit(train)
    s, f = tb.evaluate(m, test, ["rmse", "mae", "sampled_ndcg@5", "recall@5"], per_user=True, n_negatives=10)
    w = f["n_ratings"]
    assert np.sqrt((w * f["rmse"] ** 2).sum() / w.sum()) == pytest.approx(s["rmse"])
    assert (w * f["mae"]).sum() / w.sum() == pytest.approx(s["mae"])
    r = f["n_relevant"]
    assert (r * f["sampled_ndcg@5"]).sum() / r.sum() == pytest.approx(s["sampled_ndcg@5"])
    assert f["recall@5"].mean() == pytest.approx(s["recall@5"])
