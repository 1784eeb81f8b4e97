"""Neighbourhood models: ItemKNN / UserKNN similarities against dense brute force, top-k pruning,
sparse scoring, the Surprise-style rating predictors and SlopeOne against a direct implementation
of their rules (and Surprise itself when installed), SAR against its formulas, implicit equality,
persistence and protocol edges."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import tastebud as tb
from tastebud.data.idmap import IdMap
from tastebud.data.interactions import Interactions
from tastebud.exceptions import UnknownIdError
from tastebud.models.base import topk_rows_reference
from tastebud.models.neighbours._similarity import score_rows


def _inter(M: sp.spmatrix, ts: sp.spmatrix | None = None) -> Interactions:
    M = sp.csr_matrix(M, dtype=np.float32)
    return Interactions(M, IdMap([f"u{i}" for i in range(M.shape[0])], "user"),
                        IdMap([f"i{j}" for j in range(M.shape[1])], "item"), ts)


def _random(n_users=40, n_items=30, density=0.3, seed=0, integer=False):
    rng = np.random.default_rng(seed)
    M = sp.random(n_users, n_items, density=density, format="csr", random_state=rng, dtype=np.float64)
    M.data = rng.integers(1, 6, len(M.data)).astype(np.float64) if integer else 1.0 + 4.0 * M.data
    return M


# ---------------------------------------------------------------------------- brute force similarities
def _dense_similarity(X: np.ndarray, similarity: str, shrinkage=0.0, alpha=0.5, k1=1.2, b=0.75) -> np.ndarray:
    """Item × item similarity of the dense user × item matrix X, straight from the definitions."""
    n_users, n_items = X.shape
    P = X != 0
    if similarity == "jaccard":
        B = P.astype(float)
        inter = B.T @ B
        size = B.sum(axis=0)
        return inter / (size[:, None] + size[None, :] - inter + shrinkage)
    W = X.astype(float).copy()
    if similarity == "tfidf":  # implicit: idf over users, N = number of items
        idf = np.log(n_items) - np.log1p(P.sum(axis=1))
        W = np.sqrt(W) * idf[:, None] * P
    elif similarity == "bm25":
        idf = np.log(n_items) - np.log1p(P.sum(axis=1))
        length = W.sum(axis=0)
        ln = (1 - b) + b * length / length.mean()
        W = np.where(P, W * (k1 + 1) / (k1 * ln[None, :] + W) * idf[:, None], 0.0)
        return W.T @ W / (1.0 + shrinkage)
    elif similarity == "pearson":  # item-mean centred over the item's ratings
        mean = W.sum(axis=0) / P.sum(axis=0)
        W = np.where(P, W - mean[None, :], 0.0)
    elif similarity == "adjusted_cosine":  # user-mean centred
        mean = W.sum(axis=1) / np.maximum(P.sum(axis=1), 1)
        W = np.where(P, W - mean[:, None], 0.0)
    dots = W.T @ W
    sq = (W * W).sum(axis=0)
    if similarity == "asymmetric":
        return dots / (sq[:, None] ** alpha * sq[None, :] ** (1 - alpha) + shrinkage)
    norm = np.sqrt(sq)
    return dots / (norm[:, None] * norm[None, :] + shrinkage)


@pytest.mark.parametrize("similarity", ["cosine", "adjusted_cosine", "pearson", "jaccard", "bm25", "tfidf", "asymmetric"])
@pytest.mark.parametrize("shrinkage", [0.0, 3.0])
def test_itemknn_similarity_matches_brute_force(similarity, shrinkage):
    X = _random(seed=1)
    Xd = X.toarray().astype(np.float32).astype(np.float64)  # the model sees float32 values
    m = tb.ItemKNN(similarity=similarity, k=X.shape[1], shrinkage=shrinkage, asymmetric_alpha=0.3).fit(_inter(X))
    ref = _dense_similarity(Xd, similarity, shrinkage, alpha=0.3)
    co = (Xd != 0).T.astype(int) @ (Xd != 0).astype(int) > 0  # pairs that share a user
    got = m.similarity_.toarray()
    assert set(zip(*m.similarity_.nonzero())) <= set(zip(*np.nonzero(co)))
    # squares of the float32 input are taken in float32 (as implicit does): agreement to ~1e-7
    np.testing.assert_allclose(got[co], ref[co], rtol=2e-6, atol=1e-9)


@pytest.mark.parametrize("similarity", ["cosine", "bm25", "asymmetric", "jaccard"])
@pytest.mark.parametrize("include_self", [True, False])
def test_topk_pruning_equals_dense_restricted_to_k(similarity, include_self):
    X = _random(seed=2, density=0.35)
    Xd = X.toarray()
    k = 5
    m = tb.ItemKNN(similarity=similarity, k=k, include_self=include_self).fit(_inter(X))
    full = tb.ItemKNN(similarity=similarity, k=X.shape[1], include_self=include_self).fit(_inter(X)).similarity_.toarray()
    co = (Xd != 0).T.astype(int) @ (Xd != 0).astype(int) > 0
    if not include_self:
        np.fill_diagonal(co, False)
    got = m.similarity_.toarray()
    for i in range(X.shape[1]):
        cand = np.flatnonzero(co[i])
        vals = full[i, cand]
        kth = np.sort(vals)[::-1][min(k, len(vals)) - 1]
        kept = np.flatnonzero(m.similarity_[i].toarray().ravel() != 0)
        assert len(kept) == min(k, len(cand))
        assert set(cand[vals > kth]) <= set(kept)  # every strictly better neighbour is kept
        assert (full[i, kept] >= kth).all()
        np.testing.assert_allclose(got[i, kept], full[i, kept])


def test_userknn_similarity_is_itemknn_on_the_transpose():
    X = _random(seed=3)
    for sim in ("cosine", "pearson", "tfidf"):
        u = tb.UserKNN(similarity=sim, k=X.shape[0], include_self=True).fit(_inter(X))
        i = tb.ItemKNN(similarity=sim, k=X.shape[0], include_self=True).fit(_inter(X.T))
        np.testing.assert_allclose(u.neighbours_.toarray(), i.similarity_.toarray(), rtol=1e-12, atol=1e-14)


def test_threads_do_not_change_results():
    X = _random(200, 120, 0.1, seed=4)
    a = tb.ItemKNN(similarity="bm25", k=7, num_threads=1).fit(_inter(X)).similarity_
    b = tb.ItemKNN(similarity="bm25", k=7, num_threads=2).fit(_inter(X)).similarity_
    assert (a != b).nnz == 0


# ---------------------------------------------------------------------------- scoring
def test_itemknn_recommend_is_brute_force_top_k():
    X = _random(seed=5, integer=True)
    m = tb.ItemKNN(similarity="cosine", k=6).fit(_inter(X))
    S = m.similarity_.toarray()
    scores = X.toarray() @ S
    scores[X.toarray() != 0] = -np.inf
    ref_idx, ref_val = topk_rows_reference(scores, 8)
    ids, sc = m.recommend([f"u{i}" for i in range(X.shape[0])], k=8)
    got = np.vectorize(lambda s: int(s[1:]))(ids)
    np.testing.assert_allclose(sc, ref_val, rtol=1e-6)
    # equal scores may be ordered either way only when they are equal: compare as (score, index) pairs
    assert (got == ref_idx).mean() > 0.95
    for r in range(len(got)):
        np.testing.assert_allclose(np.sort(scores[r, got[r]]), np.sort(ref_val[r]), rtol=1e-6)


def test_score_rows_ties_exclusions_candidates_and_padding():
    rng = np.random.default_rng(6)
    Q = sp.random(30, 12, density=0.3, format="csr", random_state=rng)
    Q.data = rng.integers(1, 3, len(Q.data)).astype(float)
    S = sp.random(12, 25, density=0.2, format="csr", random_state=rng)
    S.data = rng.integers(-1, 3, len(S.data)).astype(float)  # integers: many ties, some negatives
    X = sp.random(30, 25, density=0.3, format="csr", random_state=rng)
    cand = np.sort(rng.choice(25, 15, replace=False))
    for exclude, cnd, k in ((None, None, 25), (X, None, 10), (X, cand, 15), (None, cand, 4)):
        idx, val = score_rows(Q, S, k, exclude, cnd)
        D = (Q @ S).toarray()
        if exclude is not None:
            D[exclude.toarray() != 0] = -np.inf
        if cnd is not None:
            mask = np.ones(25, bool)
            mask[cnd] = False
            D[:, mask] = -np.inf
        ref_idx, ref_val = topk_rows_reference(D, k)
        np.testing.assert_array_equal(val, ref_val)
        fin = np.isfinite(ref_val)
        np.testing.assert_array_equal(idx[fin], ref_idx[fin])  # ties: lower index first


def test_recommend_for_history_matches_known_user_and_folds_in_userknn():
    X = _random(60, 40, 0.25, seed=7)
    X.data[:] = 1.0  # a history is binary: so is the training row it must reproduce
    data = _inter(X)
    hist = [f"i{j}" for j in X[3].indices]
    for model in (tb.ItemKNN(similarity="cosine", k=10, binarize=True), tb.SAR(),
                  tb.UserKNN(similarity="cosine", k=60, include_self=True)):  # all neighbours: no pruning tie
        model.fit(data)
        a = model.recommend("u3", k=10)
        b = model.recommend_for_history(hist, k=10)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_allclose(a[1], b[1], rtol=1e-5)


def test_userknn_fold_in_with_binary_training_equals_neighbours():
    X = _random(50, 30, 0.3, seed=9)
    X.data[:] = 1.0
    data = _inter(X)
    for sim in ("cosine", "jaccard", "bm25", "tfidf", "asymmetric"):
        m = tb.UserKNN(similarity=sim, k=6, include_self=True).fit(data)  # a fold-in finds its training twin
        H = [[f"i{j}" for j in X[u].indices] for u in range(8)]
        indptr, indices = m._map_histories(H, "raise")
        Q = m._history_query(indptr, indices)
        N = m.neighbours_[:8]
        np.testing.assert_allclose(np.sort(Q.toarray(), axis=1), np.sort(N.toarray(), axis=1), rtol=1e-9, err_msg=sim)


# ---------------------------------------------------------------------------- implicit
def test_cosine_tfidf_bm25_equal_implicit():
    nn = pytest.importorskip("implicit.nearest_neighbours")
    rng = np.random.default_rng(10)
    X = sp.random(300, 120, density=0.05, format="csr", random_state=rng, dtype=np.float32)
    X.data = rng.integers(1, 4, len(X.data)).astype(np.float32)  # counts: ties on purpose
    data = _inter(X)
    users = np.arange(X.shape[0])
    for sim, ref in (("cosine", nn.CosineRecommender(K=10)), ("tfidf", nn.TFIDFRecommender(K=10)),
                     ("bm25", nn.BM25Recommender(K=10))):
        ref.fit(X, show_progress=False)
        m = tb.ItemKNN(similarity=sim, k=10).fit(data)
        R = ref.similarity.tocsr()
        R.sort_indices()
        np.testing.assert_array_equal(m.similarity_.indptr, R.indptr)
        np.testing.assert_array_equal(m.similarity_.indices, R.indices)
        np.testing.assert_array_equal(m.similarity_.data, R.data)  # bit for bit
        ri, rs = ref.recommend(users, X[users], N=6)
        ids, sc = m.recommend([f"u{u}" for u in users], k=5)
        got = np.vectorize(lambda s: int(s[1:]))(ids)
        np.testing.assert_allclose(sc, rs[:, :5].astype(np.float32), rtol=1e-6)
        # implicit orders equal scores by the higher index, tastebud by the lower: lists agree where no tie
        n_checked = 0
        for u in users:
            if len(set(rs[u])) == 6:
                np.testing.assert_array_equal(got[u], ri[u, :5])
                n_checked += 1
        assert n_checked > len(users) // 2


# ---------------------------------------------------------------------------- rating models
def _surprise_rule(R: np.ndarray, u: int, i: int, rule: str, user_based: bool, sim: np.ndarray, k: int, min_k: int,
                   mu: float, bu=None, bi=None) -> float:
    """Surprise's estimate() written out on dense arrays (0 = missing); NaN means impossible."""
    if not user_based:
        R = R.T
        u, i = i, u
        bu, bi = bi, bu
    raters = np.flatnonzero(R[:, i])
    sims = sim[u, raters]
    order = np.argsort(-sims, kind="stable")[:k]
    nb = raters[order]
    s = sims[order]
    pos = s > 0
    nb, s = nb[pos], s[pos]
    means = np.array([R[x][R[x] != 0].mean() if (R[x] != 0).any() else 0 for x in range(R.shape[0])])
    sig = np.array([R[x][R[x] != 0].std() if (R[x] != 0).any() else 0 for x in range(R.shape[0])])
    sig = np.where(sig == 0, R[R != 0].std(), sig)
    r = R[nb, i]
    if rule == "basic":
        return float((s * r).sum() / s.sum()) if len(s) >= max(min_k, 1) else np.nan
    if rule == "baseline":
        est = mu + bu[u] + bi[i]
        dev = r - (mu + bu[nb] + bi[i])
        return est + ((s * dev).sum() / s.sum() if len(s) >= max(min_k, 1) else 0.0)
    est = means[u]
    if len(s) < max(min_k, 1):
        return est
    if rule == "means":
        return est + (s * (r - means[nb])).sum() / s.sum()
    return est + (s * (r - means[nb]) / sig[nb]).sum() / s.sum() * sig[u]


def _corated_sim(R: np.ndarray, name: str, min_support=1, shrinkage=100.0, mu=0.0, bx=None, by=None) -> np.ndarray:
    n = R.shape[0]
    S = np.zeros((n, n))
    for a in range(n):
        for b in range(n):
            c = (R[a] != 0) & (R[b] != 0)
            nn = c.sum()
            if a == b:
                S[a, b] = 1.0
                continue
            if nn < (max(2, min_support) if name == "pearson_baseline" else min_support) or nn == 0:
                continue
            x, y = R[a, c], R[b, c]
            if name == "cosine":
                S[a, b] = (x * y).sum() / np.sqrt((x * x).sum() * (y * y).sum())
            elif name == "msd":
                S[a, b] = 1.0 / (((x - y) ** 2).mean() + 1.0)
            elif name == "pearson":
                xc, yc = x - x.mean(), y - y.mean()
                den = np.sqrt((xc * xc).sum() * (yc * yc).sum())
                S[a, b] = 0.0 if den < 1e-12 else (xc * yc).sum() / den
            else:
                cols = np.flatnonzero(c)
                xr = x - (mu + bx[a] + by[cols])
                yr = y - (mu + bx[b] + by[cols])
                S[a, b] = (xr * yr).sum() / np.sqrt((xr * xr).sum() * (yr * yr).sum()) * (nn - 1) / (nn - 1 + shrinkage)
    return S


@pytest.mark.parametrize("user_based", [True, False])
@pytest.mark.parametrize("name,rule,sim", [("KNNBasic", "basic", "msd"), ("KNNWithMeans", "means", "cosine"),
                                           ("KNNWithZScore", "zscore", "pearson"),
                                           ("KNNBaseline", "baseline", "pearson_baseline")])
def test_knn_rating_rules_match_a_direct_implementation(user_based, name, rule, sim):
    M = _random(25, 20, 0.35, seed=11, integer=True)
    R = M.toarray()
    model = getattr(tb, name)(k=4, min_k=2, similarity=sim, user_based=user_based, clip=False).fit(_inter(M))
    mu = float(R[R != 0].mean())
    bu, bi = model.user_bias_, model.item_bias_
    E = R if user_based else R.T
    bx, by = (bu, bi) if user_based else (bi, bu)
    S = _corated_sim(E, sim, mu=mu, bx=bx, by=by)
    np.testing.assert_allclose(model.similarity_.toarray(), np.where(S > 0, S, 0.0), rtol=1e-9, atol=1e-12)
    S = model.similarity_.toarray()  # the rule on the model's own values: exact ties (pearson of 2 points is ±1) stay ties
    users, items = np.meshgrid(np.arange(R.shape[0]), np.arange(R.shape[1]), indexing="ij")
    users, items = users.ravel(), items.ravel()
    pred = model.predict([f"u{u}" for u in users], [f"i{i}" for i in items])
    ref = np.array([_surprise_rule(R, u, i, rule, user_based, S, 4, 2, mu, bu, bi) for u, i in zip(users, items)])
    ref = np.where(np.isnan(ref), mu, ref)
    np.testing.assert_allclose(pred, ref, rtol=1e-9, atol=1e-9)


def test_slope_one_matches_its_definition():
    M = _random(25, 20, 0.35, seed=12, integer=True)
    R = M.toarray()
    model = tb.SlopeOne(clip=False).fit(_inter(M))
    users, items, ref = [], [], []
    for u in range(R.shape[0]):
        for i in range(R.shape[1]):
            rel = [j for j in np.flatnonzero(R[u]) if ((R[:, i] != 0) & (R[:, j] != 0)).any()]
            dev = [np.mean((R[:, i] - R[:, j])[(R[:, i] != 0) & (R[:, j] != 0)]) for j in rel]
            users.append(f"u{u}")
            items.append(f"i{i}")
            ref.append(R[u][R[u] != 0].mean() + (np.mean(dev) if dev else 0.0))
    np.testing.assert_allclose(model.predict(users, items), ref, rtol=1e-12)


def test_knn_rating_fallbacks_and_clipping():
    M = _random(20, 15, 0.3, seed=13, integer=True)
    data = _inter(M)
    mu = float(M.data.mean())
    m = tb.KNNBasic(min_k=1000).fit(data)  # never enough neighbours: the global mean
    assert m.predict("u1", "i1") == pytest.approx(mu)
    assert m.predict("nobody", "i1") == pytest.approx(mu)
    b = tb.KNNBaseline().fit(data)
    assert b.predict("nobody", "i2") == pytest.approx(b.global_mean_ + b.item_bias_[2])
    with pytest.raises(UnknownIdError):
        b.predict("nobody", "i2", unknown="raise")
    p = tb.KNNWithMeans().fit(data).predict([f"u{u}" for u in range(20)] * 15, [f"i{i}" for i in range(15) for _ in range(20)])
    assert p.min() >= 1.0 and p.max() <= 5.0


def test_surprise_equality_small_case():
    surprise = pytest.importorskip("surprise")
    rng = np.random.default_rng(14)
    rows = [(f"u{u}", f"i{i}", float(rng.integers(1, 6))) for u in range(30) for i in range(25) if rng.random() < 0.3]
    df = pd.DataFrame(rows, columns=["user", "item", "rating"])
    data = Interactions.from_frame(df, rating="rating")
    sdata = surprise.Dataset.load_from_df(df, surprise.Reader(rating_scale=(1, 5)))
    trainset = sdata.build_full_trainset()
    pairs = [(u, i) for u in df.user.unique() for i in df.item.unique()]
    cases = [("KNNBasic", {}, {}), ("KNNWithMeans", {"user_based": False, "similarity": "pearson"},
                                   {"sim_options": {"name": "pearson", "user_based": False}}),
             ("KNNWithZScore", {"similarity": "cosine"}, {"sim_options": {"name": "cosine"}}),
             ("KNNBaseline", {"similarity": "pearson_baseline"}, {"sim_options": {"name": "pearson_baseline"}}),
             ("KNNBaseline", {"similarity": "msd", "bsl_method": "sgd"},
              {"sim_options": {"name": "msd"}, "bsl_options": {"method": "sgd"}})]
    for name, ours, theirs in cases:
        ours = {"k": 100, **ours}  # every neighbour: no tie at the k-th place to order differently
        m = getattr(tb, name)(**ours).fit(data)
        algo = getattr(surprise, name)(k=100, verbose=False, **theirs).fit(trainset)
        ref = np.array([algo.predict(u, i).est for u, i in pairs])
        got = m.predict([u for u, _ in pairs], [i for _, i in pairs])
        # SGD baselines visit the ratings in a different order (user, then item index vs insertion order)
        tol = 0.05 if ours.get("bsl_method") == "sgd" else 1e-9
        np.testing.assert_allclose(got, ref, rtol=0, atol=tol, err_msg=name)
    algo = surprise.SlopeOne().fit(trainset)
    got = tb.SlopeOne().fit(data).predict([u for u, _ in pairs], [i for _, i in pairs])
    np.testing.assert_allclose(got, [algo.predict(u, i).est for u, i in pairs], rtol=1e-9, atol=1e-9)


# ---------------------------------------------------------------------------- SAR
@pytest.mark.parametrize("similarity_type", ["jaccard", "lift", "counts", "cosine", "inclusion_index"])
def test_sar_matches_its_formulas(similarity_type):
    rng = np.random.default_rng(15)
    M = _random(40, 25, 0.3, seed=15, integer=True)
    T = M.copy()
    T.data = 1e6 + rng.integers(0, 90, len(M.data)) * 86400.0
    m = tb.SAR(similarity_type=similarity_type, threshold=2, time_decay=True, half_life_days=10).fit(_inter(M, T))
    H = (M.toarray() != 0).astype(float)
    C = H.T @ H
    C[C < 2] = 0
    d = np.diag(C)
    with np.errstate(divide="ignore", invalid="ignore"):
        S = {"jaccard": C / (d[:, None] + d[None, :] - C), "lift": C / np.outer(d, d), "counts": C,
             "cosine": C / np.sqrt(np.outer(d, d)), "inclusion_index": C / np.minimum(d[:, None], d[None, :])}[similarity_type]
    S = np.nan_to_num(S)
    A = M.toarray() * np.minimum(1, 0.5 ** ((T.data.max() - T.toarray()) / (10 * 86400.0))) * (M.toarray() != 0)
    np.testing.assert_allclose(m.similarity_.toarray(), S, rtol=1e-12)
    scores = A @ S
    scores[H != 0] = -np.inf
    _, ref = topk_rows_reference(scores, 5)
    ids, sc = m.recommend([f"u{u}" for u in range(40)], k=5)
    np.testing.assert_allclose(sc, ref.astype(np.float32), rtol=1e-6)


# ---------------------------------------------------------------------------- persistence and protocol
@pytest.mark.parametrize("make", [lambda: tb.ItemKNN(similarity="bm25", k=5), lambda: tb.UserKNN(similarity="tfidf", k=5),
                                  lambda: tb.SAR(similarity_type="lift"), lambda: tb.KNNBaseline(k=5),
                                  lambda: tb.KNNWithMeans(user_based=False), lambda: tb.SlopeOne()])
def test_save_load_round_trip(tmp_path, make):
    M = _random(40, 30, 0.3, seed=16, integer=True)
    m = make().fit(_inter(M))
    path = m.save(tmp_path / "m.tb")
    m2 = tb.load(path)
    assert type(m2) is type(m) and m2.get_params() == m.get_params()
    users = [f"u{u}" for u in range(40)]
    a, b = m.recommend(users, k=5), m2.recommend(users, k=5)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    if hasattr(m, "predict"):
        np.testing.assert_array_equal(m.predict(users, ["i3"] * 40), m2.predict(users, ["i3"] * 40))
    else:
        h = ["i1", "i2", "i7"]
        np.testing.assert_array_equal(m.recommend_for_history(h, k=4)[0], m2.recommend_for_history(h, k=4)[0])


@pytest.mark.parametrize("make", [lambda: tb.ItemKNN(), lambda: tb.UserKNN(), lambda: tb.SAR(),
                                  lambda: tb.KNNBasic(user_based=False), lambda: tb.SlopeOne()])
def test_protocol_edges(make):
    M = _random(30, 20, 0.3, seed=17, integer=True)
    m = make().fit(_inter(M))
    with pytest.raises(UnknownIdError):
        m.recommend(["u1", "stranger"], k=3)
    ids, _ = m.recommend(["u1", "stranger"], k=3, unknown="popular")
    assert ids.shape == (2, 3)
    with pytest.raises(ValueError, match="exceeds"):
        m.recommend("u1", k=21)
    seen = {f"i{j}" for j in M[1].indices}
    assert not seen & set(m.recommend("u1", k=5)[0])
    if not isinstance(m, tb.SlopeOne):
        sim_ids, _ = m.similar_items("i3", k=5)
        assert "i3" not in set(sim_ids) and len(sim_ids) == 5
        assert "i4" not in set(m.similar_items("i3", k=5, filter_items=["i4"])[0])
        with pytest.raises(UnknownIdError):
            m.similar_items("nothing", k=3)


def test_recommend_for_history_edges():
    M = _random(30, 20, 0.3, seed=18)
    m = tb.ItemKNN(k=5).fit(_inter(M))
    with pytest.warns(UserWarning, match="unknown"):
        ids, _ = m.recommend_for_history(["i1", "zzz"], k=4)
    assert "i1" not in set(ids)
    with pytest.raises(UnknownIdError):
        m.recommend_for_history(["i1", "zzz"], k=4, unknown="raise")
    with pytest.warns(UserWarning, match="popularity"):
        ids, _ = m.recommend_for_history([], k=4)
    pop = np.argsort(-np.bincount(M.indices, minlength=20), kind="stable")[:4]
    assert list(ids) == [f"i{j}" for j in pop]
    batch, _ = m.recommend_for_history([["i1"], ["i2", "i3"]], k=3)
    assert batch.shape == (2, 3)


def test_bad_parameters_raise():
    data = _inter(_random(10, 8, 0.4, seed=19))
    for bad in (dict(similarity="euclid"), dict(k=0), dict(shrinkage=-1.0), dict(bm25_b=2.0)):
        with pytest.raises(ValueError):
            tb.ItemKNN(**bad).fit(data)
    with pytest.raises(ValueError, match="similarity_type"):
        tb.SAR(similarity_type="mutual").fit(data)
    with pytest.raises(tb.DataError, match="timestamps"):
        tb.SAR(time_decay=True).fit(data)
    with pytest.raises(ValueError, match="similarity"):
        tb.KNNBasic(similarity="jaccard").fit(data)


def test_itemknn_end_to_end_on_movielens_beats_popularity(ml100k_dir):
    ds = tb.datasets.load("movielens-100k")
    train, test = tb.split.holdout(ds.interactions, test_size=0.2, per_user=True, random_state=0)
    knn = tb.evaluate(tb.ItemKNN(similarity="bm25", k=50).fit(train), test, ["ndcg@10"])["ndcg@10"]
    pop = tb.evaluate(tb.Popularity().fit(train), test, ["ndcg@10"])["ndcg@10"]
    assert knn > pop + 0.1


def test_symbolic_row_sizing_gives_the_same_matrices(monkeypatch):
    from tastebud.models.neighbours import _similarity

    M = _random(40, 30, 0.15, seed=20, integer=True)
    data = _inter(M)
    dense = [tb.SAR(similarity_type="lift").fit(data).similarity_, tb.KNNBasic(user_based=False).fit(data).similarity_,
             tb.SlopeOne().fit(data).deviations_]
    monkeypatch.setattr(_similarity, "DENSE_BOUND_PAIRS", 0)  # force the symbolic pass
    sym = [tb.SAR(similarity_type="lift").fit(data).similarity_, tb.KNNBasic(user_based=False).fit(data).similarity_,
           tb.SlopeOne().fit(data).deviations_]
    for a, b in zip(dense, sym):
        np.testing.assert_array_equal(a.indptr, b.indptr)
        np.testing.assert_array_equal(a.indices, b.indices)
        np.testing.assert_array_equal(a.data, b.data)


def test_kth_largest_selection():
    from tastebud.kernels.knn import _kth_largest

    rng = np.random.default_rng(21)
    for t in range(500):
        m = int(rng.integers(1, 40))
        k = int(rng.integers(1, m + 1))
        a = rng.integers(0, 4, m).astype(float) if t % 2 else rng.random(m)  # with and without ties
        assert _kth_largest(a.copy(), m, k) == np.sort(a)[::-1][k - 1]


def test_progress_runs_the_row_blocks_in_chunks_with_the_same_results():
    """verbose=True runs the similarity kernels block range by block range under a progress bar:
    every block exactly once, in order, and bit-for-bit the matrices of the single call."""
    from tastebud.kernels.knn import n_blocks
    from tastebud.models.neighbours._similarity import run_blocks

    for n in (0, 5, 300, 1000):
        calls: list[tuple[int, int]] = []
        run_blocks(lambda lo, hi: calls.append((lo, hi)), n, True, "test")
        assert calls[0][0] == 0 and calls[-1][1] == n_blocks(n) and len(calls) > (n >= 16)
        assert all(a[1] == b[0] for a, b in zip(calls, calls[1:]))
    M = _random(300, 60, 0.1, seed=22, integer=True)
    data = _inter(M)
    for make in (lambda v: tb.ItemKNN(similarity="bm25", k=7, verbose=v), lambda v: tb.UserKNN(k=9, verbose=v),
                 lambda v: tb.SAR(verbose=v), lambda v: tb.KNNWithMeans(verbose=v), lambda v: tb.SlopeOne(verbose=v)):
        a, b = make(False).fit(data), make(True).fit(data)
        name = "deviations_" if isinstance(a, tb.SlopeOne) else "neighbours_" if isinstance(a, tb.UserKNN) else "similarity_"
        Sa, Sb = getattr(a, name), getattr(b, name)
        for part in ("indptr", "indices", "data"):
            np.testing.assert_array_equal(getattr(Sa, part), getattr(Sb, part))


def test_saved_files_of_edge_cases_load(tmp_path):
    """What a model saves passes its own load checks: KNNWithZScore on ratings without spread (σ
    was 0 and is now 1; the load check requires σ > 0), UserKNN's fold-in statistics per
    similarity, SAR's decay reference time."""
    tmp = tmp_path
    M = _random(20, 12, 0.4, seed=23)
    M.data[:] = 4.0
    z = tb.KNNWithZScore().fit(_inter(M))
    z2 = tb.load(z.save(tmp / "z.tb"))
    np.testing.assert_array_equal(z.predict(["u1", "u2"], ["i3", "i4"]), z2.predict(["u1", "u2"], ["i3", "i4"]))
    M = _random(30, 20, 0.3, seed=24, integer=True)
    h = ["i1", "i5", "i6"]
    for sim in ("bm25", "adjusted_cosine", "tfidf", "jaccard"):
        u = tb.UserKNN(similarity=sim, k=5).fit(_inter(M))
        u2 = tb.load(u.save(tmp / f"{sim}.tb"))
        assert sorted(u2._stats) == sorted(u._stats)
        np.testing.assert_array_equal(u.recommend_for_history(h, k=5)[1], u2.recommend_for_history(h, k=5)[1])
    ts = M.copy()
    ts.data = np.arange(len(ts.data), dtype=np.float64) * 86400.0
    s = tb.SAR(time_decay=True).fit(_inter(M, ts))
    assert tb.load(s.save(tmp / "sar.tb")).time_now_ == s.time_now_ == ts.data.max()
