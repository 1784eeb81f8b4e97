"""Ordered-probit factorization machine (task="ordinal"): the tail-safe interval probabilities,
the cutpoint posterior's gradient and Hessian, the truncated-normal conditional of z and the
Metropolis–Hastings cutpoint step against closed forms / quadrature, and the model end to end."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy import stats
from scipy.special import log_ndtr

from tastebud.exceptions import DataError, FormatError
from tastebud.kernels import fm_ordinal as KO
from tastebud.models.base import Model
from tastebud.models.fm.factorization_machine import FactorizationMachine
from tastebud.models.fm.ordinal import CutpointSampler


def _log_interval_reference(a, b):
    """log(Φ(b) − Φ(a)) in the tail where the interval lies (scipy's log Φ)."""
    if a >= 0:
        a, b = -b, -a
    lb, la = log_ndtr(b), log_ndtr(a)
    return lb + np.log1p(-np.exp(la - lb))


@pytest.mark.parametrize("a,b", [(-np.inf, 0.3), (0.5, np.inf), (-1.0, 2.0), (3.0, 4.0), (10.0, 12.0),
                                 (-12.0, -10.0), (-np.inf, -30.0), (30.0, np.inf), (1e-3, 0.1), (-0.2, -0.1)])
def test_log_interval_and_ratios_match_scipy_in_every_tail(a, b):
    lv, ra, rb = KO.log_interval(a, b)
    ref = _log_interval_reference(a, b)
    assert lv == pytest.approx(ref, rel=1e-12, abs=1e-12)
    # φ(a)/D and φ(b)/D in logs: log φ(x) − log D
    for x, r in ((a, ra), (b, rb)):
        if np.isinf(x):
            assert r == 0.0
        else:
            assert np.log(r) == pytest.approx(stats.norm.logpdf(x) - ref, rel=1e-10, abs=1e-10)


def _tiny(seed=0, n=40, K=4):
    rng = np.random.default_rng(seed)
    yhat = rng.normal(scale=1.2, size=n)
    cls = np.clip(np.floor(yhat + rng.normal(size=n) + K / 2), 0, K - 1).astype(np.int64)
    cls[:K] = np.arange(K)  # every class present
    return yhat, cls


def test_cutpoint_objective_gradient_and_hessian_match_finite_differences():
    yhat, cls = _tiny()
    s = CutpointSampler(cls, 4, reg=0.7)
    alpha = np.array([-0.9, 0.1, -0.3])
    g, H = np.zeros(3), np.zeros((3, 3))
    f = s.objective(alpha, yhat, g, H)
    # the objective itself, by its definition
    gam = np.concatenate([[-np.inf], np.cumsum([alpha[0], *np.exp(alpha[1:])]), [np.inf]])
    ref = -sum(_log_interval_reference(gam[c] - m, gam[c + 1] - m) for m, c in zip(yhat, cls)) + 0.35 * alpha @ alpha
    assert f == pytest.approx(ref, rel=1e-12)
    h = 1e-6
    for i in range(3):
        e = np.zeros(3)
        e[i] = h
        g1, g2 = np.zeros(3), np.zeros(3)
        num = (s.objective(alpha + e, yhat, g1, np.zeros((3, 3))) - s.objective(alpha - e, yhat, g2, np.zeros((3, 3)))) / (2 * h)
        assert g[i] == pytest.approx(num, rel=1e-6, abs=1e-7)
        np.testing.assert_allclose(H[:, i], (g1 - g2) / (2 * h), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("a,b", [(-np.inf, -0.4), (-1.0, 0.5), (1.5, np.inf), (4.0, 4.5), (-9.0, -8.0), (0.2, 0.3)])
def test_latent_draws_follow_the_truncated_normal_conditional(a, b):
    """z | cutpoints, ŷ is N(ŷ, 1) truncated to the class's interval: draws by inversion against
    the closed-form truncated-normal mean and variance (and all inside the interval)."""
    rng = np.random.default_rng(1)
    n = 40000
    m = 0.3
    if not np.isfinite(a):  # class 0: (−∞, γ₀]
        gamma, cls = np.array([m + b, m + b + 1.0]), np.zeros(n, dtype=np.int64)
    elif not np.isfinite(b):  # class 2: (γ₁, ∞)
        gamma, cls = np.array([m + a - 1.0, m + a]), np.full(n, 2, dtype=np.int64)
    else:  # class 1: (γ₀, γ₁]
        gamma, cls = np.array([m + a, m + b]), np.ones(n, dtype=np.int64)
    target = np.full(n, 5.0)
    e = target - m
    KO.ordinal_resample(e, target, cls, gamma, 1.0 - rng.random(n))
    t = target - m
    assert (t >= a).all() and (t <= b).all()
    np.testing.assert_allclose(e, t)
    tn = stats.truncnorm(a, b)
    assert t.mean() == pytest.approx(tn.mean(), abs=4 * tn.std() / np.sqrt(n) + 1e-12)
    assert t.var() == pytest.approx(tn.var(), rel=0.05, abs=1e-6)


def test_cutpoint_metropolis_hastings_samples_the_posterior():
    """With ŷ fixed, the MH chain of the cutpoints has the posterior of α as its stationary law:
    its mean and spread against quadrature of the posterior on a grid (K = 3, two parameters)."""
    yhat, cls = _tiny(seed=3, n=30, K=3)
    s = CutpointSampler(cls, 3, reg=1.0)
    s.start(yhat)
    rng = np.random.default_rng(0)
    draws = []
    for it in range(6000):
        s.step(yhat, rng)
        draws.append(s.alpha.copy())
    draws = np.array(draws[200:])
    assert 0.3 < s.n_accepted / s.n_steps <= 1.0
    g0 = np.linspace(-4, 3, 281)
    g1 = np.linspace(-3, 2.5, 221)
    A0, A1 = np.meshgrid(g0, g1, indexing="ij")
    logp = np.array([[-s.objective(np.array([x, y]), yhat) for y in g1] for x in g0])
    w = np.exp(logp - logp.max())
    w /= w.sum()
    mean = np.array([(w * A0).sum(), (w * A1).sum()])
    sd = np.sqrt(np.array([(w * (A0 - mean[0]) ** 2).sum(), (w * (A1 - mean[1]) ** 2).sum()]))
    np.testing.assert_allclose(draws.mean(0), mean, atol=0.08 * sd.max() + 0.02)
    np.testing.assert_allclose(draws.std(0), sd, rtol=0.1)


def _planted_ordinal(n=3000, p=40, seed=0):
    rng = np.random.default_rng(seed)
    X = sp.random(n, p, density=0.1, format="csr", random_state=seed)
    X.data[:] = 1.0
    w = rng.normal(scale=1.0, size=p)
    V = rng.normal(scale=0.5, size=(p, 2))
    Xd = X.toarray()
    s = Xd @ w + 0.5 * (((Xd @ V) ** 2) - (Xd ** 2) @ (V ** 2)).sum(1)
    z = s + rng.normal(size=n)
    cuts = np.quantile(z, [0.15, 0.4, 0.7, 0.9])
    y = np.searchsorted(cuts, z) + 1.0  # ratings 1..5
    return X, y, s, cuts


def test_ordinal_fm_learns_a_planted_ordered_probit_and_round_trips(tmp_path):
    X, y, s, cuts = _planted_ordinal()
    tr, te = slice(0, 2400), slice(2400, None)
    m = FactorizationMachine(task="ordinal", factors=2, epochs=60, random_state=0).fit(X[tr], y[tr])
    np.testing.assert_array_equal(m.classes_, [1, 2, 3, 4, 5])
    P = m.predict_proba(X[te])
    assert P.shape == (600, 5)
    np.testing.assert_allclose(P.sum(1), 1.0, atol=1e-9)
    # Bayes-optimal accuracy and expected-rating RMSE from the true scores and cutpoints
    gam = np.concatenate([[-np.inf], cuts, [np.inf]])
    Ptrue = stats.norm.cdf(gam[None, 1:] - s[te, None]) - stats.norm.cdf(gam[None, :-1] - s[te, None])
    acc_opt = np.mean(Ptrue.argmax(1) + 1 == y[te])
    rmse_opt = np.sqrt(np.mean((Ptrue @ np.arange(1, 6) - y[te]) ** 2))
    acc = np.mean(m.predict(X[te]) == y[te])
    rmse = np.sqrt(np.mean((m.predict_expected(X[te]) - y[te]) ** 2))
    assert acc > acc_opt - 0.05, (acc, acc_opt)
    assert rmse < rmse_opt + 0.05, (rmse, rmse_opt)
    # cutpoint gaps recovered (the cutpoints are identified up to the shared shift with w0)
    gaps = np.diff(m.cutpoint_samples_.mean(0))
    np.testing.assert_allclose(gaps, np.diff(cuts), rtol=0.25)
    assert 0.2 < m.cutpoint_acceptance_ <= 1.0
    # save / load: same probabilities
    path = m.save(tmp_path / "ord.tb")
    m2 = Model.load(path)
    np.testing.assert_allclose(m2.predict_proba(X[te]), P, rtol=1e-12)


def test_ordinal_recommender_mode_predicts_expected_ratings(tmp_path):
    from tastebud.data.interactions import Interactions

    rng = np.random.default_rng(2)
    nu, ni = 60, 40
    bu, bi = rng.normal(size=nu), rng.normal(size=ni)
    u = rng.integers(0, nu, 1500)
    i = rng.integers(0, ni, 1500)
    keep = np.unique(u * ni + i, return_index=True)[1]
    u, i = u[keep], i[keep]
    z = bu[u] + bi[i] + rng.normal(size=len(u))
    r = np.searchsorted([-1.0, 0.0, 1.0], z) + 1.0
    data = Interactions.from_arrays(u, i, r)
    m = FactorizationMachine(task="ordinal", factors=2, epochs=30, random_state=0).fit(data)
    pred = m.predict(data.users.ids[:5], data.items.ids[:5])
    assert ((pred >= 1) & (pred <= 4)).all()
    ids, sc = m.recommend(data.users.ids[:3], k=5)
    assert ids.shape == (3, 5)
    m2 = Model.load(m.save(tmp_path / "ordrec.tb"))
    np.testing.assert_allclose(m2.predict(data.users.ids[:5], data.items.ids[:5]), pred)


def test_ordinal_errors():
    X = sp.csr_matrix(np.eye(4))
    with pytest.raises(ValueError, match="solver='mcmc'"):
        FactorizationMachine(task="ordinal", solver="als").fit(X, [1, 2, 3, 4])
    with pytest.raises(DataError, match="2 distinct"):
        FactorizationMachine(task="ordinal", epochs=2).fit(X, [3, 3, 3, 3])
    m = FactorizationMachine(task="regression", epochs=2).fit(X, [1.0, 2, 3, 4])
    with pytest.raises(ValueError, match="ordinal"):
        m.predict_expected(X)


def test_saved_ordinal_file_with_unordered_cutpoints_is_refused(tmp_path):
    from tastebud.persistence import read_model_file, write_model_file

    X, y, _, _ = _planted_ordinal(n=300, p=10, seed=4)
    m = FactorizationMachine(task="ordinal", factors=1, epochs=4, random_state=0).fit(X, y)
    meta, arrays = read_model_file(m.save(tmp_path / "a.tb"))
    arrays["cutpoint_samples"] = arrays["cutpoint_samples"][:, ::-1].copy()
    bad = write_model_file(tmp_path / "b.tb", meta["class"], meta["params"], arrays, meta["extra"])
    with pytest.raises(FormatError, match="cutpoint_samples"):
        Model.load(bad)


def test_against_myfm_ordered_probit_on_a_planted_problem():
    """myFM's MyFMOrderedProbit on the same data and sweeps: accuracy and expected-value RMSE
    within Monte Carlo noise of each other."""
    myfm = pytest.importorskip("myfm")
    X, y, _, _ = _planted_ordinal(n=4000, p=60, seed=7)
    tr, te = slice(0, 3200), slice(3200, None)
    m = FactorizationMachine(task="ordinal", factors=2, epochs=80, random_state=0).fit(X[tr], y[tr])
    ref = myfm.MyFMOrderedProbit(rank=2, random_seed=0).fit(X[tr], (y[tr] - 1).astype(int), n_iter=80,
                                                         n_kept_samples=72)
    Pm, Pr = m.predict_proba(X[te]), ref.predict_proba(X[te])
    acc_m, acc_r = np.mean(Pm.argmax(1) + 1 == y[te]), np.mean(Pr.argmax(1) + 1 == y[te])
    rm = np.sqrt(np.mean((Pm @ np.arange(1, 6) - y[te]) ** 2))
    rr = np.sqrt(np.mean((Pr @ np.arange(1, 6) - y[te]) ** 2))
    assert acc_m > acc_r - 0.02, (acc_m, acc_r)
    assert rm < rr + 0.02, (rm, rr)
    # the cutpoint gaps agree
    np.testing.assert_allclose(np.diff(m.cutpoint_samples_.mean(0)), np.diff(ref.cutpoint_samples.mean(0)), rtol=0.1)
