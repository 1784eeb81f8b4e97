"""Field-aware factorization machines: the model formula against the brute-force O(n²) pair sum,
the row gradient against finite differences, the recommender split, learning, save/load."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from tastebud.data.interactions import Interactions
from tastebud.exceptions import DataError
from tastebud.kernels import ffm as K
from tastebud.models.base import Model
from tastebud.models.fm.factorization_machine import FactorizationMachine, check_design
from tastebud.models.fm.ffm import FieldAwareFM


def brute_ffm(X: np.ndarray, fields, w0, w, V) -> np.ndarray:
    """ŷ by the definition: w₀ + Σ w_j x_j + Σ_{a<b} ⟨V[a, f(b)], V[b, f(a)]⟩ x_a x_b over all column pairs."""
    n, p = X.shape
    out = np.full(n, w0)
    for r in range(n):
        out[r] += X[r] @ w
        for a in range(p):
            for b in range(a + 1, p):
                out[r] += V[a, fields[b]] @ V[b, fields[a]] * X[r, a] * X[r, b]
    return out


def _problem(n=30, p=9, F=3, k=3, seed=0):
    rng = np.random.default_rng(seed)
    X = check_design(sp.random(n, p, density=0.5, random_state=seed, data_rvs=lambda m: rng.normal(size=m)))
    fields = rng.integers(0, F, p).astype(np.int64)
    return X, fields, rng.normal(), rng.normal(size=p), rng.normal(scale=0.5, size=(p, F, k)), rng


def test_ffm_predict_equals_brute_force_pair_sum():
    X, fields, w0, w, V, _ = _problem()
    out = np.empty(X.shape[0])
    K.ffm_predict(X.indptr, X.indices, X.data, fields, w0, w, V, out)
    np.testing.assert_allclose(out, brute_ffm(X.toarray(), fields, w0, w, V), rtol=1e-12, atol=1e-12)


def test_ffm_with_one_field_is_an_fm():
    from tastebud.kernels import fm as KF

    X, _, w0, w, V, _ = _problem(F=1)
    a, b = np.empty(X.shape[0]), np.empty(X.shape[0])
    K.ffm_predict(X.indptr, X.indices, X.data, np.zeros(X.shape[1], dtype=np.int64), w0, w, V, a)
    KF.fm_predict(X.indptr, X.indices, X.data, w0, w, np.ascontiguousarray(V[:, 0, :]), b)
    np.testing.assert_allclose(a, b, rtol=1e-12)


@pytest.mark.parametrize("classification", [False, True])
def test_ffm_row_gradient_matches_finite_differences(classification):
    X, fields, w0, w, V, _ = _problem(n=4, p=7, F=3, k=2, seed=4)
    r = 1
    a0, a1 = X.indptr[r], X.indptr[r + 1]
    ind, dat = X.indices[a0:a1], X.data[a0:a1]
    y = -1.0 if classification else 0.4
    xr = X[r].toarray()

    def loss(w0_, w_, V_):
        s = brute_ffm(xr, fields, w0_, w_, V_)[0]
        return np.log1p(np.exp(-y * s)) if classification else 0.5 * (s - y) ** 2

    gw, gV = np.zeros(len(ind)), np.zeros((len(ind), 3, 2))
    g0, _ = K.ffm_row_gradient(ind, dat, fields, y, classification, w0, w, V, gw, gV)
    h = 1e-6
    assert g0 == pytest.approx((loss(w0 + h, w, V) - loss(w0 - h, w, V)) / (2 * h), rel=1e-6)
    for p_, j in enumerate(ind):
        e = np.zeros_like(w)
        e[j] = h
        assert gw[p_] == pytest.approx((loss(w0, w + e, V) - loss(w0, w - e, V)) / (2 * h), rel=1e-6, abs=1e-9)
        for F in range(3):
            for f in range(2):
                E = np.zeros_like(V)
                E[j, F, f] = h
                num = (loss(w0, w, V + E) - loss(w0, w, V - E)) / (2 * h)
                assert gV[p_, F, f] == pytest.approx(num, rel=1e-5, abs=1e-9), (j, F, f)


def _planted_ffm(n=4000, seed=1):
    """Three categorical fields whose pairwise interactions differ by field pair: an FFM fits them, a
    rank-2 FM only in part."""
    rng = np.random.default_rng(seed)
    sizes = [20, 15, 10]
    offs = np.cumsum([0] + sizes)
    p = offs[-1]
    fields = np.repeat(np.arange(3), sizes)
    V = rng.normal(scale=0.7, size=(p, 3, 2))
    w = rng.normal(scale=0.3, size=p)
    cols = np.stack([rng.integers(0, s, n) + o for s, o in zip(sizes, offs[:-1])], 1)
    X = sp.csr_matrix((np.ones(3 * n), cols.ravel(), np.arange(0, 3 * n + 1, 3)), shape=(n, p))
    y = np.empty(n)
    K.ffm_predict(X.indptr, X.indices.astype(np.int64), X.data, fields.astype(np.int64), 0.5, w, V, y)
    return X, y + rng.normal(scale=0.1, size=n), fields


def test_ffm_learns_a_planted_field_aware_model_better_than_an_fm(tmp_path):
    X, y, fields = _planted_ffm()
    tr, te = slice(0, 3200), slice(3200, None)
    m = FieldAwareFM(factors=2, epochs=30, lr=0.1, reg=1e-4, random_state=0).fit(X[tr], y[tr], fields)
    err = np.sqrt(np.mean((m.predict(X[te]) - y[te]) ** 2))
    base = np.std(y[te])
    fm = FactorizationMachine(solver="als", factors=2, epochs=30, reg_w=1.0, reg_v=1.0, random_state=0)
    fm_err = np.sqrt(np.mean((fm.fit(X[tr], y[tr], groups=fields).predict(X[te]) - y[te]) ** 2))
    assert err < 0.4 * base, (err, base)
    assert err < fm_err, (err, fm_err)
    assert m.history_[-1] < m.history_[0]
    m2 = Model.load(m.save(tmp_path / "ffm.tb"))
    np.testing.assert_array_equal(m2.predict(X[te]), m.predict(X[te]))


def test_ffm_classification():
    X, y, fields = _planted_ffm(n=3000, seed=2)
    lab = (y > np.median(y)).astype(int)
    m = FieldAwareFM(task="classification", factors=2, epochs=15, random_state=0).fit(X[:2400], lab[:2400], fields)
    pr = m.predict_proba(X[2400:])
    assert ((pr >= 0) & (pr <= 1)).all()
    assert np.mean(m.predict(X[2400:]) == lab[2400:]) > 0.8


def test_ffm_recommender_split_equals_pair_predictions(tmp_path):
    rng = np.random.default_rng(3)
    nu, ni, n = 30, 25, 400
    u, i = rng.integers(0, nu, n), rng.integers(0, ni, n)
    keep = np.unique(u * ni + i, return_index=True)[1]
    data = Interactions.from_arrays(u[keep], i[keep], rng.integers(1, 6, len(keep)).astype(float))
    users = __import__("pandas").DataFrame({"user": np.arange(nu), "age": rng.normal(size=nu),
                                            "job": rng.choice(["a", "b", "c"], nu)})
    m = FieldAwareFM(factors=3, epochs=5, implicit="item", random_state=0).fit(data, user_features=users)
    assert m.n_fields_ == 5  # user, user:age, user:job | item, implicit:item->user
    uu = np.repeat(data.users.ids[:4], data.n_items)
    ii = np.tile(data.items.ids, 4)
    pred = m.predict(uu, ii).reshape(4, -1)
    S = m._scores(np.arange(4))
    np.testing.assert_allclose(S, pred, rtol=1e-4, atol=1e-4)  # float32 parts
    ids, sc = m.recommend(data.users.ids[:4], k=5, filter_seen=False)
    np.testing.assert_allclose(np.sort(pred, 1)[:, ::-1][:, :5], sc, rtol=1e-4, atol=1e-4)
    assert len(m.similar_items(data.items.ids[0], k=3)[0]) == 3
    m2 = Model.load(m.save(tmp_path / "ffm_rec.tb"))
    np.testing.assert_array_equal(m2.predict(uu, ii), m.predict(uu, ii))
    np.testing.assert_array_equal(m2.recommend(data.users.ids[:4], k=5)[0], m.recommend(data.users.ids[:4], k=5)[0])


def test_ffm_errors():
    X = sp.csr_matrix(np.eye(4))
    with pytest.raises(DataError, match="fields must have one entry per column"):
        FieldAwareFM(epochs=1).fit(X, np.ones(4), fields=[0, 1])
    with pytest.raises(ValueError, match="factors"):
        FieldAwareFM(factors=0).fit(X, np.ones(4))
    m = FieldAwareFM(epochs=1).fit(X, np.arange(4.0))
    with pytest.raises(ValueError, match="fitted on a design matrix"):
        m.recommend([0], k=2)
    with pytest.raises(DataError, match="4 features"):
        m.predict(sp.csr_matrix(np.eye(5)))
