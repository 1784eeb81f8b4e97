"""Splits: no leakage, exact sizes, determinism, shared id maps."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tastebud as tb
from tastebud.exceptions import DataError


def pairs(inter):
    u, i, r, t = inter.coo()
    return set(zip(inter.users.ids[u].tolist(), inter.items.ids[i].tolist()))


def rows(inter):
    """Multiset of full rows (user, item, rating, timestamp)."""
    df = inter.to_frame()
    return sorted(map(tuple, df.to_numpy().tolist()))


@pytest.fixture(scope="module")
def data():
    inter, _ = tb.synthetic.low_rank_ratings(120, 60, density=0.15, random_state=4)
    return inter


def assert_partition(full, train, test):
    assert train.users is full.users and test.users is full.users
    assert train.items is full.items and test.items is full.items
    assert not (pairs(train) & pairs(test)), "leak: a pair is in both train and test"
    assert sorted(rows(train) + rows(test)) == rows(full)


@settings(max_examples=25, deadline=None)
@given(st.floats(0.05, 0.95), st.integers(0, 1000), st.integers(1, 3))
def test_holdout_per_user_exact_sizes(data, test_size, seed, min_train):
    train, test = tb.split.holdout(data, test_size, per_user=True, random_state=seed, min_train=min_train)
    assert_partition(data, train, test)
    n = data.user_counts()
    expected = np.minimum(np.floor(test_size * n + 0.5 + 1e-9).astype(int), np.maximum(n - min_train, 0))
    assert np.array_equal(test.user_counts(), expected)


@settings(max_examples=25, deadline=None)
@given(st.floats(0.05, 0.95), st.integers(0, 1000))
def test_holdout_global_exact_size(data, test_size, seed):
    train, test = tb.split.holdout(data, test_size, per_user=False, random_state=seed)
    assert_partition(data, train, test)
    assert test.nnz == int(np.floor(test_size * data.nnz + 0.5 + 1e-9))


def test_holdout_deterministic_and_seeded(data):
    a = tb.split.holdout(data, 0.2, random_state=7)[1]
    b = tb.split.holdout(data, 0.2, random_state=7)[1]
    c = tb.split.holdout(data, 0.2, random_state=8)[1]
    assert pairs(a) == pairs(b)
    assert pairs(a) != pairs(c)


def test_holdout_bad_args(data):
    for bad in (0, 1, 1.5, -0.1, "0.2", True):
        with pytest.raises(ValueError, match="test_size"):
            tb.split.holdout(data, bad)


@pytest.mark.parametrize("per_user", [False, True])
def test_kfold_each_interaction_in_exactly_one_test_fold(data, per_user):
    folds = tb.split.kfold(data, 5, per_user=per_user, random_state=3)
    assert len(folds) == 5
    all_test = []
    for train, test in folds:
        assert_partition(data, train, test)
        all_test += rows(test)
    assert sorted(all_test) == rows(data)
    sizes = [t.nnz for _, t in folds]
    if per_user:  # each user's test counts differ by at most one across folds
        counts = np.stack([t.user_counts() for _, t in folds])
        assert (counts.max(0) - counts.min(0) <= 1).all()
    else:
        assert max(sizes) - min(sizes) <= 1
    again = tb.split.kfold(data, 5, per_user=per_user, random_state=3)
    assert all(pairs(a[1]) == pairs(b[1]) for a, b in zip(folds, again))


def test_kfold_errors(data):
    with pytest.raises(ValueError, match="n_folds"):
        tb.split.kfold(data, 1)


def test_temporal_cut(data):
    train, test = tb.split.temporal(data, 0.25)
    assert_partition(data, train, test)
    assert test.nnz == int(np.floor(0.25 * data.nnz + 0.5))
    assert train.timestamps.data.max() <= test.timestamps.data.min()
    cut = float(np.median(data.timestamps.data))
    tr2, te2 = tb.split.temporal(data, cutoff=cut)
    assert (te2.timestamps.data >= cut).all() and (tr2.timestamps.data < cut).all()
    assert tr2.nnz + te2.nnz == data.nnz
    tr3, te3 = tb.split.temporal(data, 0.5, drop_unknown=True)
    u, i, _, _ = te3.coo()
    assert (tr3.user_counts()[u] > 0).all() and (tr3.item_counts()[i] > 0).all()


def test_temporal_needs_timestamps():
    inter, _ = tb.synthetic.powerlaw_implicit(20, 10, 50)
    with pytest.raises(DataError, match="timestamps"):
        tb.split.temporal(inter)


def test_leave_last_out_sequences_bruteforce():
    seqs, _ = tb.synthetic.planted_sequences(60, 30, min_length=1, max_length=8, random_state=1)
    train, valid, test = tb.split.leave_last_out(seqs)
    assert train.users is seqs.users and valid.users is seqs.users and test.items is seqs.items
    lists = seqs.to_lists()
    vt, tt = valid.to_frame(), test.to_frame()
    for u, s in zip(seqs.users.ids, lists):
        row = int(seqs.users.index([u])[0])
        if len(s) >= 3:
            assert train.to_lists()[row] == s[:-2]
            assert vt[vt.user == u]["item"].tolist() == [s[-2]]
            assert tt[tt.user == u]["item"].tolist() == [s[-1]]
            assert tt[tt.user == u]["timestamp"].tolist() == [len(s) - 1]
        else:
            assert train.to_lists()[row] == s
            assert (vt.user == u).sum() == 0 and (tt.user == u).sum() == 0
    tr2, te2 = tb.split.leave_last_out(seqs, validation=False)
    for row, s in enumerate(lists):
        assert tr2.to_lists()[row] == (s[:-1] if len(s) >= 2 else s)
    assert te2.nnz == sum(len(s) >= 2 for s in lists)


def test_leave_last_out_plain_lists():
    train, valid, test = tb.split.leave_last_out([["a", "b", "c", "d"], ["x", "y"]])
    assert train.to_lists() == [["a", "b"], ["x", "y"]]
    assert valid.to_frame()["item"].tolist() == ["c"]
    assert test.to_frame()["item"].tolist() == ["d"]


def test_leave_last_out_interactions_by_timestamp():
    df = pd.DataFrame({"user": [1, 1, 1, 1, 2, 2, 3, 3, 3],
                       "item": [10, 11, 12, 13, 10, 11, 12, 10, 11],
                       "timestamp": [5, 1, 9, 3, 1, 2, 7, 7, 1]})
    inter = tb.Interactions.from_frame(df, timestamp="timestamp")
    train, valid, test = tb.split.leave_last_out(inter)
    assert pairs(test) == {(1, 12), (3, 12)}  # user 3: tie at t=7 -> larger item index counts as later
    assert pairs(valid) == {(1, 10), (3, 10)}
    assert pairs(train) == {(1, 11), (1, 13), (2, 10), (2, 11), (3, 11)}
    assert train.nnz + valid.nnz + test.nnz == inter.nnz
    tr, te = tb.split.leave_last_out(inter, validation=False)
    assert pairs(te) == {(1, 12), (2, 11), (3, 12)}
    with pytest.raises(DataError, match="timestamps"):
        tb.split.leave_last_out(tb.Interactions.from_frame(df[["user", "item"]]))


def _ml100k_dir() -> Path:
    d = os.environ.get("TASTEBUD_DATA")
    if not d or not (Path(d) / "ml-100k" / "u1.base").is_file():
        pytest.skip("TASTEBUD_DATA with ml-100k/ is not available")
    return Path(d)


def test_official_folds_match_files():
    d = _ml100k_dir()
    ds = tb.datasets.load("movielens-100k", data_dir=d, download=False)
    folds = tb.split.official_folds(ds)
    assert len(folds) == 5
    full = pairs(ds.interactions)
    union = set()
    for n, (train, test) in enumerate(folds, 1):
        assert train.users is ds.interactions.users and test.items is ds.interactions.items
        assert (train.nnz, test.nnz) == (80000, 20000)
        base = pd.read_csv(d / "ml-100k" / f"u{n}.base", sep="\t", header=None)
        tst = pd.read_csv(d / "ml-100k" / f"u{n}.test", sep="\t", header=None)
        assert pairs(train) == set(zip(base[0], base[1]))
        assert pairs(test) == set(zip(tst[0], tst[1]))
        assert not pairs(train) & pairs(test)
        union |= pairs(test)
        # ratings align with the file
        tf = test.to_frame().merge(tst, left_on=["user", "item"], right_on=[0, 1])
        assert (tf["rating"] == tf[2]).all()
    assert union == full  # the five test folds partition the data
    ua = tb.split.official_folds(ds, folds=["ua"])[0]
    assert ua[1].nnz == 9430
    with pytest.raises(DataError, match="u9"):
        tb.split.official_folds(ds, folds=["u9"])
