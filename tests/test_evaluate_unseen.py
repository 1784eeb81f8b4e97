"""Issue #14 item 1: every relevant test item counts, including items the model has never seen."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import tastebud as tb
from tastebud.data.readers import read_ml100k_ratings


def _issue_example():
    # train users 1-3 over items 10-12; test user 1 = {12, 98, 99}, where 98 and 99 are unseen
    train = tb.Interactions.from_frame(pd.DataFrame({"user": [1, 1, 2, 2, 3, 3], "item": [10, 11, 10, 12, 11, 12]}))
    test = tb.Interactions.from_frame(pd.DataFrame({"user": [1, 1, 1], "item": [12, 98, 99]}))
    return tb.Popularity().fit(train), test


def test_two_unseen_items_count_twice_issue_example():
    model, test = _issue_example()
    got = tb.evaluate(model, test, ["recall@1", "ndcg@3", "map@3", "precision@1", "hit_rate@1", "mrr@3"])
    # R = 3; the only candidate of user 1 is item 12 (relevant), ranked first
    idcg3 = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert got["recall@1"] == pytest.approx(1 / 3, abs=1e-12)      # was 0.5
    assert got["ndcg@3"] == pytest.approx(1 / idcg3, abs=1e-12)     # 0.4693, was 0.613
    assert round(got["ndcg@3"], 4) == 0.4693
    assert got["map@3"] == pytest.approx(1 / 3, abs=1e-12)          # was 0.5
    # metrics that do not depend on R are unchanged
    assert got["precision@1"] == 1.0 and got["hit_rate@1"] == 1.0 and got["mrr@3"] == 1.0


def test_only_unseen_relevant_items_give_zero_not_a_skip():
    model, _ = _issue_example()
    test = tb.Interactions.from_frame(pd.DataFrame({"user": [1, 1, 2], "item": [98, 99, 12]}))
    got = tb.evaluate(model, test, ["recall@2", "ndcg@2"])
    # user 1 (only unseen items) scores 0 and counts; user 2 has 12 in training, so no hit either
    assert got == {"recall@2": 0.0, "ndcg@2": 0.0}


def test_sampled_metrics_count_unseen_items_as_misses():
    # 30 items; user "a" trained on 0..4, tested on 5 (known) plus two unseen items
    items = list(range(30))
    train = tb.Interactions.from_frame(pd.DataFrame({"user": ["a"] * 5 + ["b"] * 30, "item": items[:5] + items}))
    test = tb.Interactions.from_frame(pd.DataFrame({"user": ["a"] * 3, "item": [5, 1000, 1001]}))

    class Fav(tb.Popularity):
        def _scores(self, user_idx):  # the known test item scores highest
            S = np.zeros((len(user_idx), len(self.items_)), np.float32)
            S[:, self.items_.index([5])[0]] = 1.0
            return S

    m = Fav().fit(train)
    got = tb.evaluate(m, test, ["sampled_hit_rate@1", "sampled_ndcg@10", "sampled_mrr@10", "sampled_auc"],
                      n_negatives=10)
    # one case of three is a perfect hit; the two unseen items are misses
    for v in got.values():
        assert v == pytest.approx(1 / 3, abs=1e-12)


def test_ml100k_u1_popularity_recall_equals_pandas(ml100k_dir):
    # each fold file on its own, as a user would read them: test items absent from u1.base are unknown
    tr = read_ml100k_ratings(ml100k_dir / "u1.base")
    te = read_ml100k_ratings(ml100k_dir / "u1.test")
    train = tb.Interactions.from_frame(tr, rating="rating", timestamp="timestamp")
    test = tb.Interactions.from_frame(te, rating="rating", timestamp="timestamp")
    got = tb.evaluate(tb.Popularity().fit(train), test, ["recall@10"])["recall@10"]

    # independent: rank items by training count (ties: smaller item id), drop the user's training items
    counts = tr.groupby("item").size().reset_index(name="n").sort_values(["n", "item"], ascending=[False, True])
    ranking = counts["item"].tolist()
    seen = tr.groupby("user")["item"].apply(set).to_dict()
    vals = []
    for user, g in te.groupby("user"):
        if user not in seen:
            continue
        top = [i for i in ranking if i not in seen[user]][:10]
        rel = set(g["item"])
        vals.append(len(rel.intersection(top)) / len(rel))
    assert got == pytest.approx(float(np.mean(vals)), abs=1e-12)
    # the fold really has users with two or more unseen test items (the case that was wrong)
    unseen = te[~te["item"].isin(set(tr["item"]))]
    assert (unseen.groupby("user").size() >= 2).any()
