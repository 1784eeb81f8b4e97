"""Factorization machines: formula, gradients, ALS monotonicity, MF equivalence, MCMC recovery."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from tastebud.data.interactions import Interactions
from tastebud.exceptions import DataError, NotFittedError, UnknownIdError
from tastebud.kernels import fm as K
from tastebud.models.base import Model
from tastebud.models.fm.factorization_machine import FactorizationMachine, check_design


# ---------------------------------------------------------------------------- helpers
def naive_fm(X: np.ndarray, w0: float, w: np.ndarray, V: np.ndarray) -> np.ndarray:
    """ŷ by the definition: w₀ + Σ wᵢxᵢ + Σ_{i<j} ⟨vᵢ, vⱼ⟩ xᵢxⱼ (O(k·p²))."""
    out = np.full(X.shape[0], w0, dtype=np.float64)
    p = X.shape[1]
    for r in range(X.shape[0]):
        out[r] += X[r] @ w
        for i in range(p):
            for j in range(i + 1, p):
                out[r] += (V[i] @ V[j]) * X[r, i] * X[r, j]
    return out


def random_problem(n=40, p=12, k=3, density=0.4, seed=0):
    rng = np.random.default_rng(seed)
    X = sp.random(n, p, density=density, random_state=seed, data_rvs=lambda m: rng.normal(size=m)).tocsr()
    X = check_design(X)
    w0 = rng.normal()
    w = rng.normal(size=p)
    V = rng.normal(scale=0.5, size=(p, k))
    return X, w0, w, V, rng


def fast_predict(X, w0, w, V):
    out = np.empty(X.shape[0])
    K.fm_predict(X.indptr, X.indices, X.data, w0, w, V, out)
    return out


def planted_mf(nu=80, ni=60, k=3, frac=0.5, noise=0.1, seed=1):
    """Ratings r = μ + bᵤ + bᵢ + ⟨pᵤ, qᵢ⟩ + ε on a random subset of cells."""
    rng = np.random.default_rng(seed)
    mu = 3.5
    bu = rng.normal(scale=0.4, size=nu)
    bi = rng.normal(scale=0.4, size=ni)
    P = rng.normal(scale=0.6, size=(nu, k))
    Qm = rng.normal(scale=0.6, size=(ni, k))
    R = mu + bu[:, None] + bi[None, :] + P @ Qm.T
    mask = rng.random((nu, ni)) < frac
    mask[np.arange(nu), rng.integers(0, ni, nu)] = True
    mask[rng.integers(0, nu, ni), np.arange(ni)] = True
    u, i = np.nonzero(mask)
    r = R[u, i] + rng.normal(scale=noise, size=len(u))
    inter = Interactions.from_arrays(u, i, r)
    # reorder R so that R[a, b] is the cell of user index a and item index b of the id maps
    R = R[np.ix_(inter.users.ids, inter.items.ids)]
    return inter, R, u, i, r


# ---------------------------------------------------------------------------- the formula
def test_linear_time_formula_equals_naive_pairwise_sum():
    X, w0, w, V, _ = random_problem()
    np.testing.assert_allclose(fast_predict(X, w0, w, V), naive_fm(X.toarray(), w0, w, V), rtol=1e-12, atol=1e-12)


def test_user_item_split_equals_full_prediction():
    # every column in the "user" block or the "item" block: ŷ = w0 + b_u + b_i + <q_u, q_i>
    X, w0, w, V, rng = random_problem(p=10)
    Xu = X.copy().tolil()
    Xu[:, 5:] = 0
    Xi = X.copy().tolil()
    Xi[:, :5] = 0
    Xu, Xi = check_design(Xu), check_design(Xi)
    n, k = X.shape[0], V.shape[1]
    bu, qu, bi, qi = np.empty(n), np.empty((n, k)), np.empty(n), np.empty((n, k))
    K.fm_parts(Xu.indptr, Xu.indices, Xu.data, w, V, bu, qu)
    K.fm_parts(Xi.indptr, Xi.indices, Xi.data, w, V, bi, qi)
    np.testing.assert_allclose(w0 + bu + bi + (qu * qi).sum(1), fast_predict(X, w0, w, V), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("classification", [False, True])
def test_row_gradient_matches_finite_differences(classification):
    X, w0, w, V, rng = random_problem(n=5, p=8, k=4, density=0.7, seed=3)
    r = 2
    a, b = X.indptr[r], X.indptr[r + 1]
    ind, dat = X.indices[a:b], X.data[a:b]
    y = 1.0 if classification else 0.7
    xrow = X[r].toarray()

    def loss(w0_, w_, V_):
        s = naive_fm(xrow, w0_, w_, V_)[0]
        return np.log1p(np.exp(-y * s)) if classification else 0.5 * (s - y) ** 2

    q = np.zeros(V.shape[1])
    gw = np.zeros(len(ind))
    gV = np.zeros((len(ind), V.shape[1]))
    g0, _ = K.row_gradient(ind, dat, y, classification, w0, w, V, q, gw, gV)
    h = 1e-6
    assert g0 == pytest.approx((loss(w0 + h, w, V) - loss(w0 - h, w, V)) / (2 * h), rel=1e-6, abs=1e-8)
    for p_, j in enumerate(ind):
        e = np.zeros_like(w)
        e[j] = h
        assert gw[p_] == pytest.approx((loss(w0, w + e, V) - loss(w0, w - e, V)) / (2 * h), rel=1e-6, abs=1e-8)
        for f in range(V.shape[1]):
            E = np.zeros_like(V)
            E[j, f] = h
            num = (loss(w0, w, V + E) - loss(w0, w, V - E)) / (2 * h)
            assert gV[p_, f] == pytest.approx(num, rel=1e-5, abs=1e-8)


# ---------------------------------------------------------------------------- ALS
def _objective(X, y, w0, w, V, reg_w0, lam_w, lam_v, groups):
    e = y - naive_fm(X.toarray(), w0, w, V) if X.shape[1] <= 12 else y - fast_predict(X, w0, w, V)
    return float(e @ e + reg_w0 * w0 ** 2 + (lam_w[groups] * w ** 2).sum() + (lam_v[groups][:, None] * V ** 2).sum())


def test_each_als_coordinate_update_never_increases_the_objective():
    X, _, _, _, rng = random_problem(n=60, p=10, k=3, density=0.4, seed=5)
    n, p = X.shape
    k = 3
    y = rng.normal(size=n) * 2 + 1
    groups = np.array([0] * 4 + [1] * 6, dtype=np.int64)
    lam_w = np.array([0.3, 1.0])
    lam_v = np.array([0.5, 2.0])
    reg_w0 = 0.1
    w0 = np.zeros(1)
    w = rng.normal(size=p)
    V = rng.normal(scale=0.5, size=(p, k))
    C = X.tocsc()
    C.sort_indices()
    cptr, crow, cval = C.indptr.astype(np.int64), C.indices.astype(np.int64), C.data
    Q = np.zeros((n, k))
    K.fm_q(X.indptr, X.indices, X.data, V, Q)
    e = y - fast_predict(X, w0[0], w, V)
    prev = _objective(X, y, w0[0], w, V, reg_w0, lam_w, lam_v, groups)
    n_updates = 0
    for _sweep in range(3):
        w0[0] = K.update_w0(w0[0], e, 1.0, reg_w0, False)
        obj = _objective(X, y, w0[0], w, V, reg_w0, lam_w, lam_v, groups)
        assert obj <= prev + 1e-10 * max(1.0, prev)
        prev = obj
        for j in range(p):
            K.update_w(j, cptr, crow, cval, w, e, 1.0, lam_w[groups[j]], 0.0, False)
            obj = _objective(X, y, w0[0], w, V, reg_w0, lam_w, lam_v, groups)
            assert obj <= prev + 1e-10 * max(1.0, prev), f"w[{j}] update increased the objective"
            prev = obj
            n_updates += 1
        for f in range(k):
            for j in range(p):
                K.update_v(j, f, cptr, crow, cval, V, Q, e, 1.0, lam_v[groups[j]], 0.0, False)
                obj = _objective(X, y, w0[0], w, V, reg_w0, lam_w, lam_v, groups)
                assert obj <= prev + 1e-10 * max(1.0, prev), f"v[{j},{f}] update increased the objective"
                prev = obj
                n_updates += 1
    # the caches the sweep maintains incrementally equal a fresh computation
    np.testing.assert_allclose(e, y - fast_predict(X, w0[0], w, V), atol=1e-9)
    Q2 = np.zeros((n, k))
    K.fm_q(X.indptr, X.indices, X.data, V, Q2)
    np.testing.assert_allclose(Q, Q2, atol=1e-9)
    assert n_updates == 3 * (p + p * k)


def test_each_update_is_the_exact_coordinate_minimiser():
    # perturbing a freshly updated coordinate in either direction never lowers the objective
    X, _, _, _, rng = random_problem(n=50, p=8, k=2, density=0.5, seed=9)
    n, p = X.shape
    y = rng.normal(size=n)
    groups = np.zeros(p, dtype=np.int64)
    lam = np.array([0.7])
    w = rng.normal(size=p)
    V = rng.normal(scale=0.5, size=(p, 2))
    C = X.tocsc()
    C.sort_indices()
    Q = np.zeros((n, 2))
    K.fm_q(X.indptr, X.indices, X.data, V, Q)
    e = y - fast_predict(X, 0.0, w, V)
    j, f = 3, 1
    K.update_v(j, f, C.indptr.astype(np.int64), C.indices.astype(np.int64), C.data, V, Q, e, 1.0, lam[0], 0.0, False)
    base = _objective(X, y, 0.0, w, V, 0.0, lam, lam, groups)
    for d in (1e-3, -1e-3):
        V2 = V.copy()
        V2[j, f] += d
        assert _objective(X, y, 0.0, w, V2, 0.0, lam, lam, groups) > base


def test_als_fit_decreases_training_error():
    X, w0, w, V, rng = random_problem(n=300, p=20, k=3, density=0.3, seed=11)
    y = fast_predict(X, w0, w, V) + rng.normal(scale=0.05, size=X.shape[0])
    m = FactorizationMachine(solver="als", factors=3, epochs=30, reg_w=0.01, reg_v=0.01, random_state=0).fit(X, y)
    assert all(b <= a + 1e-9 for a, b in zip(m.history_, m.history_[1:]))
    assert m.history_[-1] < 0.2 * np.std(y)


# ---------------------------------------------------------------------------- FM ⊇ biased MF
@pytest.mark.parametrize("solver", ["als", "mcmc"])
def test_fm_with_user_item_one_hot_is_biased_mf(solver):
    inter, R, u, i, r = planted_mf()
    m = FactorizationMachine(solver=solver, factors=3, epochs=60, reg_w=1.0, reg_v=1.0, burn_in=20, random_state=0).fit(inter)
    nu, ni = R.shape
    # (1) with user/item one-hot, the FM prediction IS μ + bᵤ + bᵢ + ⟨vᵤ, vᵢ⟩ read off its own weights
    uu, ii = np.meshgrid(np.arange(nu), np.arange(ni), indexing="ij")
    uu, ii = uu.ravel(), ii.ravel()
    if solver == "als":
        mf = m.w0_ + m.w_[uu] + m.w_[nu + ii] + (m.V_[uu] * m.V_[nu + ii]).sum(1)
    else:  # averaged over the kept samples
        Ws, Vs = m.w_samples_.astype(np.float64), m.V_samples_.astype(np.float64)
        mf = (m.w0_samples_[:, None] + Ws[:, uu] + Ws[:, nu + ii] + (Vs[:, uu] * Vs[:, nu + ii]).sum(2)).mean(0)
    pred = m.predict(inter.users.ids[uu], inter.items.ids[ii])
    np.testing.assert_allclose(pred, mf, rtol=1e-5, atol=1e-5)
    # (2) and it recovers the planted biased-MF matrix (unobserved cells included) near the noise level
    rmse_all = np.sqrt(np.mean((pred - R[uu, ii]) ** 2))
    assert rmse_all < 0.25, rmse_all
    # recommend's fast split scoring agrees with predict
    ids, sc = m.recommend(inter.users.ids[:3], k=5, filter_seen=False)
    full = pred.reshape(nu, ni)[:3]
    np.testing.assert_allclose(np.sort(full, axis=1)[:, ::-1][:, :5], sc, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------------------- MCMC
def test_mcmc_recovers_planted_parameters():
    inter, R, u, i, r = planted_mf(nu=100, ni=80, frac=0.5, noise=0.2, seed=4)
    m = FactorizationMachine(solver="mcmc", factors=3, epochs=120, burn_in=40, random_state=1).fit(inter)
    nu, ni = R.shape
    uu, ii = np.meshgrid(np.arange(nu), np.arange(ni), indexing="ij")
    pred = m.predict(inter.users.ids[uu.ravel()], inter.items.ids[ii.ravel()])
    assert np.sqrt(np.mean((pred - R.ravel()) ** 2)) < 0.2
    # noise precision α ≈ 1/σ² = 25; biases recovered up to the shared offset
    assert 15 < m.hyper_["alpha"] < 35
    Ws = m.w_samples_.mean(0)
    bu_true = R.mean(1) - R.mean()
    bu_hat = (Ws[:nu] + 0.0) - Ws[:nu].mean()
    assert np.corrcoef(bu_true, bu_hat)[0, 1] > 0.9
    assert len(m.w0_samples_) == 80


def test_mcmc_same_seed_same_model_any_thread_count():
    inter, *_ = planted_mf(nu=30, ni=25, seed=2)
    a = FactorizationMachine(epochs=15, random_state=7, num_threads=1).fit(inter)
    b = FactorizationMachine(epochs=15, random_state=7, num_threads=2).fit(inter)
    np.testing.assert_array_equal(a.V_samples_, b.V_samples_)


# ---------------------------------------------------------------------------- general (X, y) and classification
def test_general_regression_all_solvers_learn_a_planted_fm():
    X, w0, w, V, rng = random_problem(n=1500, p=30, k=2, density=0.15, seed=21)
    X.data = np.abs(X.data)
    y = fast_predict(X, w0, w, V) + rng.normal(scale=0.1, size=X.shape[0])
    Xt, yt = X[1000:], y[1000:]
    groups = np.repeat([0, 1, 2], 10)
    base = np.sqrt(np.mean((yt - y[:1000].mean()) ** 2))
    for solver, kw in [("mcmc", {}), ("als", {"reg_w": 0.5, "reg_v": 0.5}),
                       ("sgd", {"lr": 0.02, "reg_w": 0.001, "reg_v": 0.001}),
                       ("sgd", {"lr": 0.1, "adaptive": "adagrad", "reg_w": 0.001, "reg_v": 0.001})]:
        m = FactorizationMachine(solver=solver, factors=2, epochs=60, random_state=0, **kw).fit(X[:1000], y[:1000], groups=groups)
        err = np.sqrt(np.mean((m.predict(Xt) - yt) ** 2))
        assert err < 0.5 * base, (solver, kw, err, base)


@pytest.mark.parametrize("solver", ["mcmc", "als", "sgd"])
def test_classification_probit_and_logit(solver):
    X, w0, w, V, rng = random_problem(n=1500, p=25, k=2, density=0.2, seed=31)
    s = fast_predict(X, 0.0, w, V)
    y01 = (s + rng.normal(scale=0.3, size=len(s)) > np.median(s)).astype(int)
    kw = {"lr": 0.05, "reg_w": 0.001, "reg_v": 0.001} if solver == "sgd" else {"reg_w": 1.0, "reg_v": 1.0}
    m = FactorizationMachine(task="classification", solver=solver, factors=2, epochs=50, random_state=0, **kw)
    m.fit(X[:1000], y01[:1000])
    pr = m.predict_proba(X[1000:])
    assert pr.min() >= 0 and pr.max() <= 1
    labels = m.predict(X[1000:])
    assert set(np.unique(labels)) <= {0, 1}
    acc = np.mean(labels == y01[1000:])
    assert acc > 0.75, acc
    # {-1, 1} labels give {-1, 1} predictions
    m2 = FactorizationMachine(task="classification", solver=solver, factors=2, epochs=5, random_state=0, **kw)
    assert set(np.unique(m2.fit(X[:300], 2 * y01[:300] - 1).predict(X[:50]))) <= {-1, 1}


def test_probit_latent_draws_have_the_right_sign_and_mean():
    rng = np.random.default_rng(0)
    m = np.array([0.3] * 20000 + [-2.0] * 20000)
    y = np.array([1.0] * 20000 + [-1.0] * 20000)
    z = FactorizationMachine._probit_latent(m, y, rng)
    assert (np.sign(z) == y).all()
    ez = FactorizationMachine._probit_latent(m, y, None)
    assert abs(z[:20000].mean() - ez[0]) < 0.02
    assert abs(z[20000:].mean() - ez[-1]) < 0.02



def test_ndtri_kernel_matches_scipy_and_fused_probit_step_matches_reference():
    from scipy.special import ndtri

    ps = np.r_[np.logspace(-300, -1, 400), np.linspace(0.01, 0.99, 401), 1 - np.logspace(-16, -1, 100)]
    ours = np.array([K.ndtri(p) for p in ps])
    np.testing.assert_allclose(ours, ndtri(ps), rtol=1e-14, atol=1e-14)
    # fused Gibbs step of the latent targets == the numpy reference with the same uniforms
    rng = np.random.default_rng(4)
    n = 5000
    m = rng.normal(size=n) * 6  # includes |y·m| > 8, where Φ(y·m) rounds to 0 or 1
    y = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    expect = FactorizationMachine._probit_latent(m, y, np.random.default_rng(9))
    target = m + rng.normal(size=n)
    e = target - m
    K.probit_resample(e, target, y, 1.0 - np.random.default_rng(9).random(n))
    assert np.isfinite(target).all() and (np.sign(target) == y).all()
    np.testing.assert_allclose(target, expect, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(target - e, m, atol=1e-12)


def test_sample_averaged_prediction_kernel_equals_per_sample_loop():
    from scipy.special import ndtr

    X, _, _, _, rng = random_problem(n=60, p=12, k=3, density=0.3, seed=21)
    S = 5
    w0s = rng.normal(size=S)
    ws = rng.normal(size=(S, 12)).astype(np.float32)
    Vs = rng.normal(size=(S, 12, 3)).astype(np.float32)
    per = np.array([fast_predict(X, w0s[s], ws[s].astype(np.float64), Vs[s].astype(np.float64)) for s in range(S)])
    for code, g in ((0, lambda z: z), (1, ndtr), (2, lambda z: 1 / (1 + np.exp(-z)))):
        out = np.empty(X.shape[0])
        K.fm_predict_mean(X.indptr, X.indices, X.data, w0s, ws, Vs, code, out)
        np.testing.assert_allclose(out, g(per).mean(0), rtol=1e-12, atol=1e-12)

# ---------------------------------------------------------------------------- errors
def test_clear_errors_for_bad_input():
    X, w0, w, V, rng = random_problem(n=30, p=6)
    y = rng.normal(size=30)
    fm = FactorizationMachine(epochs=2)
    with pytest.raises(DataError, match="y must be 1-D"):
        fm.fit(X, y[:10])
    with pytest.raises(ValueError, match="y is required"):
        fm.fit(X)
    Xn = X.toarray()
    Xn[3, 2] = np.nan
    with pytest.raises(DataError, match="NaN"):
        fm.fit(Xn, y)
    yn = y.copy()
    yn[5] = np.nan
    with pytest.raises(DataError, match="NaN"):
        fm.fit(X, yn)
    with pytest.raises(DataError, match="labels must be in"):
        FactorizationMachine(task="classification").fit(X, np.arange(30) % 3)
    with pytest.raises(DataError, match="groups"):
        fm.fit(X, y, groups=[0, 1])
    with pytest.raises(DataError, match="2-D"):
        fm.fit(np.ones(5), y)
    with pytest.raises(ValueError, match="solver"):
        FactorizationMachine(solver="adam").fit(X, y)
    with pytest.raises(ValueError, match="task"):
        FactorizationMachine(task="ranking").fit(X, y)
    with pytest.raises(ValueError, match="reg_w"):
        FactorizationMachine(solver="als", reg_w=[1.0, 2.0]).fit(X, y)
    with pytest.raises(NotFittedError):
        FactorizationMachine().predict(X)
    fm.fit(X, y)
    with pytest.raises(DataError, match="columns"):
        fm.predict(sp.csr_matrix(np.ones((2, 7))))
    with pytest.raises(ValueError, match="Interactions"):
        fm.predict([1, 2], [3, 4])
    with pytest.raises(ValueError, match="predict_proba"):
        fm.predict_proba(X)


# ---------------------------------------------------------------------------- recommender protocol
def test_recommender_protocol_fallback_recommend_save_load(tmp_path):
    inter, R, u, i, r = planted_mf(nu=40, ni=30, seed=6)
    users = pd.DataFrame({"user": np.arange(40), "group": np.where(np.arange(40) % 2, "a", "b"), "age": np.arange(40) * 1.5})
    items = pd.DataFrame({"item": np.arange(30), "genres": [["x", "y"] if j % 3 else ["z"] for j in range(30)]})
    m = FactorizationMachine(factors=3, epochs=20, implicit="both", random_state=0).fit(inter, user_features=users, item_features=items)
    assert m.group_names_ == ["user", "user:group", "user:age", "implicit:user->item", "item", "item:genres", "implicit:item->user"]
    p = m.predict([0, 1, 999], [0, 1, 2])
    assert m.n_fallbacks_ == 1 and np.isfinite(p).all()
    with pytest.raises(UnknownIdError):
        m.predict([999], [0], unknown="raise")
    ids, sc = m.recommend([0, 1], k=5)
    seen0 = set(inter.items.ids[inter.matrix[0].indices])
    assert not seen0 & set(ids[0].tolist())
    assert (np.diff(sc, axis=1) <= 1e-6).all()
    path = m.save(tmp_path / "fm.tb")
    m2 = Model.load(path)
    np.testing.assert_array_equal(m2.predict([0, 1, 999], [0, 1, 2]), p)
    ids2, sc2 = m2.recommend([0, 1], k=5)
    np.testing.assert_array_equal(ids, ids2)
    # design-matrix mode round-trips too (ALS point estimate)
    X, w0, w, V, rng = random_problem(n=50, p=8)
    a = FactorizationMachine(solver="als", epochs=3, factors=2).fit(X, rng.normal(size=50))
    b = Model.load(a.save(tmp_path / "fm2.tb"))
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    with pytest.raises(ValueError, match="recommend"):
        b.recommend([0], k=1)


# ---------------------------------------------------------------------------- end to end on ML-100K
def _data_dir() -> Path | None:
    d = os.environ.get("TASTEBUD_DATA")
    if not d or not (Path(d) / "ml-100k" / "u1.base").exists():
        return None
    return Path(d) / "ml-100k"


def test_end_to_end_ml100k_u1():
    d = _data_dir()
    if d is None:
        pytest.skip("TASTEBUD_DATA not set or ML-100K missing")
    from tastebud.data.readers import read_ml100k_ratings

    tr = read_ml100k_ratings(d / "u1.base")
    te = read_ml100k_ratings(d / "u1.test")
    train = Interactions.from_frame(tr, rating="rating")
    m = FactorizationMachine(factors=8, epochs=60, random_state=0).fit(train)
    pred = m.predict(te["user"].to_numpy(), te["item"].to_numpy())
    rmse = float(np.sqrt(np.mean((pred - te["rating"].to_numpy()) ** 2)))
    # myFM (MCMC, rank 10, 200 iterations) gets ≈0.907 on u1; Surprise SVD ≈0.95
    assert rmse < 0.93, rmse
    assert m.n_fallbacks_ > 0  # u1.test holds items absent from u1.base


# block_rows: columns (~40 rows) gathered in one chunk (BLAS Gram, h kept for the update pass), in
# chunks of 12 (BLAS on full chunks, a loop on the last 4 rows, h recomputed) or of 3 (loop only)
@pytest.mark.parametrize("block_rows", [512, 12, 3])
@pytest.mark.parametrize("use_w", [True, False])
def test_batched_feature_update_equals_sequential_coordinate_updates(use_w, block_rows):
    X, _, _, _, rng = random_problem(n=80, p=9, k=4, density=0.5, seed=13)
    n, p = X.shape
    k = 4
    y = rng.normal(size=n)
    C = X.tocsc()
    C.sort_indices()
    cptr, crow, cval = C.indptr.astype(np.int64), C.indices.astype(np.int32), C.data
    w = rng.normal(size=p)
    V = rng.normal(scale=0.5, size=(p, k))
    lam_v, mu_v = rng.uniform(0.1, 2, size=k), rng.normal(size=k) * 0.1

    def state():
        Q = np.zeros((n, k))
        K.fm_q(X.indptr, X.indices, X.data, V, Q)
        return w.copy(), V.copy(), Q, y - fast_predict(X, 0.0, w, V)

    wa, Va, Qa, ea = state()
    wb, Vb, Qb, eb = state()
    for j in range(p):
        if use_w:
            K.update_w(j, cptr, crow, cval, wa, ea, 1.3, 0.4, 0.05, False)
        for f in range(k):
            K.update_v(j, f, cptr, crow, cval, Va, Qa, ea, 1.3, lam_v[f], mu_v[f], False)
        K.update_feature(j, cptr, crow, cval, wb, Vb, Qb, eb, 1.3, 0.4, 0.05, lam_v, mu_v, use_w, False,
                         *K.feature_buffers(k, block_rows))
    np.testing.assert_allclose(wb, wa, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(Vb, Va, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(Qb, Qa, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(eb, ea, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("block_rows", [512, 12, 3])
def test_block_update_is_the_exact_block_minimiser_and_sampler_moments(block_rows):
    # ALS block update of (w_j, v_j) equals the ridge solution over that block with everything else fixed
    X, _, _, _, rng = random_problem(n=70, p=7, k=3, density=0.5, seed=17)
    n, p = X.shape
    k = 3
    y = rng.normal(size=n)
    C = X.tocsc()
    C.sort_indices()
    cptr, crow, cval = C.indptr.astype(np.int64), C.indices.astype(np.int32), C.data
    w = rng.normal(size=p)
    V = rng.normal(scale=0.5, size=(p, k))
    Q = np.zeros((n, k))
    K.fm_q(X.indptr, X.indices, X.data, V, Q)
    e = y - fast_predict(X, 0.0, w, V)
    lam_w, lam_v = 0.3, np.array([0.5, 0.7, 0.9])
    j = 2
    xj = X[:, j].toarray().ravel()
    Hm = np.column_stack([xj] + [xj * (Q[:, f] - V[j, f] * xj) for f in range(k)])
    r_other = y - (fast_predict(X, 0.0, w, V) - Hm @ np.r_[w[j], V[j]])
    expect = np.linalg.solve(Hm.T @ Hm + np.diag(np.r_[lam_w, lam_v]), Hm.T @ r_other)
    before = float(e @ e + lam_w * w[j] ** 2 + (lam_v * V[j] ** 2).sum())
    bufs = K.feature_buffers(k, block_rows)
    K.update_feature_joint(j, cptr, crow, cval, w, V, Q, e, 1.0, lam_w, 0.0, lam_v, np.zeros(k), True, False, *bufs)
    np.testing.assert_allclose(np.r_[w[j], V[j]], expect, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(e, y - fast_predict(X, 0.0, w, V), atol=1e-10)
    after = float(e @ e + lam_w * w[j] ** 2 + (lam_v * V[j] ** 2).sum())
    assert after <= before + 1e-12
    # the sampler's draws have that mean and covariance (P⁻¹) when repeated from the same state
    K.seed_numba(3)
    P = Hm.T @ Hm + np.diag(np.r_[lam_w, lam_v])
    draws = []
    for _ in range(4000):
        w2, V2, Q2, e2 = w.copy(), V.copy(), Q.copy(), e.copy()
        K.update_feature_joint(j, cptr, crow, cval, w2, V2, Q2, e2, 1.0, lam_w, 0.0, lam_v, np.zeros(k), True, True, *bufs)
        draws.append(np.r_[w2[j], V2[j]])
    draws = np.array(draws)
    np.testing.assert_allclose(draws.mean(0), expect, atol=4 * np.sqrt(np.diag(np.linalg.inv(P)).max() / 4000) + 1e-3)
    np.testing.assert_allclose(np.cov(draws.T), np.linalg.inv(P), atol=0.15 * np.abs(np.linalg.inv(P)).max())
