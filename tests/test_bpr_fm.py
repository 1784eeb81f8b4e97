"""BPR-trained factorization machines: the pairwise gradient against finite differences, learning
a planted ranking, reproducibility, and the protocol (recommend, similar items, save/load)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from tastebud.data.interactions import Interactions
from tastebud.exceptions import DataError
from tastebud.kernels import bpr_fm as K
from tastebud.models.base import Model
from tastebud.models.fm.bpr_fm import BPRFactorizationMachine


def _fm(x, w, V):
    """ŷ without w₀ by the definition (O(p²))."""
    s = x @ w
    for a in range(len(x)):
        for b in range(a + 1, len(x)):
            s += V[a] @ V[b] * x[a] * x[b]
    return s


def test_pair_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    p, k = 12, 3
    w, V = rng.normal(size=p), rng.normal(scale=0.5, size=(p, k))
    # context columns 0..4, candidate columns 5..11; column 9 (a shared side feature) is in i and j
    c_ind, c_dat = np.array([0, 2, 4]), np.array([1.0, 0.5, -0.7])
    i_ind, i_dat = np.array([5, 9]), np.array([1.0, 0.3])
    j_ind, j_dat = np.array([7, 9, 11]), np.array([1.0, 0.6, 0.2])

    def dense(ind, dat):
        x = np.zeros(p)
        x[ind] = dat
        return x

    xc, xi, xj = dense(c_ind, c_dat), dense(i_ind, i_dat), dense(j_ind, j_dat)

    def loss(w_, V_):
        d = _fm(xc + xi, w_, V_) - _fm(xc + xj, w_, V_)
        return np.log1p(np.exp(-d))

    qc, qi, qj = np.zeros(k), np.zeros(k), np.zeros(k)
    gwi, gwj, gVi, gVj, gVc = np.zeros(2), np.zeros(3), np.zeros((2, k)), np.zeros((3, k)), np.zeros((3, k))
    x = K.pair_gradient(c_ind, c_dat, i_ind, i_dat, j_ind, j_dat, w, V, qc, qi, qj, gwi, gVi, gwj, gVj, gVc)
    assert x == pytest.approx(_fm(xc + xi, w, V) - _fm(xc + xj, w, V), rel=1e-12)
    gw, gV = np.zeros(p), np.zeros((p, k))  # the total gradient: sum over positions
    np.add.at(gw, i_ind, gwi)
    np.add.at(gw, j_ind, gwj)
    np.add.at(gV, i_ind, gVi)
    np.add.at(gV, j_ind, gVj)
    np.add.at(gV, c_ind, gVc)
    h = 1e-6
    for a in range(p):
        e = np.zeros(p)
        e[a] = h
        assert gw[a] == pytest.approx((loss(w + e, V) - loss(w - e, V)) / (2 * h), rel=1e-6, abs=1e-9), a
        for f in range(k):
            E = np.zeros_like(V)
            E[a, f] = h
            assert gV[a, f] == pytest.approx((loss(w, V + E) - loss(w, V - E)) / (2 * h), rel=1e-5, abs=1e-9), (a, f)


def _planted_implicit(nu=150, ni=100, k=3, per_user=20, seed=0):
    """Each user's positives are the items with the highest ⟨p_u, q_i⟩ + b_i (plus noise)."""
    rng = np.random.default_rng(seed)
    P, Q, b = rng.normal(size=(nu, k)), rng.normal(size=(ni, k)), rng.normal(scale=0.5, size=ni)
    S = P @ Q.T + b + rng.gumbel(scale=0.3, size=(nu, ni))
    top = np.argsort(-S, axis=1)[:, :per_user]
    u = np.repeat(np.arange(nu), per_user)
    i = top.ravel()
    hold = rng.random(len(u)) < 0.2
    train = Interactions.from_arrays(u[~hold], i[~hold], np.ones(int((~hold).sum())))
    return train, u[hold], i[hold]


def test_bpr_fm_learns_a_planted_ranking_and_round_trips(tmp_path):
    train, tu, ti = _planted_implicit()
    m = BPRFactorizationMachine(factors=8, epochs=40, lr=0.05, reg=0.001, random_state=0, num_threads=1).fit(train)
    assert m.train_accuracy_ > 0.85
    ids, _ = m.recommend(train.users.ids, k=10)
    top = {u: set(row) for u, row in zip(train.users.ids, ids)}
    recall = np.mean([i in top[u] for u, i in zip(tu, ti)])
    pop = set(train.items.ids[np.argsort(-train.matrix.getnnz(axis=0))[:10]])
    pop_recall = np.mean([i in pop for i in ti])
    assert recall > 2 * pop_recall and recall > 0.4, (recall, pop_recall)
    # one thread: same seed, same model
    m2 = BPRFactorizationMachine(factors=8, epochs=40, lr=0.05, reg=0.001, random_state=0, num_threads=1).fit(train)
    np.testing.assert_array_equal(m.V_, m2.V_)
    # seen items never recommended; similar items exclude the item
    seen = train.matrix[:5].tolil().rows
    assert all(not set(ids[r]) & set(train.items.ids[seen[r]]) for r in range(5))
    sim, _ = m.similar_items(train.items.ids[0], k=5)
    assert train.items.ids[0] not in sim
    m3 = Model.load(m.save(tmp_path / "bprfm.tb"))
    np.testing.assert_array_equal(m3.recommend(train.users.ids[:7], k=10)[0], ids[:7])


def test_bpr_fm_with_one_hot_rows_is_bpr_mf_scores():
    """With one-hot users and items the FM score is ⟨v_u, v_i⟩ + w_i: recommend's scores equal it."""
    train, _, _ = _planted_implicit(nu=30, ni=20, per_user=5)
    m = BPRFactorizationMachine(factors=4, epochs=3, random_state=0, num_threads=1).fit(train)
    nu = len(train.users)
    S = m._scores(np.arange(nu))
    ref = m.V_[:nu] @ m.V_[nu:].T + m.w_[nu:][None, :] + m.w_[:nu][:, None]
    np.testing.assert_allclose(S, ref, rtol=1e-5, atol=1e-6)


def test_bpr_fm_errors():
    with pytest.raises(DataError, match="at least 2 items"):
        BPRFactorizationMachine(epochs=1).fit(Interactions.from_arrays([0, 1], [0, 0], [1.0, 1.0]))
    with pytest.raises(ValueError, match="lr"):
        BPRFactorizationMachine(lr=0).fit(Interactions.from_arrays([0, 1], [0, 1], [1.0, 1.0]))
    m = BPRFactorizationMachine(epochs=1).fit(Interactions.from_arrays([0, 1, 1], [0, 1, 2], [1.0, 1, 1]))
    with pytest.raises(ValueError, match="RankingDesign"):
        m.score_candidates(sp.csr_matrix((1, 5)))
