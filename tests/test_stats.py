"""Bootstrap intervals against closed forms, the paired test's false-positive rate on two models
of equal quality, Holm's correction against its definition, list-level statistics."""

import numpy as np
import pytest

from tastebud.evaluation import beyond as B
from tastebud.evaluation.stats import (ListStat, MeanStat, bootstrap_ci, bootstrap_replicates, compare_to_best, holm,
                                       paired_bootstrap, paired_wilcoxon)


def _users(n):
    return np.arange(n)


def test_bootstrap_of_a_mean_matches_the_closed_form():
    # the bootstrap distribution of a mean has variance σ̂²/n (σ̂² with divisor n); for normal data
    # the percentile interval approaches mean ± 1.96 σ̂/√n
    rng = np.random.default_rng(0)
    n = 800
    x = rng.normal(0.3, 0.2, n)
    s = MeanStat(_users(n), x)
    reps = bootstrap_replicates(s, n_boot=4000, random_state=1)
    se = x.std() / np.sqrt(n)
    assert reps.std() == pytest.approx(se, rel=0.05)
    v, lo, hi = bootstrap_ci(s, n_boot=4000, random_state=1)
    assert v == pytest.approx(x.mean())
    assert lo == pytest.approx(x.mean() - 1.959964 * se, abs=0.06 * se * 3.92)
    assert hi == pytest.approx(x.mean() + 1.959964 * se, abs=0.06 * se * 3.92)


def test_bootstrap_of_a_hit_rate_matches_the_binomial_standard_error():
    rng = np.random.default_rng(2)
    n = 600
    hits = (rng.random(n) < 0.3).astype(float)
    p = hits.mean()
    reps = bootstrap_replicates(MeanStat(_users(n), hits), n_boot=4000, random_state=3)
    assert reps.std() == pytest.approx(np.sqrt(p * (1 - p) / n), rel=0.05)


def test_weighted_and_root_statistics():
    rng = np.random.default_rng(4)
    n = 50
    v, w = rng.random(n), rng.integers(1, 10, n).astype(float)
    assert MeanStat(_users(n), v, w).point() == pytest.approx((w * v).sum() / w.sum())
    assert MeanStat(_users(n), v, w, root=True).point() == pytest.approx(np.sqrt((w * v * v).sum() / w.sum()))
    # NaN users take no part
    v2 = v.copy()
    v2[:5] = np.nan
    assert MeanStat(_users(n), v2).point() == pytest.approx(v[5:].mean())
    # with all counts 1 the replicate is the point estimate
    assert MeanStat(_users(n), v, w, root=True).on_counts(np.ones((1, n)))[0] == pytest.approx(
        MeanStat(_users(n), v, w, root=True).point())


def test_list_statistics_match_beyond_and_resampling_counts():
    rng = np.random.default_rng(5)
    ranked = rng.integers(-1, 30, (40, 5))
    for kind, fn in (("coverage", lambda r: len(np.unique(r[r >= 0])) / 30), ("gini", lambda r: B.gini(r, 30))):
        s = ListStat(_users(40), ranked, 30, kind)
        assert s.point() == pytest.approx(fn(ranked))
        C = np.zeros((1, 40))
        pick = rng.integers(0, 40, 40)
        np.add.at(C[0], pick, 1)
        assert s.on_counts(C)[0] == pytest.approx(fn(ranked[pick]))


@pytest.mark.parametrize("test", ["bootstrap", "wilcoxon"])
def test_paired_test_false_positive_rate_on_equal_models(test):
    # two models of equal quality: per-user values share the user effect, with independent noise of
    # the same law. Over repeated seeds the test must reject at most at its nominal rate.
    n, reps, alpha = 200, 200, 0.05
    rejections = 0
    for seed in range(reps):
        rng = np.random.default_rng(1000 + seed)
        user = rng.beta(2, 5, n)
        a = np.clip(user + rng.normal(0, 0.1, n), 0, 1)
        b = np.clip(user + rng.normal(0, 0.1, n), 0, 1)
        sa, sb = MeanStat(_users(n), a), MeanStat(_users(n), b)
        p = (paired_bootstrap(sa, sb, n_boot=300, random_state=seed) if test == "bootstrap" else paired_wilcoxon(sa, sb))["p"]
        rejections += p < alpha
    # nominal level plus two Monte-Carlo standard errors of a rate over 200 repetitions
    assert rejections / reps <= alpha + 2 * np.sqrt(alpha * (1 - alpha) / reps)


def test_paired_test_detects_a_real_difference():
    rng = np.random.default_rng(7)
    n = 300
    user = rng.beta(2, 5, n)
    a, b = user + 0.03 + rng.normal(0, 0.05, n), user + rng.normal(0, 0.05, n)
    r = paired_bootstrap(MeanStat(_users(n), a), MeanStat(_users(n), b), n_boot=1000)
    assert r["p"] < 0.01 and r["low"] > 0 and r["diff"] == pytest.approx(np.mean(a - b))


def test_holm_against_its_definition():
    p = np.array([0.01, 0.04, 0.03, 0.005, 0.5])
    m = len(p)
    order = np.argsort(p)
    want = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        want[i] = running
    np.testing.assert_allclose(holm(p), want)


def test_compare_to_best_marks_ties_and_losers():
    rng = np.random.default_rng(8)
    n = 400
    user = rng.beta(2, 5, n)
    stats = {"best": MeanStat(_users(n), user + 0.05 + rng.normal(0, 0.02, n)),
             "twin": MeanStat(_users(n), user + 0.05 + rng.normal(0, 0.02, n)),
             "bad": MeanStat(_users(n), user + rng.normal(0, 0.02, n))}
    df = compare_to_best(stats, n_boot=500).set_index("model")
    top = df["value"].idxmax()
    assert df.at[top, "verdict"] == "best"
    assert df.at["bad", "verdict"] == "worse"
    assert df.at["twin" if top == "best" else "best", "verdict"] == "tie"
    assert (df["low"] <= df["value"]).all() and (df["value"] <= df["high"]).all()
    # lower is better (RMSE-like): the smallest value is the best
    df2 = compare_to_best(stats, higher_is_better=False, n_boot=200).set_index("model")
    assert df2.at["bad", "verdict"] == "best"
