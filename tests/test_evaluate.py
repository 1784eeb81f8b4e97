"""``tastebud.evaluate`` against independent computations."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import tastebud as tb
from tastebud.evaluation.evaluate import parse_metric
from tastebud.models.base import Recommender


def _data_dir() -> Path:
    d = os.environ.get("TASTEBUD_DATA")
    if not d or not (Path(d) / "ml-100k" / "u.data").is_file():
        pytest.skip("TASTEBUD_DATA with ml-100k/ is not available")
    return Path(d)


@pytest.fixture(scope="module")
def ml100k():
    return tb.datasets.load("movielens-100k", data_dir=_data_dir(), download=False)


# ---------------------------------------------------------------------- real data
def test_popularity_top10_equals_bruteforce_pandas(ml100k):
    train, test = tb.split.holdout(ml100k.interactions, test_size=0.2, per_user=True, random_state=1)
    model = tb.Popularity().fit(train)
    got = tb.evaluate(model, test, ["precision@10", "recall@10", "ndcg@10", "map@10", "mrr@10", "hit_rate@10",
                                    "coverage@10"])

    tr, te = train.to_frame(), test.to_frame()
    counts = tr.groupby("item").size()
    order_df = pd.DataFrame({"item": train.items.ids, "idx": np.arange(train.n_items)})
    order_df["count"] = order_df["item"].map(counts).fillna(0).astype(int)
    ranking = order_df.sort_values(["count", "idx"], ascending=[False, True])["item"].tolist()
    seen = tr.groupby("user")["item"].apply(set).to_dict()
    rows = []
    shown = set()
    for user, g in te.groupby("user"):
        rel = set(g["item"])
        s = seen.get(user, set())
        top = [i for i in ranking if i not in s][:10]
        shown.update(top)
        hits = [1 if i in rel else 0 for i in top]
        first = next((j for j, h in enumerate(hits) if h), None)
        ap, c = 0.0, 0
        for j, h in enumerate(hits):
            if h:
                c += 1
                ap += c / (j + 1)
        rows.append({
            "precision": sum(hits) / 10, "recall": sum(hits) / len(rel), "hit_rate": float(any(hits)),
            "mrr": 0.0 if first is None else 1 / (first + 1),
            "ndcg": sum(h / math.log2(j + 2) for j, h in enumerate(hits)) / sum(1 / math.log2(j + 2) for j in range(min(10, len(rel)))),
            "map": ap / min(10, len(rel)),
        })
    ref = pd.DataFrame(rows).mean()
    for name in ["precision", "recall", "ndcg", "map", "mrr", "hit_rate"]:
        assert got[f"{name}@10"] == pytest.approx(ref[name], abs=1e-12), name
    assert got["coverage@10"] == pytest.approx(len(shown) / train.n_items)
    # the guide's reference figure for popularity on a 20% holdout is ~0.21
    assert 0.15 < got["ndcg@10"] < 0.3


def test_baseline_rmse_on_official_folds_close_to_surprise(ml100k):
    folds = tb.split.official_folds(ml100k)
    rmses, maes = [], []
    for train, test in folds:
        model = tb.BaselinePredictor().fit(train)
        res = tb.evaluate(model, test, ["rmse", "mae"])
        u, i, r, _ = test.coo()
        pred = model.predict(test.users.ids[u], test.items.ids[i])
        assert res["rmse"] == pytest.approx(float(np.sqrt(np.mean((pred - r) ** 2))))
        rmses.append(res["rmse"])
        maes.append(res["mae"])
    # Surprise BaselineOnly (ALS, reg_u=15, reg_i=10, 10 epochs) gives about 0.944 on u1..u5
    assert abs(np.mean(rmses) - 0.944) < 0.005
    assert 0.70 < np.mean(maes) < 0.80


# ---------------------------------------------------------------------- synthetic
class ScoreTrainHigh(Recommender):
    """Scores 2 for the user's training items, 1.5 for ``favourites``, 1 otherwise."""

    registry_name = ""

    def __init__(self, favourites=None):
        self.favourites = favourites

    def fit(self, data):
        data = tb.data.as_interactions(data)
        self._set_interactions(data.users, data.items, data.matrix)
        self.fitted_ = True
        return self

    def _scores(self, user_idx):
        S = np.ones((len(user_idx), len(self.items_)), dtype=np.float32)
        fav = self.favourites[user_idx]
        S[fav.nonzero()] = 1.5
        seen = self.seen_[user_idx]
        S[seen.nonzero()] = 2.0
        return S


def test_sampled_negatives_exclude_training_and_test_items():
    inter, _ = tb.synthetic.powerlaw_implicit(200, 60, 3000, random_state=3)
    train, test = tb.split.holdout(inter, 0.3, random_state=3)
    fav = sp.csr_matrix(test.matrix)
    model = ScoreTrainHigh(favourites=fav).fit(train)
    # if a training item (score 2) or another test item (1.5, a tie counted against) were sampled as a
    # negative, the true item could not be first
    res = tb.evaluate(model, test, ["sampled_hit_rate@1", "sampled_ndcg@1", "sampled_auc"], n_negatives=20)
    assert res == {"sampled_hit_rate@1": 1.0, "sampled_ndcg@1": 1.0, "sampled_auc": 1.0}
    # the same model under full ranking excluding training items ranks test items first too
    full = tb.evaluate(model, test, ["hit_rate@1", "precision@1"])
    assert full["hit_rate@1"] == 1.0 and full["precision@1"] == 1.0


def test_sampled_reproducible_and_seeded():
    inter, _ = tb.synthetic.powerlaw_implicit(300, 80, 4000, random_state=0)
    train, test = tb.split.holdout(inter, 0.2, random_state=0)
    m = tb.Popularity().fit(train)
    a = tb.evaluate(m, test, ["sampled_ndcg@10"], random_state=5)
    b = tb.evaluate(m, test, ["sampled_ndcg@10"], random_state=5)
    c = tb.evaluate(m, test, ["sampled_ndcg@10"], random_state=6)
    assert a == b
    assert a != c


def test_relevance_threshold_and_bruteforce_on_synthetic():
    inter, _ = tb.synthetic.low_rank_ratings(80, 40, density=0.3, random_state=2)
    train, test = tb.split.holdout(inter, 0.25, random_state=2)
    m = tb.BaselinePredictor().fit(train)
    got = tb.evaluate(m, test, ["recall@5"], relevance_threshold=4.0)
    ids, _ = m.recommend(test.users.ids, k=5)
    te = test.to_frame()
    vals = []
    for row, user in enumerate(test.users.ids):
        rel = set(te[(te.user == user) & (te.rating >= 4.0)]["item"])
        if rel:
            vals.append(len(rel & set(ids[row].tolist())) / len(rel))
    assert got["recall@5"] == pytest.approx(np.mean(vals))


def test_unknown_users_and_items():
    train = tb.Interactions.from_frame(pd.DataFrame({"user": ["a", "a", "b", "c"], "item": ["x", "y", "x", "z"]}))
    test = tb.Interactions.from_frame(pd.DataFrame({"user": ["a", "b", "d"], "item": ["z", "q", "x"]}))
    m = tb.Popularity().fit(train)
    with pytest.warns(UserWarning, match="1 test user"):
        res = tb.evaluate(m, test, ["recall@2", "hit_rate@2"])
    # a: ranks y? no - seen {x, y}; candidates z -> hit. b: relevant q is unknown to the model -> miss
    assert res["recall@2"] == pytest.approx(0.5)
    assert res["hit_rate@2"] == pytest.approx(0.5)


def test_metric_names_and_errors():
    assert parse_metric("NDCG@20") == ("ndcg", 20)
    assert parse_metric("hr@5") == ("hit_rate", 5)
    assert parse_metric("recall", k=7) == ("recall", 7)
    assert parse_metric("rmse") == ("rmse", None)
    with pytest.raises(ValueError, match="unknown metric"):
        parse_metric("foo@10")
    with pytest.raises(ValueError, match="no cut-off"):
        parse_metric("rmse@10")
    inter, _ = tb.synthetic.powerlaw_implicit(50, 20, 300, random_state=1)
    train, test = tb.split.holdout(inter, 0.2, random_state=1)
    m = tb.Popularity().fit(train)
    with pytest.raises(ValueError, match="does not predict"):
        tb.evaluate(m, test, ["rmse"])
    with pytest.raises(ValueError, match="exceeds"):
        tb.evaluate(m, test, ["ndcg@500"])
    with pytest.raises(tb.NotFittedError):
        tb.evaluate(tb.Popularity(), test, ["ndcg@10"])
    out = tb.evaluate(m, test, ["ndcg@5", "recall@5", "coverage@5"])
    assert list(out) == ["ndcg@5", "recall@5", "coverage@5"]
    assert all(0 <= v <= 1 for v in out.values())
