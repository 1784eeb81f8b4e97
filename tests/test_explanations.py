"""Model explanations (issue #19 item 4), checked against brute force: contributions add up to the
score the model serves, the rule named is the best kept rule inside the basket, attention weights
reproduce the attention layer's output."""

import itertools

import numpy as np
import pandas as pd
import pytest

import tastebud as tb


@pytest.fixture(scope="module")
def topn():
    rng = np.random.default_rng(0)
    n_users, n_items = 60, 40
    rows = [(u, i) for u in range(n_users) for i in rng.choice(n_items, 8, replace=False)]
    df = pd.DataFrame(rows, columns=["user", "item"]).assign(rating=rng.integers(1, 5, len(rows)).astype(float))
    return tb.Interactions.from_frame(df, rating="rating")


def test_implicit_als_contributions_sum_to_the_fold_in_score(topn):
    m = tb.ImplicitALS(factors=8, epochs=5, reg=0.1, alpha=2.0, solver="cholesky", random_state=0).fit(topn)
    hist, w = [1, 5, 7, 11], [1.0, 3.0, 0.5, 2.0]
    ids, sc = m.recommend_for_history(hist, k=5, weights=w)
    ex = m.explain_history(hist, ids, weights=w)
    assert [e["item"] for e in ex] == ids.tolist()
    for e, s in zip(ex, sc):
        vals = [c["value"] for c in e["contributions"]]
        assert sorted(c["item"] for c in e["contributions"]) == sorted(hist)
        assert sum(vals) == pytest.approx(float(s), rel=1e-4, abs=1e-5)
        assert vals == sorted(vals, reverse=True)
    # brute force: the contribution of j is the score change of a linear solve with only j's right-hand side
    Y = m.item_factors_.astype(np.float64)
    idx = m.items_.index(hist)
    c = 1 + m.alpha * np.asarray(w)
    A = Y.T @ Y + m.reg * np.eye(8) + sum((cj - 1) * np.outer(Y[j], Y[j]) for j, cj in zip(idx, c))
    t = m.items_.index([ids[0]])[0]
    for j, cj in zip(idx, c):
        want = Y[t] @ np.linalg.solve(A, cj * Y[j])
        got = next(x["value"] for x in ex[0]["contributions"] if x["item"] == m.items_.ids[j])
        assert got == pytest.approx(want, rel=1e-6, abs=1e-9)


def test_ease_contributions_sum_to_the_score(topn):
    m = tb.EASE(reg=10.0).fit(topn)
    hist = [2, 3, 9]
    ids, sc = m.recommend_for_history(hist, k=4)
    for e, s in zip(m.explain_history(hist, ids), sc):
        assert sum(c["value"] for c in e["contributions"]) == pytest.approx(float(s), rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("scoring", ["context", "cosine"])
def test_item2vec_contributions_sum_to_the_score(scoring):
    rng = np.random.default_rng(1)
    seqs = [list(rng.choice(30, 10)) for _ in range(80)]
    m = tb.Item2Vec(factors=8, epochs=2, scoring=scoring, num_threads=1, random_state=0).fit(seqs)
    hist = [int(seqs[0][0]), int(seqs[0][1]), int(seqs[0][2])]
    ids, sc = m.recommend_for_history(hist, k=5)
    ex = m.explain_history(hist, ids)
    for e, s in zip(ex, sc):
        assert sum(c["value"] for c in e["contributions"]) == pytest.approx(float(s), rel=1e-4, abs=1e-5)
        for c in e["contributions"]:
            U = m.item_vectors_[m.items_.index([c["item"], e["item"]])].astype(np.float64)
            assert c["similarity"] == pytest.approx(U[0] @ U[1] / np.linalg.norm(U[0]) / np.linalg.norm(U[1]), rel=1e-5)


def test_rule_explanation_is_the_best_rule_inside_the_basket():
    baskets = [["a", "b", "c"], ["a", "b"], ["a", "c"], ["b", "c", "d"], ["a", "b", "d"], ["a", "b", "c", "d"],
               ["c", "d"], ["a", "d"], ["b", "d"], ["a", "b", "c"]] * 3
    m = tb.RuleRecommender(min_support=0.05, min_confidence=0.1).fit(baskets)
    basket = ["a", "b"]
    ids, sc = m.recommend([basket], k=2)
    rules = m.rules()
    for e, s in zip(m.explain(basket, ids[0]), sc[0]):
        r = e["rule"]
        assert r["confidence"] == pytest.approx(s)
        # brute force over the rules table: antecedent inside the basket, this consequent, best confidence
        cand = rules[rules["consequents"].apply(lambda c: c == frozenset([e["item"]]))
                     & rules["antecedents"].apply(lambda a: a <= frozenset(basket))]
        best = cand.sort_values("confidence", ascending=False).iloc[0]
        assert r["confidence"] == pytest.approx(best["confidence"])
        assert r["lift"] == pytest.approx(best["lift"])
        assert r["support"] == pytest.approx(best["support"])
        assert frozenset(r["antecedent"]) <= frozenset(basket) and r["consequent"] == e["item"]


def test_fm_terms_sum_to_predict_and_pairwise_terms_are_brute_force():
    rng = np.random.default_rng(2)
    df = pd.DataFrame({"user": rng.integers(0, 15, 300), "item": rng.integers(0, 20, 300),
                       "rating": rng.integers(1, 6, 300).astype(float)})
    inter = tb.Interactions.from_frame(df, rating="rating", duplicates="mean")
    m = tb.FactorizationMachine(factors=4, solver="mcmc", epochs=20, implicit="user", random_state=0).fit(inter)
    u, i = int(inter.users.ids[0]), int(inter.items.ids[3])
    e = m.explain_pair(u, i)
    total = e["bias"] + sum(t["value"] for t in e["linear"]) + sum(t["value"] for t in e["pairwise"])
    assert total == pytest.approx(float(m.predict([u], [i])[0]), rel=1e-6, abs=1e-9)
    assert e["score"] == pytest.approx(total)
    # brute-force pairwise term over samples for the two one-hot features
    x = m._pair_design(m.users_.index([u]), m.items_.index([i]))
    J = x.indices
    ju = J[0]
    ji = [j for j in J if m.groups_[j] == m.group_names_.index("item")][0]
    want = np.mean([V[ju] @ V[ji] for _, _, V in m._samples()])
    got = next(t["value"] for t in e["pairwise"] if set(t["features"]) == {f"user={u}", f"item={i}"})
    assert got == pytest.approx(want, rel=1e-6)
    short = m.explain_pair(u, i, top=2)
    assert len(short["pairwise"]) == 2
    assert short["bias"] + sum(t["value"] for t in short["linear"] + short["pairwise"]) + short["rest"] == pytest.approx(total)


def test_sasrec_attention_weights_reproduce_the_layer_output():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    seqs = {u: list(rng.choice(25, 12)) for u in range(40)}
    m = tb.SASRec(hidden=16, layers=2, max_len=8, epochs=1, random_state=0, num_threads=1, verbose=False).fit(seqs)
    hist = [int(x) for x in seqs[0][:5]]
    ex = m.explain_history(hist)
    assert ex["items"] == hist and len(ex["layers"]) == 2
    for w in ex["layers"]:
        assert sum(w) == pytest.approx(1.0, abs=1e-5) and min(w) >= 0
    # the weights applied to the values must give the attention module's own output
    outs = []
    block = m.net_.blocks[-1].attn
    h = block.register_forward_hook(lambda mod, a, o: outs.append((a, o)))
    try:
        with torch.no_grad():
            m.net_(torch.as_tensor(np.asarray(m.items_.index(hist))[None, :] + 1))
    finally:
        h.remove()
    (q_in, kv_in, _), o = outs[-1]
    v = block.v(kv_in)[0]
    w = torch.as_tensor(ex["weights"], dtype=v.dtype)
    if block.heads == 1:
        got = block.out((w[:, None] * v).sum(0))
        np.testing.assert_allclose(got.detach().numpy(), o[0, -1].detach().numpy(), rtol=1e-4, atol=1e-5)
