"""EASE: closed form vs independent per-column constrained ridge regressions, protocol, ML-100K."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import tastebud as tb
from tastebud.data.interactions import Interactions
from tastebud.exceptions import DataError, UnknownIdError
from tastebud.models.neighbours.ease import EASE


def _X(seed=0, nu=60, ni=15, density=0.3):
    R = sp.random(nu, ni, density=density, random_state=seed, format="csr")
    R.data = np.ceil(R.data * 5)
    return R


def test_equals_columnwise_ridge_with_zero_diagonal():
    R = _X()
    lam = 3.0
    m = EASE(reg=lam).fit(R)
    X = (R.toarray() > 0).astype(float)
    ni = X.shape[1]
    B = np.zeros((ni, ni))
    for j in range(ni):
        o = [c for c in range(ni) if c != j]
        A = X[:, o]
        B[o, j] = np.linalg.solve(A.T @ A + lam * np.eye(ni - 1), A.T @ X[:, j])
    np.testing.assert_allclose(m.B_, B, rtol=1e-4, atol=1e-6)
    assert np.all(np.diag(m.B_) == 0)
    # and the paper's closed form
    P = np.linalg.inv(X.T @ X + lam * np.eye(ni))
    np.testing.assert_allclose(m.B_, np.eye(ni) - P / np.diag(P)[None, :], rtol=1e-4, atol=1e-6)


def test_weighted_values_when_not_binarized():
    R = _X(seed=1)
    m = EASE(reg=10.0, binarize=False).fit(R)
    X = R.toarray()
    P = np.linalg.inv(X.T @ X + 10.0 * np.eye(X.shape[1]))
    np.testing.assert_allclose(m.B_, np.eye(X.shape[1]) - P / np.diag(P)[None, :], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(m._scores(np.arange(5)), X[:5] @ m.B_.astype(float), rtol=1e-4, atol=1e-5)


def test_recommend_filters_seen_and_history_matches(tmp_path):
    R = _X(seed=2, ni=25)
    inter = Interactions.from_matrix(R, items=[f"i{j}" for j in range(25)])
    m = EASE(reg=5.0).fit(inter)
    ids, sc = m.recommend(list(range(60)), k=8)
    X = (R.toarray() > 0).astype(float)
    S = X @ m.B_.astype(float)
    for u in range(60):
        seen = {f"i{j}" for j in R.indices[R.indptr[u]:R.indptr[u + 1]]}
        assert not seen & set(ids[u])
        s = S[u].copy()
        s[R.indices[R.indptr[u]:R.indptr[u + 1]]] = -np.inf
        np.testing.assert_allclose(sc[u], np.sort(s)[::-1][:8], rtol=1e-4, atol=1e-5)
        h_ids, h_sc = m.recommend_for_history(sorted(seen), k=8)
        assert list(h_ids) == list(ids[u])
    # similar items read off B (row i: the score of j given history {i})
    sim, ssc = m.similar_items("i3", k=4)
    row = m.B_[3].astype(float).copy()
    row[3] = -np.inf
    assert list(sim) == [f"i{j}" for j in np.argsort(-row, kind="stable")[:4]]
    m2 = tb.EASE.load(m.save(tmp_path / "ease.tb"))
    ids2, sc2 = m2.recommend(list(range(60)), k=8)
    assert (ids2 == ids).all() and np.array_equal(sc2, sc)


def test_bad_input_errors():
    with pytest.raises(DataError):
        EASE().fit(sp.csr_matrix((3, 3)))
    with pytest.raises(ValueError, match="reg"):
        EASE(reg=0.0).fit(_X())
    m = EASE(reg=1.0).fit(_X())
    with pytest.raises(ValueError, match="k="):
        m.recommend([0], k=16)
    with pytest.raises(UnknownIdError):
        m.recommend([999])
    with pytest.raises(UnknownIdError):
        m.recommend_for_history([999])


def test_ml100k_end_to_end_beats_popularity():
    from test_implicit_als import _ml100k, holdout_hit_rate

    inter = _ml100k()
    p_pop, _ = holdout_hit_rate(inter, lambda: tb.Popularity())
    p_ease, _ = holdout_hit_rate(inter, lambda: EASE(reg=500.0))
    assert p_ease > 1.5 * p_pop, (p_ease, p_pop)
