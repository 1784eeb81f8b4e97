"""ItemTransitions: counts vs brute force, ranking vs brute force, popularity fallback, errors,
persistence, and an end-to-end run on amazon-games."""

from __future__ import annotations

import os
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import tastebud as tb
from tastebud.data.sequences import Sequences
from tastebud.exceptions import DataError, UnknownIdError


def random_sequences(seed=0, n_users=60, n_items=15):
    rng = np.random.default_rng(seed)
    return {f"u{u}": [f"i{x}" for x in rng.integers(0, n_items, size=rng.integers(0, 9))] for u in range(n_users)}


def brute_counts(seqs):
    c = Counter()
    for s in seqs:
        for a, b in zip(s[:-1], s[1:]):
            c[(a, b)] += 1
    return c


def brute_rank(seqs, history, k, filter_seen=True):
    """Expected ranking: transition count from the last history item, ties by number of users
    holding the item, then by index (the model's id order)."""
    m = tb.ItemTransitions().fit(seqs)  # only for the id order
    ids = m.items_.ids.tolist()
    counts = brute_counts(list(seqs.values()))
    users_with = Counter(x for s in seqs.values() for x in set(s))
    known = [h for h in history if h in set(ids)]
    last = known[-1] if known else None
    key = []
    for j, it in enumerate(ids):
        if filter_seen and it in history:
            continue
        key.append((-(counts[(last, it)] if last else 0), -users_with[it], j, it))
    return [t[3] for t in sorted(key)[:k]]


def test_counts_match_bruteforce():
    seqs = random_sequences()
    m = tb.ItemTransitions().fit(seqs)
    T = m.transitions_.toarray()
    expected = brute_counts(list(seqs.values()))
    got = {(m.items_.ids[a], m.items_.ids[b]): T[a, b] for a, b in zip(*np.nonzero(T))}
    assert got == {k: float(v) for k, v in expected.items()}
    assert T.sum() == sum(max(len(s) - 1, 0) for s in seqs.values())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ranking_matches_bruteforce(seed):
    seqs = random_sequences(seed)
    m = tb.ItemTransitions().fit(seqs)
    rng = np.random.default_rng(seed + 10)
    for _ in range(10):
        hist = [f"i{x}" for x in rng.integers(0, 15, size=rng.integers(1, 5))]
        ids, sc = m.recommend_for_history(hist, k=5)
        assert ids.tolist() == brute_rank(seqs, hist, 5)
        assert np.all(np.diff(sc) <= 0)
    # known users rank from their own training history (last item), seen items excluded
    for u in ("u1", "u7", "u30"):
        if not seqs[u]:
            continue
        ids, _ = m.recommend(u, k=5)
        assert ids.tolist() == brute_rank(seqs, seqs[u], 5)


def test_popularity_fallback_and_unknown_items():
    seqs = {"a": ["x", "y", "z"], "b": ["y", "z"], "c": ["z", "w"], "d": ["z"]}
    m = tb.ItemTransitions().fit(seqs)
    # w never precedes anything: popularity order (z: 4 users, y: 2, x: 1, ...)
    ids, _ = m.recommend_for_history(["w"], k=3)
    assert ids.tolist() == ["z", "y", "x"]
    # the last *known* item counts: y -> z
    with pytest.warns(UserWarning, match="'nope'"):
        ids, _ = m.recommend_for_history(["x", "y", "nope"], k=1)
    assert ids.tolist() == ["z"]
    with pytest.raises(UnknownIdError):
        m.recommend_for_history(["y", "nope"], k=1, unknown="raise")
    with pytest.warns(UserWarning, match="popularity"):
        ids, _ = m.recommend_for_history([], k=2)
    assert ids.tolist() == ["z", "y"]
    # fewer candidates than k after filtering: padded
    ids, sc = m.recommend_for_history(["x", "y", "z"], k=4)
    assert ids.tolist()[:1] == ["w"] and ids[1] is None and np.isnan(sc[1])
    # candidates restrict the ranking
    ids, _ = m.recommend_for_history(["y"], k=2, candidates=["x", "w"])
    assert ids.tolist() == ["x", "w"]


def test_errors_and_batches():
    with pytest.raises(DataError):
        tb.ItemTransitions().fit([])
    with pytest.raises(DataError):
        tb.ItemTransitions().fit([[], []])
    m = tb.ItemTransitions().fit([[1, 2, 3], [2, 3, 1]])
    with pytest.raises(ValueError, match="k"):
        m.recommend_for_history([1], k=0)
    with pytest.raises(UnknownIdError):
        m.recommend([99], k=1)
    ids, _ = m.recommend_for_history([[1], [2], [3, 2]], k=1)
    assert ids.shape == (3, 1) and ids[:, 0].tolist() == [2, 3, 1]


def test_save_load(tmp_path):
    seqs = random_sequences(3)
    m = tb.ItemTransitions().fit(seqs)
    m2 = tb.load(m.save(tmp_path / "t.tb"))
    assert isinstance(m2, tb.ItemTransitions)
    assert (m2.transitions_ != m.transitions_).nnz == 0
    for a, b in zip(m.recommend(["u1", "u2"], k=4), m2.recommend(["u1", "u2"], k=4)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(m.recommend_for_history(["i1", "i4"], k=4), m2.recommend_for_history(["i1", "i4"], k=4)):
        np.testing.assert_array_equal(a, b)


def test_end_to_end_amazon_games():
    root = os.environ.get("TASTEBUD_DATA")
    if not root or not (Path(root) / "amazon-games" / "sequences.txt").exists():
        pytest.skip("TASTEBUD_DATA with amazon-games/sequences.txt not available")
    seqs = Sequences.from_file(Path(root) / "amazon-games" / "sequences.txt").subset_users(np.arange(10000))
    lens = seqs.lengths()
    train = seqs.truncate(1)
    ev = np.flatnonzero(lens >= 2)
    targets = seqs.items.ids[seqs.indices[seqs.indptr[ev] + lens[ev] - 1]]
    hist = [seqs.items.ids[train.sequence(u)].tolist() for u in ev]
    m = tb.ItemTransitions().fit(train)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ids, _ = m.recommend_for_history(hist, k=10)
    hr = float((ids == targets[:, None]).any(1).mean())
    pop = tb.ItemTransitions().fit(train)
    pop.transitions_ = pop.transitions_ * 0
    pids, _ = pop.recommend_for_history(hist, k=10)
    hr_pop = float((pids == targets[:, None]).any(1).mean())
    assert hr > 1.5 * hr_pop, (hr, hr_pop)
