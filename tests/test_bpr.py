"""BPR: gradient check of the SGD step, seeded streams, planted pattern, protocol, ML-100K end to end."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import tastebud as tb
from tastebud.data.interactions import Interactions
from tastebud.exceptions import DataError, UnknownIdError
from tastebud.kernels import bpr as K
from tastebud.models.mf.bpr import BPR


def _loss(P, Q, b, u, i, j, reg):
    x = P[u] @ (Q[i] - Q[j]) + b[i] - b[j]
    return np.log1p(np.exp(-x)) + 0.5 * reg * (P[u] @ P[u] + Q[i] @ Q[i] + Q[j] @ Q[j] + b[i] ** 2 + b[j] ** 2)


def test_sgd_step_is_minus_lr_times_gradient():
    rng = np.random.default_rng(0)
    P, Q, b = rng.normal(size=(3, 5)), rng.normal(size=(6, 5)), rng.normal(size=6)
    u, i, j, reg = 1, 2, 4, 0.07
    # numerical gradient of the per-sample loss by central differences
    params = {"P": P, "Q": Q, "b": b}
    num = {name: np.zeros_like(a) for name, a in params.items()}
    h = 1e-6
    for name, a in params.items():
        for idx in np.ndindex(a.shape):
            old = a[idx]
            a[idx] = old + h
            lp = _loss(P, Q, b, u, i, j, reg)
            a[idx] = old - h
            lm = _loss(P, Q, b, u, i, j, reg)
            a[idx] = old
            num[name][idx] = (lp - lm) / (2 * h)
    lr = 1e-3
    P2, Q2, b2 = P.copy(), Q.copy(), b.copy()
    x = K.bpr_update(u, i, j, P2, Q2, b2, lr, reg)
    assert x == pytest.approx(P[u] @ (Q[i] - Q[j]) + b[i] - b[j])
    np.testing.assert_allclose((P2 - P) / -lr, num["P"], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose((Q2 - Q) / -lr, num["Q"], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose((b2 - b) / -lr, num["b"], rtol=1e-6, atol=1e-8)


def test_random_streams_are_seeded_per_block():
    s1 = K.stream_seed(np.uint64(7), 3, 5)
    assert s1 == K.stream_seed(np.uint64(7), 3, 5)
    assert len({int(K.stream_seed(np.uint64(7), e, blk)) for e in range(4) for blk in range(50)}) == 200
    # _randint is uniform-ish over [0, n)
    draws = K.uniform_draws(np.uint64(1), 0, 0, 10, 20000)
    counts = np.bincount(draws, minlength=10)
    assert counts.min() > 1800 and counts.max() < 2200 and draws.max() < 10 and draws.min() >= 0
    np.testing.assert_array_equal(draws, K.uniform_draws(np.uint64(1), 0, 0, 10, 20000))


def test_single_thread_is_reproducible_and_seed_matters():
    R = sp.random(60, 40, density=0.2, random_state=1, format="csr")
    a = BPR(factors=6, epochs=5, random_state=3, num_threads=1).fit(R)
    b = BPR(factors=6, epochs=5, random_state=3, num_threads=1).fit(R)
    c = BPR(factors=6, epochs=5, random_state=4, num_threads=1).fit(R)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    np.testing.assert_array_equal(a.item_bias_, b.item_bias_)
    assert not np.array_equal(a.user_factors_, c.user_factors_)
    # several threads (Hogwild): same samples, only update interleaving differs
    d = BPR(factors=6, epochs=5, random_state=3, num_threads=2).fit(R)
    np.testing.assert_allclose(a.user_factors_, d.user_factors_, atol=0.05)


def _planted(n_groups=4, users_per=25, items_per=10, p=0.5, seed=0):
    """Users of group g interact only with items of group g."""
    rng = np.random.default_rng(seed)
    nu, ni = n_groups * users_per, n_groups * items_per
    D = np.zeros((nu, ni))
    for u in range(nu):
        g = u // users_per
        D[u, g * items_per:(g + 1) * items_per] = rng.random(items_per) < p
    return sp.csr_matrix(D), users_per, items_per


def test_planted_groups_recovered():
    R, up, ip = _planted()
    m = BPR(factors=8, epochs=60, lr=0.05, random_state=0, num_threads=1).fit(R)
    ids, _ = m.recommend(list(range(R.shape[0])), k=3)
    hits = np.mean([(ids[u] // ip == u // up).all() for u in range(R.shape[0])])
    assert hits > 0.95
    assert m.train_accuracy_ > 0.9
    # similar items stay inside the group
    sim, _ = m.similar_items(0, k=5)
    assert (np.asarray(sim) // ip == 0).mean() >= 0.8


def test_recommend_never_returns_seen_and_save_load(tmp_path):
    R, _, _ = _planted(seed=1)
    inter = Interactions.from_matrix(R, users=[f"u{i}" for i in range(R.shape[0])], items=[f"i{j}" for j in range(R.shape[1])])
    m = BPR(factors=4, epochs=5, random_state=0).fit(inter)
    ids, sc = m.recommend(list(inter.users.ids), k=10)
    for u in range(R.shape[0]):
        seen = {f"i{j}" for j in R.indices[R.indptr[u]:R.indptr[u + 1]]}
        assert not seen & set(ids[u])
    assert np.all(np.diff(sc, axis=1) <= 0)
    m2 = BPR.load(m.save(tmp_path / "bpr.tb"))
    ids2, sc2 = m2.recommend(list(inter.users.ids), k=10)
    assert (ids == ids2).all() and np.array_equal(sc, sc2)
    assert m2.get_params() == m.get_params()


def test_bad_input_errors():
    with pytest.raises(DataError):
        BPR().fit(sp.csr_matrix((4, 5)))
    with pytest.raises(DataError, match="2 items"):
        BPR().fit(sp.csr_matrix(np.ones((3, 1))))
    R, _, _ = _planted()
    for kw, name in ((dict(factors=-1), "factors"), (dict(lr=0.0), "lr"),
                     (dict(reg=-1.0), "reg"), (dict(epochs=1.5), "epochs")):
        with pytest.raises(ValueError, match=name):
            BPR(**kw).fit(R)
    m = BPR(factors=2, epochs=1, random_state=0).fit(R)
    with pytest.raises(UnknownIdError):
        m.recommend([10_000])
    with pytest.raises(ValueError, match="k="):
        m.recommend([0], k=R.shape[1] + 1)
    with pytest.raises(FloatingPointError):
        BPR(factors=4, epochs=3, lr=1e30, random_state=0).fit(R)


def test_ml100k_end_to_end_beats_popularity():
    from test_implicit_als import _ml100k, holdout_hit_rate

    inter = _ml100k()
    p_pop, _ = holdout_hit_rate(inter, lambda: tb.Popularity())
    p_bpr, _ = holdout_hit_rate(inter, lambda: BPR(factors=32, epochs=25, lr=0.05, random_state=0))
    assert p_bpr > 1.2 * p_pop, (p_bpr, p_pop)
