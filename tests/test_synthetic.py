"""Synthetic generators: seeded, exact sizes, and the planted structure is really there."""

from __future__ import annotations

import time

import numpy as np
import pytest

import tastebud as tb
from tastebud.data import synthetic as syn


def test_low_rank_ratings_planted_rank_and_noise():
    inter, truth = syn.low_rank_ratings(60, 40, rank=3, density=1.0, noise=0.01, scale=None, random_state=1)
    assert inter.nnz == 60 * 40
    R = inter.matrix.toarray()
    resid = R - truth.global_mean - truth.user_bias[:, None] - truth.item_bias[None, :]
    s = np.linalg.svd(resid, compute_uv=False)
    assert s[2] > 20 * s[3]  # a clear gap after the planted rank
    assert s[3] < 0.01 * 2 * np.sqrt(60 + 40)  # what is left is noise


def test_low_rank_ratings_oracle_rmse_is_noise_level():
    inter, truth = syn.low_rank_ratings(400, 200, rank=4, density=0.2, noise=0.3, random_state=2)
    u, i, r, t = inter.coo()
    assert inter.nnz == int(round(0.2 * 400 * 200))
    assert r.min() >= 1 and r.max() <= 5
    oracle = np.sqrt(np.mean((truth.predict_indices(u, i) - r) ** 2))
    assert 0.2 < oracle <= 0.3 + 0.01
    base = tb.BaselinePredictor().fit(inter)
    assert np.sqrt(np.mean((base.predict(u, i) - r) ** 2)) > oracle + 0.2  # biases alone miss the factors
    assert t is not None and len(t) == inter.nnz


def test_low_rank_integer_and_seeded():
    a, _ = syn.low_rank_ratings(50, 30, integer=True, random_state=5)
    b, _ = syn.low_rank_ratings(50, 30, integer=True, random_state=5)
    c, _ = syn.low_rank_ratings(50, 30, integer=True, random_state=6)
    assert np.array_equal(a.matrix.data, np.round(a.matrix.data))
    assert (a.matrix != b.matrix).nnz == 0
    assert (a.matrix != c.matrix).nnz > 0


def test_powerlaw_exact_size_distinct_and_popularity():
    inter, truth = syn.powerlaw_implicit(3000, 800, 60_000, item_exponent=1.0, random_state=0)
    assert inter.nnz == 60_000 and inter.shape == (3000, 800)
    assert (inter.matrix.data == 1).all()  # distinct pairs, no summed duplicates
    counts = inter.item_counts()
    top = np.argsort(-truth.item_popularity)[:50]
    rest = np.argsort(-truth.item_popularity)[400:]
    assert counts[top].mean() > 10 * counts[rest].mean()
    # rank correlation between planted popularity and observed counts
    rp = np.argsort(np.argsort(-truth.item_popularity))
    rc = np.argsort(np.argsort(-counts))
    assert np.corrcoef(rp, rc)[0, 1] > 0.8


def test_powerlaw_clusters_planted():
    inter, truth = syn.powerlaw_implicit(2000, 500, 30_000, n_clusters=5, affinity=0.9, random_state=1)
    u, i, _, _ = inter.coo()
    same = (truth.user_cluster[u] == truth.item_cluster[i]).mean()
    assert same > 0.75  # vs ~0.2 without clusters
    inter0, truth0 = syn.powerlaw_implicit(2000, 500, 30_000, random_state=1)
    assert inter0.nnz == 30_000


def test_powerlaw_seeded_and_errors():
    a, _ = syn.powerlaw_implicit(100, 50, 1000, random_state=3)
    b, _ = syn.powerlaw_implicit(100, 50, 1000, random_state=3)
    assert (a.matrix != b.matrix).nnz == 0
    with pytest.raises(ValueError, match="cannot place"):
        syn.powerlaw_implicit(10, 10, 101)
    with pytest.raises(ValueError, match="n_users"):
        syn.powerlaw_implicit(0, 10, 5)
    full, _ = syn.powerlaw_implicit(10, 10, 100)
    assert full.nnz == 100


def test_powerlaw_midsize_is_fast():
    t = time.perf_counter()
    inter, _ = syn.powerlaw_implicit(20_000, 5_000, 500_000, random_state=0)
    assert inter.nnz == 500_000
    assert time.perf_counter() - t < 30  # ~1 s on a free core


@pytest.mark.slow
def test_powerlaw_full_scale():
    t = time.perf_counter()
    inter, _ = syn.powerlaw_implicit(200_000, 50_000, 5_000_000, random_state=0)
    assert inter.nnz == 5_000_000 and inter.shape == (200_000, 50_000)
    assert time.perf_counter() - t < 60


def test_planted_baskets_confidence_recovered_bruteforce():
    baskets, truth = syn.planted_baskets(20_000, 150, n_rules=4, random_state=2)
    lists = [set(b) for b in baskets]
    assert len(lists) == 20_000
    for _, rule in truth.rules.iterrows():
        A, B = rule["antecedent"], rule["consequent"]
        n_a = sum(1 for b in lists if A <= b)
        n_ab = sum(1 for b in lists if (A | B) <= b)
        n_b_without_a = sum(1 for b in lists if B <= b and not A <= b)
        assert n_b_without_a == 0
        assert rule["empirical_confidence"] == pytest.approx(n_ab / n_a)
        assert rule["empirical_support"] == pytest.approx(n_ab / len(lists))
        sd = np.sqrt(rule["confidence"] * (1 - rule["confidence"]) / n_a)
        assert abs(n_ab / n_a - rule["confidence"]) < 5 * sd
    planted = set().union(*[set(a) | set(b) for a, b in zip(truth.rules.antecedent, truth.rules.consequent)])
    assert not planted & set(truth.noise_items.tolist())


def test_planted_baskets_explicit_rules_and_errors():
    rules = [([0, 1], [2], 0.9, 0.2), ([3], [4, 5], 0.5, 0.1)]
    b, truth = syn.planted_baskets(5000, 20, rules=rules, random_state=0)
    assert truth.rules["confidence"].tolist() == [0.9, 0.5]
    assert abs(truth.rules["empirical_confidence"][0] - 0.9) < 0.05
    with pytest.raises(ValueError, match="disjoint"):
        syn.planted_baskets(100, 20, rules=[([0], [1], 0.5, 0.1), ([1], [2], 0.5, 0.1)])
    with pytest.raises(ValueError, match="need"):
        syn.planted_baskets(100, 5, n_rules=3)


def test_planted_sequences_transitions_recovered():
    seqs, truth = syn.planted_sequences(3000, 100, min_length=5, max_length=20, p_follow=0.7, random_state=0)
    lens = seqs.lengths()
    assert lens.min() >= 5 and lens.max() <= 20
    assert (truth.successor != np.arange(100)).all()
    assert len(np.unique(truth.successor)) == 100
    # brute-force transition counts: the most frequent next item is the planted successor
    C = np.zeros((100, 100))
    follow = total = 0
    for s in seqs.to_lists():
        for a, b in zip(s[:-1], s[1:]):
            C[a, b] += 1
            follow += b == truth.successor[a]
            total += 1
    assert (C.argmax(1) == truth.successor).mean() > 0.95
    expected = 0.7 + 0.3 * truth.popularity[truth.successor].mean()
    assert abs(follow / total - expected) < 0.02
    assert truth.transition_counts["total_steps"] == total
    a, _ = syn.planted_sequences(50, 20, random_state=9)
    b, _ = syn.planted_sequences(50, 20, random_state=9)
    assert a.to_lists() == b.to_lists()
    assert np.allclose(truth.next_item_probability(0).sum(), 1.0)
