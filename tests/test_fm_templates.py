"""FMFeatures templates for PITF and FPMC: the design matrices they build, and a BPR-trained FM on
each learning a planted tag / next-basket structure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from tastebud.exceptions import DataError
from tastebud.models.base import Model
from tastebud.models.fm.bpr_fm import BPRFactorizationMachine
from tastebud.models.fm.templates import RankingDesign, fpmc, next_basket_frame, pitf


def test_pitf_template_builds_posts_tags_and_positives():
    df = pd.DataFrame({"user": ["a", "a", "b", "a"], "item": [1, 1, 1, 2], "tag": ["x", "y", "x", "z"]})
    t = pitf()
    d = t.fit_design(df)
    # columns: user a, b | item 1, 2 | tag x, y, z
    assert d.group_names == ["user", "item", "tag"]
    np.testing.assert_array_equal(d.groups, [0, 0, 1, 1, 2, 2, 2])
    np.testing.assert_array_equal(d.contexts.toarray(), [[1, 0, 1, 0, 0, 0, 0],     # post (a, 1)
                                                         [0, 1, 1, 0, 0, 0, 0],     # post (b, 1)
                                                         [1, 0, 0, 1, 0, 0, 0]])    # post (a, 2)
    np.testing.assert_array_equal(d.candidates.toarray(), np.hstack([np.zeros((3, 4)), np.eye(3)]))
    np.testing.assert_array_equal(d.positives.toarray(), [[1, 1, 0], [1, 0, 0], [0, 0, 1]])
    np.testing.assert_array_equal(d.candidate_ids, ["x", "y", "z"])
    X, ctx = d.flat()  # one row per (post, tag): the FM design of the paper
    np.testing.assert_array_equal(X.toarray()[0], [1, 0, 1, 0, 1, 0, 0])
    np.testing.assert_array_equal(ctx, [0, 0, 1, 2])
    # new events: unseen users give an empty user block
    C = t.context_rows(pd.DataFrame({"user": ["c"], "item": [2], "tag": [None]}))
    np.testing.assert_array_equal(C.toarray(), [[0, 0, 0, 1, 0, 0, 0]])


def test_fpmc_template_and_next_basket_frame():
    baskets = pd.DataFrame({"user": [1, 1, 1, 1, 1, 2, 2, 2],
                            "basket": [0, 0, 1, 2, 2, 0, 1, 1],
                            "item": ["p", "q", "r", "p", "s", "q", "p", "r"]})
    ev = next_basket_frame(baskets)
    assert ev.to_dict("list") == {"user": [1, 1, 1, 2, 2], "item": ["r", "p", "s", "p", "r"],
                                  "previous": [["p", "q"], ["r"], ["r"], ["q"], ["q"]]}
    t = fpmc()
    d = t.fit_design(ev)
    assert d.group_names == ["user", "previous", "item"]
    col = {name: j for j, name in enumerate(t.context.feature_names_)}
    assert set(col) == {"user=1", "user=2", "previous=p", "previous=q", "previous=r"}
    want = np.zeros((3, 8))
    for r, (user, prev) in enumerate([(1, "pq"), (1, "r"), (2, "q")]):  # the distinct contexts, in order
        want[r, col[f"user={user}"]] = 1
        for it in prev:
            want[r, col[f"previous={it}"]] = 1 / len(prev)  # FPMC's 1/|B_{t-1}|
    want[:, 5:] = 0  # next-item columns r, p, s are the candidates'
    np.testing.assert_allclose(d.contexts.toarray(), want)
    np.testing.assert_array_equal(d.candidates.toarray()[:, 5:], np.eye(3))
    np.testing.assert_array_equal(d.positives.toarray(), [[1, 0, 0], [0, 1, 1], [1, 1, 0]])
    np.testing.assert_array_equal(d.candidate_ids, ["r", "p", "s"])


def test_ranking_design_refuses_overlapping_columns():
    d = pitf().fit_design(pd.DataFrame({"user": [1], "item": [2], "tag": [3]}))
    with pytest.raises(DataError, match="disjoint"):
        RankingDesign(d.contexts, d.contexts, sp.csr_matrix(np.ones((1, 1))), d.groups, d.group_names, np.array([0]))


def planted_pitf(n_users=40, n_items=30, n_tags=25, k=3, posts=600, tags_per_post=3, seed=0):
    """Tag scores by PITF: ⟨u_t, t_u⟩ + ⟨i_t, t_i⟩; each post gets its top tags (Gumbel noise)."""
    rng = np.random.default_rng(seed)
    U, TU = rng.normal(size=(n_users, k)), rng.normal(size=(n_tags, k))
    I, TI = rng.normal(size=(n_items, k)), rng.normal(size=(n_tags, k))
    u = rng.integers(0, n_users, posts)
    i = rng.integers(0, n_items, posts)
    keep = np.unique(u * n_items + i, return_index=True)[1]
    u, i = u[keep], i[keep]
    S = U[u] @ TU.T + I[i] @ TI.T + rng.gumbel(scale=0.3, size=(len(u), n_tags))
    top = np.argsort(-S, 1)[:, :tags_per_post]
    return pd.DataFrame({"user": np.repeat(u, tags_per_post), "item": np.repeat(i, tags_per_post),
                         "tag": top.ravel()}), (u, i)


def test_bpr_fm_with_the_pitf_template_ranks_held_out_posts_tags(tmp_path):
    df, (u, i) = planted_pitf()
    posts = np.arange(len(u))
    test_posts = posts[len(u) * 4 // 5:]
    is_test = np.isin(np.repeat(posts, 3), test_posts)
    t = pitf().fit(df)
    design = t.design(df[~is_test])
    m = BPRFactorizationMachine(factors=6, epochs=60, lr=0.05, reg=1e-4, random_state=0, num_threads=1).fit(design)
    te = df[is_test]
    C = t.context_rows(te.iloc[::3])
    top, _ = m.rank(C, k=3)
    truth = te["tag"].to_numpy().reshape(-1, 3)
    prec = np.mean([len(set(a) & set(b)) / 3 for a, b in zip(top, truth)])
    assert prec > 0.5, prec  # random: 3/25
    m2 = Model.load(m.save(tmp_path / "pitf.tb"))
    np.testing.assert_array_equal(m2.rank(C, k=3)[0], top)
