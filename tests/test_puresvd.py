"""PureSVD: equals numpy's dense SVD truncated, Cremonesi's scoring, protocol, ML-100K."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import tastebud as tb
from tastebud.exceptions import DataError, UnknownIdError
from tastebud.models.mf.puresvd import PureSVD, randomized_svd


def _lowrank(seed=0, nu=60, ni=40, rank=5, density=0.5):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(nu, rank)) @ rng.normal(size=(rank, ni)) * 2
    mask = rng.random((nu, ni)) < density
    return sp.csr_matrix(np.where(mask, np.round(np.abs(A)) + 1, 0.0))


@pytest.mark.parametrize("algorithm", ["randomized", "arpack"])
def test_equals_dense_truncated_svd(algorithm):
    R = _lowrank()
    k = 5
    # enough power iterations make the randomised range finder exact to float precision
    m = PureSVD(factors=k, algorithm=algorithm, n_iter=30, random_state=0).fit(R)
    U, s, Vt = np.linalg.svd(R.toarray(), full_matrices=False)
    np.testing.assert_allclose(m.singular_values_, s[:k], rtol=1e-6)
    dense = (U[:, :k] * s[:k]) @ Vt[:k]
    np.testing.assert_allclose(m.user_factors_ @ m.item_factors_.T, dense, rtol=1e-4, atol=1e-4)
    # item factors are orthonormal right singular vectors (up to sign)
    np.testing.assert_allclose(m.item_factors_.T @ m.item_factors_, np.eye(k), atol=1e-5)
    np.testing.assert_allclose(np.abs(m.item_factors_), np.abs(Vt[:k].T), atol=1e-4)
    # Cremonesi's scoring rule r_u V Vᵀ gives the same scores
    V = m.item_factors_.astype(float)
    np.testing.assert_allclose(m._scores(np.arange(60)), R.toarray() @ V @ V.T, rtol=1e-4, atol=1e-4)


def test_randomized_svd_helper_on_exactly_low_rank():
    rng = np.random.default_rng(1)
    A = rng.normal(size=(100, 4)) @ rng.normal(size=(4, 50))
    U, s, Vt = randomized_svd(sp.csr_matrix(A), 4, rng=np.random.default_rng(0))
    np.testing.assert_allclose((U * s) @ Vt, A, atol=1e-9)


def test_binarize_recommend_save_load(tmp_path):
    R = _lowrank(seed=2)
    m = PureSVD(factors=4, binarize=True, n_iter=30, random_state=0).fit(R)
    B = (R.toarray() > 0).astype(float)
    U, s, Vt = np.linalg.svd(B, full_matrices=False)
    np.testing.assert_allclose(m.singular_values_, s[:4], rtol=1e-6)
    ids, sc = m.recommend(list(range(60)), k=5)
    for u in range(60):
        assert not set(R.indices[R.indptr[u]:R.indptr[u + 1]]) & set(ids[u])
    m2 = PureSVD.load(m.save(tmp_path / "svd.tb"))
    ids2, sc2 = m2.recommend(list(range(60)), k=5)
    assert (ids == ids2).all() and np.array_equal(sc, sc2)
    assert list(m.similar_items(3, k=5)[0]) == list(m2.similar_items(3, k=5)[0])
    assert 3 not in m.similar_items(3, k=5)[0]


def test_deterministic_given_seed():
    R = _lowrank(seed=3)
    a = PureSVD(factors=3, n_iter=1, random_state=5).fit(R)
    b = PureSVD(factors=3, n_iter=1, random_state=5).fit(R)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)


def test_bad_input_errors():
    with pytest.raises(DataError):
        PureSVD().fit(sp.csr_matrix((5, 5)))
    R = _lowrank()
    with pytest.raises(ValueError, match="factors"):
        PureSVD(factors=40).fit(R)
    with pytest.raises(ValueError, match="factors"):
        PureSVD(factors=0).fit(R)
    with pytest.raises(ValueError, match="algorithm"):
        PureSVD(factors=2, algorithm="lanczos").fit(R)
    m = PureSVD(factors=2, random_state=0).fit(R)
    with pytest.raises(ValueError, match="k="):
        m.recommend([0], k=41)
    with pytest.raises(UnknownIdError):
        m.recommend([60])


def test_ml100k_end_to_end_beats_popularity():
    from test_implicit_als import _ml100k, holdout_hit_rate

    inter = _ml100k()
    p_pop, _ = holdout_hit_rate(inter, lambda: tb.Popularity())
    p_svd, _ = holdout_hit_rate(inter, lambda: PureSVD(factors=20, random_state=0))
    assert p_svd > 1.5 * p_pop, (p_svd, p_pop)
