"""RuleRecommender: brute-force scoring, exclusions, persistence, hidden-item evaluation."""

import os
from pathlib import Path

import numpy as np
import pytest

from tastebud.data.baskets import Baskets
from tastebud.data.synthetic import planted_baskets
from tastebud.models.base import Model
from tastebud.models.rules.fpgrowth import FPGrowth
from tastebud.models.rules.recommender import RuleRecommender, evaluate_hidden_item, split_baskets


def brute_scores(rules, basket, metric):
    best = {}
    for a, c, v in zip(rules["antecedents"], rules["consequents"], rules[metric]):
        (item,) = tuple(c)
        if a <= set(basket) and item not in basket:
            best[item] = max(best.get(item, -np.inf), v)
    return best


@pytest.mark.parametrize("metric", ["confidence", "lift"])
def test_scores_equal_brute_force_over_rules(metric):
    rng = np.random.default_rng(0)
    p = rng.uniform(0.05, 0.5, 12)
    bs = [np.flatnonzero(rng.random(12) < p).tolist() for _ in range(300)]
    rec = RuleRecommender(min_support=0.03, min_confidence=0.2, max_len=3, metric=metric, fill_popular=False).fit(bs)
    rules = FPGrowth(min_support=0.03, max_len=3).fit(bs).rules(min_confidence=0.2, single_consequent=True)
    assert rec.n_rules_ == len(rules)
    queries = [bs[i] for i in range(40)] + [[0], [], [1, 2, 3, 4, 5]]
    ids, scores = rec.recommend(queries, k=5)
    for q, row_ids, row_s in zip(queries, ids, scores):
        want = brute_scores(rules, q, metric)
        got = {i: s for i, s in zip(row_ids, row_s) if i is not None}
        assert not set(got) & set(q)  # basket items excluded
        expect = sorted(want.items(), key=lambda kv: -kv[1])[:5]
        assert len(got) == len(expect)
        assert sorted(got.values(), reverse=True) == pytest.approx([v for _, v in expect])
        for i, s in got.items():
            assert want[i] == pytest.approx(s)


def test_recommend_for_history_fill_and_persistence(tmp_path):
    bs = [["a", "b", "c"], ["a", "b"], ["a", "b", "d"], ["c", "d"], ["e"], ["a", "c"]]
    rec = RuleRecommender(min_support=2, min_confidence=0.5).fit(bs)
    ids, scores = rec.recommend_for_history(["a"], k=4)
    assert ids[0] == "b" and scores[0] == pytest.approx(3 / 4)  # a -> b has confidence 3/4
    assert "a" not in ids and len(ids) == 4  # filled with popular items below the rule scores
    assert (scores[1:] < scores[0]).all()
    ids2, _ = rec.recommend_for_history(["a", "unknown-item"], k=4)  # unknown items are ignored
    assert list(ids2) == list(ids)
    with pytest.raises(KeyError):
        rec.recommend([["a", "unknown-item"]], k=2, unknown="raise")
    with pytest.raises(ValueError, match="k"):
        rec.recommend([["a"]], k=0)
    path = rec.save(tmp_path / "rules.tb")
    rec2 = Model.load(path)
    i2, s2 = rec2.recommend([["a"], ["c", "d"], []], k=3)
    i1, s1 = rec.recommend([["a"], ["c", "d"], []], k=3)
    assert (i1 == i2).all() and np.array_equal(s1, s2)
    nofill = RuleRecommender(min_support=2, min_confidence=0.5, fill_popular=False).fit(bs)
    ids, scores = nofill.recommend([["e"]], k=2)
    assert ids[0, 0] is None and np.isnan(scores[0, 0])


def test_hidden_item_evaluation_beats_popularity_on_planted_rules():
    rules = [([0, 1], [2], 0.9, 0.15), ([3], [4], 0.8, 0.1), ([5, 6], [7], 0.85, 0.1)]
    b, _ = planted_baskets(n_baskets=6000, n_items=80, rules=rules, random_state=3, mean_noise_items=4.0)
    train, test = split_baskets(b, test_size=0.25, random_state=0)
    rec = RuleRecommender(min_support=0.005, min_confidence=0.3, max_len=3).fit(train)
    res = evaluate_hidden_item(rec, test, k=5, random_state=0)
    assert res["n_baskets"] > 500
    assert res["rules_hit_rate@5"] > res["popularity_hit_rate@5"] + 0.05
    assert res["rules_mrr@5"] > res["popularity_mrr@5"]


def test_groceries_end_to_end():
    root = os.environ.get("TASTEBUD_DATA")
    f = Path(root or "/nonexistent") / "groceries" / "groceries.csv"
    if not f.exists():
        pytest.skip("TASTEBUD_DATA with groceries/groceries.csv is not available")
    g = Baskets.from_file(f, sep=",")
    train, test = split_baskets(g, test_size=0.2, random_state=0)
    rec = RuleRecommender(min_support=0.002, min_confidence=0.1, max_len=3).fit(train)
    res = evaluate_hidden_item(rec, test, k=10)
    # rules add information beyond popularity: better reciprocal rank at no loss of hits
    assert res["rules_mrr@10"] > res["popularity_mrr@10"]
    assert res["rules_hit_rate@10"] >= res["popularity_hit_rate@10"] - 0.01
    ids, _ = rec.recommend_for_history(["whole milk", "yogurt"], k=10)
    assert len(ids) == 10 and "whole milk" not in ids
