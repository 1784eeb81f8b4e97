"""Issue #14 item 10: an empty history is ranked by training popularity (documented), not returned
in id order with score 0."""

from __future__ import annotations

import numpy as np
import pytest

import tastebud as tb
from tastebud.data import synthetic as syn


@pytest.fixture(scope="module")
def ratings():
    R, _ = syn.low_rank_ratings(n_users=200, n_items=100, rank=3, density=0.1, random_state=0)
    return R


@pytest.mark.parametrize("make", [lambda: tb.EASE(), lambda: tb.ImplicitALS(factors=8, epochs=3, random_state=0),
                                  lambda: tb.SVDpp(factors=4, epochs=2, random_state=0)],
                         ids=["EASE", "ImplicitALS", "SVDpp"])
def test_empty_history_falls_back_to_popularity(ratings, make):
    model = make().fit(ratings)
    pop_ids, pop_sc = tb.Popularity().fit(ratings).recommend(ratings.users.ids[0], k=8, filter_seen=False)
    with pytest.warns(UserWarning, match="popularity"):
        ids, sc = model.recommend_for_history([], k=8)
    assert ids.tolist() == pop_ids.tolist()
    np.testing.assert_allclose(sc, pop_sc)
    assert len(set(sc.tolist())) > 1  # not all zeros in id order


def test_ials_history_of_unknown_items_only(ratings):
    model = tb.ImplicitALS(factors=8, epochs=3, random_state=0).fit(ratings)
    pop_ids, _ = tb.Popularity().fit(ratings).recommend(ratings.users.ids[0], k=5, filter_seen=False)
    with pytest.warns(UserWarning, match="popularity"):
        ids, _ = model.recommend_for_history(["no such item"], k=5, unknown="ignore")
    assert ids.tolist() == pop_ids.tolist()
