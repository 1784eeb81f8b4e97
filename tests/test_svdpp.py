"""SVDpp: gradient check, the O(nnz·k) lazy kernel equals Surprise's per-rating update, planted
recovery, implicit-only users, new-user fold-in, persistence, errors, ML-100K end to end."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from tastebud.data.interactions import Interactions
from tastebud.exceptions import DataError, UnknownIdError
from tastebud.kernels import sgd as K
from tastebud.models.base import Model
from tastebud.models.mf.svdpp import SVDpp

from test_mf import planted, rmse

NEWBIE = 10**6  # a user id only present in the implicit feedback


# ----------------------------------------------------------------------------- gradient check
def _svdpp_loss(theta, r, mu, reg_b, reg_f, reg_y, k, n):
    bu, bi = theta[0], theta[1]
    p, q = theta[2:2 + k], theta[2 + k:2 + 2 * k]
    Y = theta[2 + 2 * k:].reshape(n, k)
    z = Y.sum(0) / np.sqrt(n)
    err = r - (mu + bu + bi + q @ (p + z))
    return (0.5 * err ** 2 + 0.5 * reg_b * (bu ** 2 + bi ** 2) + 0.5 * reg_f * (p @ p + q @ q)
            + 0.5 * reg_y * (Y ** 2).sum())


@pytest.mark.parametrize("kernel", ["svdpp_epoch", "svdpp_epoch_hogwild", "svdpp_epoch_naive"])
def test_svdpp_step_is_negative_numerical_gradient(kernel):
    """One rating of a user whose N(u) holds 3 items (one of them the rated item)."""
    rng = np.random.default_rng(0)
    k, ni, mu, r = 4, 5, 3.3, 2.0
    lr, reg_b, reg_f, reg_y = 1e-3, 0.05, 0.02, 0.04
    P = rng.normal(0, 0.5, (1, k))
    Q = rng.normal(0, 0.5, (ni, k))
    Y = rng.normal(0, 0.5, (ni, k))
    bu, bi = np.array([0.2]), rng.normal(0, 0.3, ni)
    i, N = 2, np.array([0, 2, 4])
    theta0 = np.concatenate([[bu[0], bi[i]], P[0], Q[i], Y[N].ravel()])
    args = (np.array([0]), np.array([0, 1]), np.array([i]), np.array([r]), np.array([0]),
            np.array([0, 3]), N, mu, bu, bi, P, Q, Y, lr, lr, lr, reg_b, reg_f, reg_y)
    fn = getattr(K, kernel)
    fn(*args, 1) if kernel.endswith("hogwild") else fn(*args)
    theta1 = np.concatenate([[bu[0], bi[i]], P[0], Q[i], Y[N].ravel()])

    def f(t):
        return _svdpp_loss(t, r, mu, reg_b, reg_f, reg_y, k, len(N))

    h = 1e-6
    grad = np.array([(f(theta0 + h * e) - f(theta0 - h * e)) / (2 * h) for e in np.eye(len(theta0))])
    np.testing.assert_allclose((theta1 - theta0) / -lr, grad, rtol=1e-6, atol=1e-8)


def _random_problem(seed, nu=12, ni=15, k=5, extra_implicit=True):
    rng = np.random.default_rng(seed)
    R = sp.random(nu, ni, density=0.4, random_state=seed, format="csr")
    R.data = rng.uniform(1, 5, R.nnz)
    R.sort_indices()
    N = R.copy()
    if extra_implicit:  # N(u) ⊋ R(u): add implicit-only items
        N = (N + sp.random(nu, ni, density=0.2, random_state=seed + 1, format="csr")).tocsr()
    N.data[:] = 1
    N.sort_indices()
    P = rng.normal(0, 0.1, (nu, k))
    Q = rng.normal(0, 0.1, (ni, k))
    Y = rng.normal(0, 0.1, (ni, k))
    lens = np.diff(R.indptr)
    within = np.concatenate([rng.permutation(n) for n in lens]).astype(np.int64)
    return R, N, P, Q, Y, within, rng


@pytest.mark.parametrize("extra_implicit", [False, True])
def test_lazy_implicit_kernel_equals_per_rating_update(extra_implicit):
    """The O(nnz·k) kernel computes what Surprise's O(|R(u)|·|N(u)|·k) per-rating update does."""
    R, N, P, Q, Y, within, rng = _random_problem(3, extra_implicit=extra_implicit)
    nu, ni = R.shape
    fast = [P.copy(), Q.copy(), Y.copy(), np.zeros(nu), np.zeros(ni)]
    slow = [P.copy(), Q.copy(), Y.copy(), np.zeros(nu), np.zeros(ni)]
    for epoch in range(5):
        users = rng.permutation(nu).astype(np.int64)
        for fn, (Pp, Qq, Yy, bu, bi) in ((K.svdpp_epoch, fast), (K.svdpp_epoch_naive, slow)):
            sse = fn(users, R.indptr.astype(np.int64), R.indices.astype(np.int64), R.data, within,
                     N.indptr.astype(np.int64), N.indices.astype(np.int64), 3.0, bu, bi, Pp, Qq, Yy,
                     0.01, 0.02, 0.015, 0.03, 0.02, 0.05)
            if fn is K.svdpp_epoch:
                s_fast = sse
            else:
                s_slow = sse
        assert s_fast == pytest.approx(s_slow, rel=1e-10)
    for a, b in zip(fast, slow):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_matches_surprise_svdpp_rmse():
    surprise = pytest.importorskip("surprise")
    train, test = planted(n_users=150, n_items=100, density=0.2, noise=0.3, seed=5)
    train["rating"] = train.rating.clip(1, 5)
    test["rating"] = test.rating.clip(1, 5)
    data = surprise.Dataset.load_from_df(train[["user", "item", "rating"]], surprise.Reader(rating_scale=(1, 5)))
    algo = surprise.SVDpp(random_state=0).fit(data.build_full_trainset())
    ref = rmse(test.rating, [algo.predict(u, i).est for u, i in zip(test.user, test.item)])
    ours = rmse(test.rating, SVDpp(random_state=0).fit(train).predict(test.user, test.item))
    assert ours < ref + 0.02, (ours, ref)


# ----------------------------------------------------------------------------- learning
def test_planted_low_rank_recovered_near_noise_level():
    train, test = planted(noise=0.1)
    m = SVDpp(factors=3, epochs=150, lr=0.01, reg=0.005, shuffle=True, random_state=0, clip=False).fit(train)
    err = rmse(test.rating, m.predict(test.user, test.item))
    assert err < 0.2, err


def test_history_hogwild_and_determinism():
    train, test = planted()
    a = SVDpp(factors=5, epochs=5, random_state=1, shuffle=True).fit(train, valid=test)
    b = SVDpp(factors=5, epochs=5, random_state=1, shuffle=True).fit(train, valid=test)
    np.testing.assert_array_equal(a.implicit_factors_, b.implicit_factors_)
    assert a.history_["valid_rmse"] == b.history_["valid_rmse"]
    tr = a.history_["train_rmse"]
    assert all(y < x for x, y in zip(tr, tr[1:]))
    c = SVDpp(factors=5, epochs=5, random_state=1, shuffle=True, parallel=True, num_threads=1).fit(train)
    np.testing.assert_array_equal(a.user_factors_, c.user_factors_)
    d = SVDpp(factors=5, epochs=5, random_state=1, parallel=True, num_threads=2).fit(train)
    assert abs(rmse(test.rating, d.predict(test.user, test.item)) - rmse(test.rating, a.predict(test.user, test.item))) < 0.02


def test_prediction_rule_and_implicit_only_user():
    train, test = planted()
    implicit = pd.DataFrame({"user": [NEWBIE] * 4 + [train.user[0]], "item": list(train.item[:4]) + [train.item[7]]})
    m = SVDpp(factors=4, epochs=5, random_state=0, clip=False).fit(train, implicit=implicit)
    # a rated user: r̂ = μ + bᵤ + bᵢ + qᵢ·(pᵤ + |N(u)|^-½ Σ yⱼ), N(u) = rated items ∪ implicit ones
    u0 = train.user[0]
    ui = m.users_.index([u0])[0]
    Nu = m.items_.index(sorted(set(train.item[train.user == u0]) | {train.item[7]}))
    z = m.implicit_factors_[Nu].astype(np.float64).sum(0) / np.sqrt(len(Nu))
    i = m.items_.index([train.item[3]])[0]
    exp = m.global_mean_ + m.user_bias_[ui] + m.item_bias_[i] + m.item_factors_[i] @ (m.user_factors_[ui] + z)
    assert m.predict(u0, train.item[3]) == pytest.approx(exp, rel=1e-5)
    # a user known only by implicit feedback: pᵤ = bᵤ = 0
    zn = m.implicit_factors_[m.items_.index(list(train.item[:4]))].astype(np.float64).sum(0) / 2.0
    exp_new = m.global_mean_ + m.item_bias_[i] + m.item_factors_[i] @ zn
    assert m.predict(NEWBIE, train.item[3]) == pytest.approx(exp_new, rel=1e-5)
    assert m.predict_for_history(list(train.item[:4]), [train.item[3]])[0] == pytest.approx(exp_new, rel=1e-5)
    # recommending for the implicit-only user equals fold-in from the same history
    a = m.recommend(NEWBIE, k=5)
    b = m.recommend_for_history(list(train.item[:4]), k=5)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1], rtol=1e-5)
    assert not set(train.item[:4]) & set(a[0].tolist())


def test_save_load_identical(tmp_path):
    train, test = planted()
    implicit = pd.DataFrame({"user": [NEWBIE] * 3, "item": list(train.item[:3])})
    m = SVDpp(factors=4, epochs=3, random_state=0).fit(train, implicit=implicit)
    m.save(tmp_path / "svdpp.tb")
    m2 = Model.load(tmp_path / "svdpp.tb")
    users = list(test.user) + [NEWBIE]
    items = list(test.item) + [train.item[5]]
    np.testing.assert_array_equal(m.predict(users, items), m2.predict(users, items))
    np.testing.assert_array_equal(m.recommend([NEWBIE, train.user[1]], k=5)[0], m2.recommend([NEWBIE, train.user[1]], k=5)[0])
    np.testing.assert_array_equal(m.recommend_for_history([train.item[9]], k=4)[1], m2.recommend_for_history([train.item[9]], k=4)[1])


def test_bad_input_errors():
    train, _ = planted()
    bad = train.copy()
    bad.loc[0, "rating"] = np.inf
    with pytest.raises(DataError):
        SVDpp().fit(bad)
    empty = Interactions.from_arrays(np.array([], dtype=np.int64), np.array([], dtype=np.int64), np.array([]))
    with pytest.raises(DataError, match="empty|no ratings"):
        SVDpp().fit(empty)
    with pytest.raises(ValueError, match="reg"):
        SVDpp(reg=-0.1).fit(train)
    m = SVDpp(factors=3, epochs=1, random_state=0).fit(train)
    with pytest.raises(ValueError, match="k="):
        m.recommend([train.user[0]], k=10_000)
    with pytest.raises(ValueError, match="k="):
        m.recommend_for_history([train.item[0]], k=10_000)
    with pytest.raises(UnknownIdError):
        m.recommend(["ghost"], k=3)
    with pytest.raises(UnknownIdError):
        m.recommend_for_history(["no such item"], k=3)
    with pytest.raises(ValueError, match="history is empty"):
        m.predict_for_history([], [train.item[0]])
    with pytest.warns(UserWarning, match="popularity"):  # recommending for an empty history: by popularity
        ids, _ = m.recommend_for_history([], k=3)
    assert ids.tolist() == m.items_.ids[np.lexsort((np.arange(m.n_items), -m.item_counts_))[:3]].tolist()


# ----------------------------------------------------------------------------- real data
def test_ml100k_u1_end_to_end(ml100k_u1):
    _, train, test = ml100k_u1
    m = SVDpp(random_state=0).fit(train)
    err = rmse(test.rating, m.predict(test.user, test.item))
    assert err < 0.945, err  # Surprise SVDpp (same defaults) ≈ 0.93 on u1
    assert m.n_fallbacks_ > 0
