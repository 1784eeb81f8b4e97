"""Every metric against a loop-based brute-force reference on random cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from tastebud.evaluation import metrics as M


# ---------------------------------------------------------------------- brute-force references
def ref_user(ranked_row, rel_set, k, n_rel=None):
    R = len(rel_set) if n_rel is None else n_rel
    lst = [int(x) for x in ranked_row[:k]]
    seen, hits = set(), []
    for x in lst:
        h = x >= 0 and x in rel_set and x not in seen
        hits.append(1 if h else 0)
        if x >= 0:
            seen.add(x)
    n_hit = sum(hits)
    prec = n_hit / k
    rec = n_hit / R
    hr = 1.0 if n_hit else 0.0
    mrr = 0.0
    for j, h in enumerate(hits):
        if h:
            mrr = 1.0 / (j + 1)
            break
    dcg = sum(h / math.log2(j + 2) for j, h in enumerate(hits))
    idcg = sum(1 / math.log2(j + 2) for j in range(min(R, k)))
    ndcg = dcg / idcg
    ap, c = 0.0, 0
    for j, h in enumerate(hits):
        if h:
            c += 1
            ap += c / (j + 1)
    ap /= min(R, k)
    return {"precision": prec, "recall": rec, "hit_rate": hr, "mrr": mrr, "ndcg": ndcg, "map": ap}


def ref_all(ranked, rel_sets, k, n_rel=None):
    vals = {}
    for u, s in enumerate(rel_sets):
        R = len(s) if n_rel is None else n_rel[u]
        if R == 0:
            continue
        for name, v in ref_user(ranked[u], s, k, R).items():
            vals.setdefault(name, []).append(v)
    return {n: float(np.mean(v)) for n, v in vals.items()}


FUNCS = {"precision": M.precision_at_k, "recall": M.recall_at_k, "hit_rate": M.hit_rate_at_k,
         "mrr": M.mrr_at_k, "ndcg": M.ndcg_at_k, "map": M.map_at_k}


@st.composite
def ranking_case(draw):
    n_users = draw(st.integers(1, 8))
    n_items = draw(st.integers(1, 15))
    width = draw(st.integers(1, 12))
    ranked = np.array([[draw(st.integers(-1, n_items - 1)) for _ in range(width)] for _ in range(n_users)], dtype=np.int64)
    rel_sets = [set(draw(st.lists(st.integers(0, n_items - 1), max_size=n_items))) for _ in range(n_users)]
    if not any(rel_sets):
        rel_sets[0] = {0}
    k = draw(st.integers(1, width))
    return ranked, rel_sets, n_items, k


def to_csr(rel_sets, n_items):
    rows = [u for u, s in enumerate(rel_sets) for _ in s]
    cols = [i for s in rel_sets for i in sorted(s)]
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(rel_sets), n_items))


@settings(max_examples=200, deadline=None)
@given(ranking_case())
def test_ranking_metrics_match_bruteforce(case):
    ranked, rel_sets, n_items, k = case
    rel = to_csr(rel_sets, n_items)
    ref = ref_all(ranked, rel_sets, k)
    for name, fn in FUNCS.items():
        assert fn(ranked, rel, k) == pytest.approx(ref[name], abs=1e-12), name
    combined = M.ranking_metrics(ranked, rel, {n: [k] for n in FUNCS})
    for name in FUNCS:
        assert combined[f"{name}@{k}"] == pytest.approx(ref[name], abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(ranking_case(), st.integers(0, 5))
def test_n_relevant_override_counts_unrankable_items(case, extra):
    ranked, rel_sets, n_items, k = case
    rel = to_csr(rel_sets, n_items)
    n_rel = np.array([len(s) + (extra if s else 0) for s in rel_sets])
    ref = ref_all(ranked, rel_sets, k, n_rel)
    for name, fn in FUNCS.items():
        assert fn(ranked, rel, k, n_relevant=n_rel) == pytest.approx(ref[name], abs=1e-12), name


@settings(max_examples=100, deadline=None)
@given(ranking_case())
def test_per_user_values_and_nan_for_users_without_relevant(case):
    ranked, rel_sets, n_items, k = case
    rel = to_csr(rel_sets, n_items)
    per = M.ndcg_at_k(ranked, rel, k, reduce="none")
    for u, s in enumerate(rel_sets):
        if s:
            assert per[u] == pytest.approx(ref_user(ranked[u], s, k)["ndcg"])
        else:
            assert np.isnan(per[u])


@settings(max_examples=100, deadline=None)
@given(ranking_case())
def test_coverage_matches_set_count(case):
    ranked, _, n_items, k = case
    expected = len({int(x) for x in ranked.ravel() if x >= 0}) / n_items
    assert M.coverage(ranked, n_items) == pytest.approx(expected)


def test_rmse_mae_against_loops():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = rng.integers(1, 50)
        y, yh = rng.normal(size=n), rng.normal(size=n)
        assert M.rmse(y, yh) == pytest.approx(math.sqrt(sum((a - b) ** 2 for a, b in zip(y, yh)) / n))
        assert M.mae(y, yh) == pytest.approx(sum(abs(a - b) for a, b in zip(y, yh)) / n)


def test_rating_metric_errors():
    with pytest.raises(ValueError, match="same length"):
        M.rmse([1, 2], [1])
    with pytest.raises(ValueError, match="empty"):
        M.mae([], [])
    with pytest.raises(ValueError, match="finite"):
        M.rmse([1.0, np.nan], [1.0, 2.0])


def test_ranking_metric_errors():
    rel = sp.csr_matrix(np.eye(3))
    with pytest.raises(ValueError, match="k=5"):
        M.ndcg_at_k(np.zeros((3, 2), int), rel, 5)
    with pytest.raises(ValueError, match="outside"):
        M.ndcg_at_k(np.full((3, 2), 7), rel, 2)
    with pytest.raises(ValueError, match="rows"):
        M.ndcg_at_k(np.zeros((2, 2), int), rel, 2)
    with pytest.raises(ValueError, match="no user has a relevant"):
        M.recall_at_k(np.zeros((3, 2), int), sp.csr_matrix((3, 3)), 2)
    with pytest.raises(ValueError, match="integer"):
        M.ndcg_at_k(np.zeros((3, 2)), rel, 2)


def test_known_values():
    # one user, relevant {1, 3}; ranking [1, 0, 3]
    rel = sp.csr_matrix(np.array([[0, 1, 0, 1]]))
    r = np.array([[1, 0, 3]])
    assert M.precision_at_k(r, rel, 3) == pytest.approx(2 / 3)
    assert M.recall_at_k(r, rel, 3) == pytest.approx(1.0)
    assert M.mrr_at_k(r, rel, 3) == pytest.approx(1.0)
    assert M.ndcg_at_k(r, rel, 3) == pytest.approx((1 + 1 / 2) / (1 + 1 / math.log2(3)))
    assert M.map_at_k(r, rel, 3) == pytest.approx((1 + 2 / 3) / 2)


# ---------------------------------------------------------------------- sampled
def ref_sampled(pos, neg, k, ties):
    hr = nd = mr = auc = 0.0
    for p, ns in zip(pos, neg):
        above = sum(1 for x in ns if x > p)
        eq = sum(1 for x in ns if x == p)
        rank = {"pessimistic": above + eq, "optimistic": above, "average": above + eq / 2}[ties]
        if rank < k:
            hr += 1
            nd += 1 / math.log2(rank + 2)
            mr += 1 / (rank + 1)
        auc += 1 - rank / len(ns)
    n = len(pos)
    return {f"hit_rate@{k}": hr / n, f"ndcg@{k}": nd / n, f"mrr@{k}": mr / n, "auc": auc / n}


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 10), st.integers(1, 12), st.integers(1, 8), st.sampled_from(["pessimistic", "optimistic", "average"]),
       st.integers(0, 2**31))
def test_sampled_rank_metrics_match_bruteforce(n, m, k, ties, seed):
    rng = np.random.default_rng(seed)
    pos = rng.integers(0, 5, n).astype(float)  # small integer scores: many ties
    neg = rng.integers(0, 5, (n, m)).astype(float)
    got = M.sampled_rank_metrics(pos, neg, k, ties=ties)
    ref = ref_sampled(pos, neg, k, ties)
    for key, v in ref.items():
        assert got[key] == pytest.approx(v, abs=1e-12), key


def test_sampled_errors():
    with pytest.raises(ValueError, match="shape"):
        M.sampled_rank_metrics([1.0, 2.0], np.zeros((3, 4)))
    with pytest.raises(ValueError, match="ties"):
        M.sampled_rank_metrics([1.0], np.zeros((1, 4)), ties="random")
    with pytest.raises(ValueError, match="NaN"):
        M.sampled_rank_metrics([np.nan], np.zeros((1, 4)))
