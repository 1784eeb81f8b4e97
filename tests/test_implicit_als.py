"""ImplicitALS: closed-form half-steps, CG vs Cholesky, fold-in, protocol, ML-100K end to end."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

import tastebud as tb
from tastebud.data.interactions import Interactions
from tastebud.exceptions import DataError, NotFittedError, UnknownIdError
from tastebud.kernels import als_implicit as K
from tastebud.models.mf.implicit_als import ImplicitALS, _confidence_matrix


def _tiny(seed=1, nu=30, ni=20, density=0.3):
    R = sp.random(nu, ni, density=density, random_state=seed, format="csr")
    R.data = np.ceil(R.data * 5)
    return R


def _dense_solution(R, Y, alpha, reg):
    """Row-by-row weighted least squares over ALL items: argmin_x Σᵢ cᵢ(pᵢ − x·yᵢ)² + λ‖x‖²."""
    D = R.toarray()
    P = (D > 0).astype(float)
    C = 1.0 + alpha * D
    k = Y.shape[1]
    return np.array([np.linalg.solve(Y.T @ (C[u][:, None] * Y) + reg * np.eye(k), Y.T @ (C[u] * P[u]))
                     for u in range(D.shape[0])])


def test_cholesky_half_step_is_closed_form():
    R = _tiny()
    rng = np.random.default_rng(0)
    Y = rng.random((20, 4))
    X = rng.random((30, 4))
    C = _confidence_matrix(R, 2.0, np.float64)
    bad = K.solve_cholesky(C.indptr, C.indices, C.data, X, Y, K.gramian(Y, 0.1))
    assert bad == 0
    np.testing.assert_allclose(X, _dense_solution(R, Y, 2.0, 0.1), rtol=1e-10, atol=1e-12)


def test_fit_one_iteration_item_half_is_closed_form():
    R = _tiny(seed=3)
    m = ImplicitALS(factors=5, reg=0.3, alpha=3.0, epochs=1, solver="cholesky",
                    dtype="float64", random_state=0).fit(R)
    # after the item half-step, item factors are the exact solution given the user factors
    expected = _dense_solution(R.T.tocsr(), m.user_factors_, 3.0, 0.3)
    np.testing.assert_allclose(m.item_factors_, expected, rtol=1e-9, atol=1e-12)


def test_cg_matches_cholesky():
    R = _tiny(seed=5, nu=50, ni=40)
    rng = np.random.default_rng(1)
    k = 6
    Y = rng.random((40, k))
    C = _confidence_matrix(R, 5.0, np.float64)
    G = K.gramian(Y, 0.05)
    Xc = np.zeros((50, k))
    K.solve_cholesky(C.indptr, C.indices, C.data, Xc, Y, G)
    # CG reaches the exact solution in k steps (exact arithmetic) from any start
    Xg = rng.random((50, k))
    K.solve_cg(C.indptr, C.indices, C.data, Xg, Y, G, k + 2)
    np.testing.assert_allclose(Xg, Xc, rtol=1e-6, atol=1e-8)
    # and the float32 fast path is close too
    Xf = np.zeros((50, k), dtype=np.float32)
    K.solve_cg(C.indptr, C.indices, C.data.astype(np.float32), Xf, Y.astype(np.float32), G.astype(np.float32), 3 * k)
    np.testing.assert_allclose(Xf, Xc, rtol=2e-3, atol=2e-3)


def test_cg_fit_close_to_cholesky_fit():
    R = _tiny(seed=7, nu=80, ni=60, density=0.15)
    kw = dict(factors=8, reg=0.1, alpha=2.0, epochs=10, random_state=0, dtype="float64")
    a = ImplicitALS(solver="cholesky", **kw).fit(R)
    # enough CG steps per half-step (2k, finite precision) → the same trajectory as the exact solver
    b = ImplicitALS(solver="cg", cg_steps=16, **kw).fit(R)
    Sa = a.user_factors_ @ a.item_factors_.T
    Sb = b.user_factors_ @ b.item_factors_.T
    assert np.abs(Sa - Sb).max() < 1e-7
    # the default 3 warm-started steps reach nearly the same objective
    c = ImplicitALS(solver="cg", cg_steps=3, **kw).fit(R)
    assert abs(a.loss(R) - c.loss(R)) / a.loss(R) < 0.01


def test_loss_decreases_monotonically_with_exact_solver():
    R = _tiny(seed=8, nu=60, ni=40)
    losses = [ImplicitALS(factors=4, reg=0.1, alpha=2.0, epochs=it, solver="cholesky",
                          dtype="float64", random_state=0).fit(R).loss(R) for it in (1, 2, 4, 8)]
    assert all(b <= a + 1e-9 for a, b in zip(losses, losses[1:])), losses
    # loss() agrees with the brute-force objective over all pairs
    m = ImplicitALS(factors=4, reg=0.1, alpha=2.0, epochs=2, solver="cholesky",
                    dtype="float64", random_state=0).fit(R)
    D = R.toarray()
    S = m.user_factors_ @ m.item_factors_.T
    brute = ((1 + 2.0 * D) * ((D > 0) - S) ** 2).sum() + 0.1 * ((m.user_factors_ ** 2).sum() + (m.item_factors_ ** 2).sum())
    assert m.loss(R) == pytest.approx(brute, rel=1e-10)


def test_fold_in_equals_refit_half_step():
    R = _tiny(seed=9, nu=40, ni=30)
    inter = Interactions.from_matrix(R, users=[f"u{i}" for i in range(40)], items=[f"i{j}" for j in range(30)])
    m = ImplicitALS(factors=5, reg=0.2, alpha=1.5, epochs=5, solver="cholesky",
                    dtype="float64", random_state=0).fit(inter)
    X = m.user_factors_.copy()
    m._half_step(_confidence_matrix(R, 1.5, np.float64), X, m.item_factors_)
    for u in range(40):
        s, e = R.indptr[u], R.indptr[u + 1]
        if s == e:
            continue
        items = [f"i{j}" for j in R.indices[s:e]]
        np.testing.assert_allclose(m.fold_in(items, weights=R.data[s:e]), X[u], rtol=1e-9, atol=1e-12)
    # the last fit half-step for items came after the users', so the stored users are one step behind:
    # one more user half-step with the final items is exactly what fold-in computes
    u = int(np.argmax(np.diff(R.indptr)))
    s, e = R.indptr[u], R.indptr[u + 1]
    ids, sc = m.recommend_for_history([f"i{j}" for j in R.indices[s:e]], k=5, weights=R.data[s:e])
    scores = m.item_factors_ @ X[u]
    scores[R.indices[s:e]] = -np.inf
    assert list(ids) == [f"i{j}" for j in np.argsort(-scores, kind="stable")[:5]]
    np.testing.assert_allclose(sc, np.sort(scores)[::-1][:5], rtol=1e-5)
    assert not set(ids) & {f"i{j}" for j in R.indices[s:e]}


def test_fold_in_edge_cases():
    R = _tiny(seed=10)
    m = ImplicitALS(factors=3, epochs=2, random_state=0).fit(R)
    with pytest.raises(UnknownIdError):
        m.fold_in([0, 999])
    x_ign = m.fold_in([0, 999], unknown="ignore")
    np.testing.assert_allclose(x_ign, m.fold_in([0]), rtol=1e-6)
    assert np.all(m.fold_in([]) == 0)
    # duplicates add their weights
    np.testing.assert_allclose(m.fold_in([1, 1], weights=[1.0, 2.0]), m.fold_in([1], weights=[3.0]), rtol=1e-6)
    with pytest.raises(ValueError, match="weights"):
        m.fold_in([1, 2], weights=[1.0])
    with pytest.raises(DataError):
        m.fold_in([1], weights=[np.nan])
    ids, _ = m.recommend_for_history([1, 2], k=3, filter_seen=False)
    assert len(ids) == 3


def test_recommend_never_returns_seen_and_matches_brute_force():
    R = _tiny(seed=11, nu=50, ni=25, density=0.4)
    m = ImplicitALS(factors=4, epochs=5, random_state=0).fit(R)
    ids, sc = m.recommend(list(range(50)), k=10)
    S = m.user_factors_ @ m.item_factors_.T
    for u in range(50):
        seen = set(R.indices[R.indptr[u]:R.indptr[u + 1]])
        got = [i for i in ids[u] if i is not None]
        assert not seen & set(got)
        cand = [i for i in np.argsort(-S[u], kind="stable") if i not in seen]
        assert got == cand[:len(got)]


def test_save_load_identical(tmp_path):
    R = _tiny(seed=12)
    inter = Interactions.from_matrix(R, users=[f"u{i}" for i in range(30)], items=[f"i{j}" for j in range(20)])
    m = ImplicitALS(factors=4, epochs=3, random_state=0).fit(inter)
    p = m.save(tmp_path / "als.tb")
    m2 = tb.load(p) if hasattr(tb, "load") else ImplicitALS.load(p)
    assert isinstance(m2, ImplicitALS) and m2.get_params() == m.get_params()
    a = m.recommend(["u0", "u5"], k=5)
    b = m2.recommend(["u0", "u5"], k=5)
    assert (a[0] == b[0]).all() and np.array_equal(a[1], b[1])
    np.testing.assert_array_equal(m.fold_in(["i1", "i2"]), m2.fold_in(["i1", "i2"]))
    assert list(m.similar_items("i3", k=4)[0]) == list(m2.similar_items("i3", k=4)[0])


def test_deterministic_and_thread_count_independent():
    R = _tiny(seed=13, nu=200, ni=80, density=0.1)
    a = ImplicitALS(factors=8, epochs=4, random_state=42, num_threads=1).fit(R)
    b = ImplicitALS(factors=8, epochs=4, random_state=42, num_threads=2).fit(R)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)


def test_similar_items_is_cosine_excluding_itself():
    R = _tiny(seed=14)
    m = ImplicitALS(factors=4, epochs=3, random_state=0).fit(R)
    ids, sc = m.similar_items(2, k=5)
    V = m.item_factors_.astype(np.float64)
    cos = V @ V[2] / (np.linalg.norm(V, axis=1) * np.linalg.norm(V[2]))
    cos[2] = -np.inf
    assert 2 not in ids
    np.testing.assert_allclose(sc, np.sort(cos)[::-1][:5], rtol=1e-5)


def test_bad_input_errors():
    with pytest.raises(DataError):
        ImplicitALS().fit(sp.csr_matrix((3, 4)))
    bad = sp.csr_matrix(np.array([[1.0, -2.0], [0.0, 1.0]]))
    with pytest.raises(DataError, match="non-negative"):
        ImplicitALS(factors=2).fit(bad)
    nan = sp.csr_matrix(np.array([[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(DataError):
        ImplicitALS(factors=2).fit(nan)
    R = _tiny(seed=15)
    for kw, name in ((dict(factors=0), "factors"), (dict(reg=-1.0), "reg"),
                     (dict(alpha=np.nan), "alpha"), (dict(solver="lu"), "solver"), (dict(cg_steps=0), "cg_steps"),
                     (dict(dtype="int8"), "dtype")):
        with pytest.raises(ValueError, match=name):
            ImplicitALS(**kw).fit(R)
    with pytest.raises(NotFittedError):
        ImplicitALS().recommend([0])
    m = ImplicitALS(factors=3, epochs=1, random_state=0).fit(R)
    with pytest.raises(ValueError, match="k="):
        m.recommend([0], k=21)
    with pytest.raises(UnknownIdError):
        m.recommend([1000])
    with pytest.raises(ValueError, match="k="):
        m.recommend_for_history([0], k=21)


def _ml100k():
    root = os.environ.get("TASTEBUD_DATA")
    if not root or not (Path(root) / "ml-100k" / "u.data").exists():
        pytest.skip("TASTEBUD_DATA not set or ml-100k missing")
    from tastebud.data.readers import read_ml100k_ratings

    return Interactions.from_frame(read_ml100k_ratings(Path(root) / "ml-100k" / "u.data"), rating="rating")


def holdout_hit_rate(inter, model_factory, seed=0):
    """Per-user 20% holdout; fraction of top-10 recommendations that are held-out items."""
    rng = np.random.default_rng(seed)
    m = inter.matrix
    test = np.zeros(m.nnz, dtype=bool)
    for u in range(m.shape[0]):
        s, e = m.indptr[u], m.indptr[u + 1]
        test[s + rng.choice(e - s, int(round(0.2 * (e - s))), replace=False)] = True
    train, tst = inter.select(~test), inter.select(test)
    model = model_factory().fit(train)
    ids, _ = model.recommend(train.users.ids, k=10)
    T = tst.matrix
    hits = [np.isin(model.items_.index(ids[u]), T.indices[T.indptr[u]:T.indptr[u + 1]]).mean() for u in range(len(ids))]
    return float(np.mean(hits)), model


def test_ml100k_end_to_end_beats_popularity():
    inter = _ml100k()
    p_pop, _ = holdout_hit_rate(inter, lambda: tb.Popularity())
    p_als, model = holdout_hit_rate(inter, lambda: ImplicitALS(factors=32, epochs=8, alpha=1.0, random_state=0))
    assert p_als > 1.3 * p_pop, (p_als, p_pop)
    # Star Wars (50) → its sequels are the nearest items
    ids, _ = model.similar_items(50, k=10)
    assert {172, 181} & set(ids.tolist())
