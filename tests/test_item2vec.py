"""Item2Vec: planted groups recovered, SGNS gradient, kernel vs numpy reference, determinism,
torch export, errors, persistence, and an end-to-end run on amazon-games."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

import tastebud as tb
from tastebud.data.baskets import Baskets
from tastebud.data.sequences import Sequences
from tastebud.exceptions import DataError, UnknownIdError
from tastebud.kernels import sgns as K


def planted_groups(n_groups=5, per_group=10, n_seq=400, length=8, seed=0, as_str=True):
    """Sequences each drawn from one group: items co-occur only within their group."""
    rng = np.random.default_rng(seed)
    seqs, group = [], {}
    for s in range(n_seq):
        g = s % n_groups
        items = rng.integers(0, per_group, size=length) + g * per_group
        seqs.append([f"i{x}" if as_str else int(x) for x in items])
    for g in range(n_groups):
        for j in range(per_group):
            group[f"i{g * per_group + j}" if as_str else g * per_group + j] = g
    return seqs, group


# ---------------------------------------------------------------------- planted pattern
@pytest.mark.parametrize("mode", ["sequence", "basket"])
def test_planted_groups_nearest_neighbours(mode):
    seqs, group = planted_groups()
    m = tb.Item2Vec(factors=16, epochs=10, sample=0, mode=mode, num_threads=1, random_state=3).fit(seqs)
    assert len(m.items_) == 50
    same = 0
    total = 0
    for item in m.items_.ids:
        ids, sc = m.similar_items(item, k=5)
        assert item not in ids.tolist()
        assert np.all(np.diff(sc) <= 1e-6)
        same += sum(group[x] == group[item] for x in ids)
        total += len(ids)
    assert same == total, f"{total - same} of {total} neighbours from another group"
    # a history from one group recommends items of that group
    ids, _ = m.recommend_for_history(["i0", "i1", "i2"], k=5)
    assert all(group[x] == 0 for x in ids) and not {"i0", "i1", "i2"} & set(ids.tolist())


# ---------------------------------------------------------------------- gradient / reference
def _loss(u, V, targets):
    f = V[targets] @ u
    return -np.log(1 / (1 + np.exp(-f[0]))) - np.sum(np.log(1 / (1 + np.exp(f[1:]))))


def test_sgns_gradient_and_kernel_step_match_reference():
    rng = np.random.default_rng(0)
    syn0 = rng.normal(0, 0.5, (3, 6))
    syn1 = rng.normal(0, 0.5, (5, 6))
    w, targets, lr = 1, np.array([2, 0, 4]), 0.01
    # numerical gradient of the SGNS loss (float64, central differences)
    eps = 1e-6
    gu = np.zeros(6)
    for d in range(6):
        a, b = syn0[w].copy(), syn0[w].copy()
        a[d] += eps
        b[d] -= eps
        gu[d] = (_loss(a, syn1, targets) - _loss(b, syn1, targets)) / (2 * eps)
    gV = np.zeros_like(syn1)
    for t in targets:
        for d in range(6):
            A, B = syn1.copy(), syn1.copy()
            A[t, d] += eps
            B[t, d] -= eps
            gV[t, d] = (_loss(syn0[w], A, targets) - _loss(syn0[w], B, targets)) / (2 * eps)
    # the reference update is exactly one SGD step: x <- x - lr * dL/dx
    r0, r1 = syn0.copy(), syn1.copy()
    loss = K.sgns_pair_update_reference(r0, r1, w, targets, lr)
    assert loss == pytest.approx(_loss(syn0[w], syn1, targets), rel=1e-12)
    np.testing.assert_allclose(r0[w] - syn0[w], -lr * gu, rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(r1 - syn1, -lr * gV, rtol=1e-6, atol=1e-10)
    np.testing.assert_array_equal(np.delete(r0, w, 0), np.delete(syn0, w, 0))
    # the numba kernel's single step equals the reference (float32)
    k0, k1 = syn0.astype(np.float32), syn1.astype(np.float32)
    kl = K.sgns_pair_update(k0, k1, w, targets.astype(np.int64), lr, np.empty(6, dtype=np.float32))
    assert kl == pytest.approx(loss, rel=1e-5)
    np.testing.assert_allclose(k0, r0, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(k1, r1, rtol=1e-5, atol=1e-7)


def test_epoch_kernel_applies_reference_updates():
    """One sentence [0, 1], negatives forced to item 2 (the only item with sampling weight)."""
    rng = np.random.default_rng(1)
    syn0 = rng.normal(0, 0.3, (3, 4)).astype(np.float32)
    syn1 = rng.normal(0, 0.3, (3, 4)).astype(np.float32)
    prob, alias = K.build_alias(np.array([0.0, 0.0, 1.0]))
    k0, k1 = syn0.copy(), syn1.copy()
    n = K.sgns_epoch(k0, k1, np.array([0, 1], dtype=np.int64), np.array([0, 2], dtype=np.int64),
                     np.array([0, 1], dtype=np.int64), np.ones(3), prob, alias, 5, 1, False,
                     0.05, 1e-4, 0.0, 10.0, np.arange(1), 123, 0, 1)
    assert n == 2
    r0, r1 = syn0.astype(np.float64), syn1.astype(np.float64)
    K.sgns_pair_update_reference(r0, r1, 1, np.array([0, 2]), 0.05)  # context 1 predicts 0
    K.sgns_pair_update_reference(r0, r1, 0, np.array([1, 2]), 0.05)  # context 0 predicts 1
    np.testing.assert_allclose(k0, r0, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(k1, r1, rtol=1e-5, atol=1e-7)


def test_epoch_kernel_learning_rate_decays_by_sentence():
    """Sentence s of an epoch trains at lr0 - (lr0 - min_lr)·(before + s)/total (gensim's schedule
    when given a corpus: the fraction of sentences done), checked against reference updates."""
    rng = np.random.default_rng(2)
    syn0 = rng.normal(0, 0.3, (3, 4)).astype(np.float32)
    syn1 = rng.normal(0, 0.3, (3, 4)).astype(np.float32)
    prob, alias = K.build_alias(np.array([0.0, 0.0, 1.0]))
    corpus = np.array([0, 1, 1, 0, 0, 1, 1], dtype=np.int64)  # sentences [0 1] [1 0] [0] [1 1]
    indptr = np.array([0, 2, 4, 5, 7], dtype=np.int64)
    lr0, min_lr, before, total = 0.05, 0.01, 4.0, 6.0  # second of 1.5 "epochs" of 4 sentences
    k0, k1 = syn0.copy(), syn1.copy()
    n = K.sgns_epoch(k0, k1, corpus, indptr, np.array([0, 4], dtype=np.int64), np.ones(3), prob, alias,
                     5, 1, False, lr0, min_lr, before, total, np.arange(4), 9, 1, 1)
    assert n == 6
    r0, r1 = syn0.astype(np.float64), syn1.astype(np.float64)
    for s, pair in enumerate(((0, 1), (1, 0), None, (1, 1))):
        if pair is None:
            continue  # one item: no pair
        a, b = pair
        lr = max(min_lr, lr0 - (lr0 - min_lr) * (before + s) / total)  # s=3 -> 0.01 (floored)
        K.sgns_pair_update_reference(r0, r1, b, np.array([a, 2]), lr)  # context b predicts a
        K.sgns_pair_update_reference(r0, r1, a, np.array([b, 2]), lr)
    np.testing.assert_allclose(k0, r0, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(k1, r1, rtol=1e-5, atol=1e-7)
    assert K.learning_rate(0.025, 1e-4, 0.5) == pytest.approx(0.025 - (0.025 - 1e-4) * 0.5)
    assert K.learning_rate(0.025, 1e-4, 1.2) == 1e-4

    # rate blocks: sentences fill blocks of <= block_items items in order (gensim's jobs of
    # batch_words); a sentence that does not fit starts the next block, a longer one is its own
    lens = [3, 3, 2, 12, 1, 0, 6]
    indptr = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    expected, first, size = [], 0, 0
    for s, ln in enumerate(lens):  # plain-Python statement of gensim's job rule
        if size + ln > 7 and s > first:
            first, size = s, 0
        size += ln
        expected.append(first)
    assert expected == [0, 0, 2, 3, 4, 4, 4]
    np.testing.assert_array_equal(K.rate_blocks(indptr, 7), expected)
    np.testing.assert_array_equal(K.rate_blocks(indptr, 1), [0, 1, 2, 3, 4, 4, 6])


def test_alias_table_and_subsampling():
    w = np.array([1.0, 3.0, 0.0, 6.0]) ** 0.75
    prob, alias = K.build_alias(w)
    # exact probabilities implied by the table
    n = len(w)
    p = prob / n
    for i in range(n):
        p[alias[i]] += (1 - prob[i]) / n
    np.testing.assert_allclose(p, w / w.sum(), atol=1e-12)
    counts = np.array([1000, 10, 1, 0])
    kp = K.keep_probabilities(counts, 1e-2)
    thr = 1e-2 * counts.sum()
    assert kp[0] == pytest.approx((np.sqrt(1000 / thr) + 1) * thr / 1000)
    assert kp[1] == kp[2] == kp[3] == 1.0
    assert np.all(K.keep_probabilities(counts, 0) == 1)


# ---------------------------------------------------------------------- determinism
def test_deterministic_with_one_thread():
    seqs, _ = planted_groups(n_seq=200)
    a = tb.Item2Vec(factors=8, epochs=3, num_threads=1, random_state=7).fit(seqs)
    b = tb.Item2Vec(factors=8, epochs=3, num_threads=1, random_state=7).fit(seqs)
    c = tb.Item2Vec(factors=8, epochs=3, num_threads=1, random_state=8).fit(seqs)
    np.testing.assert_array_equal(a.item_vectors_, b.item_vectors_)
    np.testing.assert_array_equal(a.context_vectors_, b.context_vectors_)
    assert a.n_pairs_ == b.n_pairs_
    assert not np.array_equal(a.item_vectors_, c.item_vectors_)
    # several threads: same pairs drawn (per-sentence random streams), vectors equal up to races
    d = tb.Item2Vec(factors=8, epochs=3, num_threads=2, random_state=7).fit(seqs)
    assert d.n_pairs_ == a.n_pairs_
    assert np.isfinite(d.item_vectors_).all()


# ---------------------------------------------------------------------- scoring
def test_history_scores_match_bruteforce():
    seqs, _ = planted_groups(n_seq=100)
    for scoring in ("context", "cosine"):
        m = tb.Item2Vec(factors=8, epochs=2, num_threads=1, scoring=scoring, history_decay=0.6).fit(seqs)
        hist = ["i3", "i7", "i1"]
        idx = m.items_.index(hist)
        w = 0.6 ** np.arange(len(hist))[::-1]
        if scoring == "context":
            h = (w[:, None] * m.item_vectors_[idx]).sum(0) / w.sum()
            s = m.context_vectors_ @ h
        else:
            U = m.item_vectors_ / np.linalg.norm(m.item_vectors_, axis=1, keepdims=True)
            h = (w[:, None] * U[idx]).sum(0)
            s = U @ (h / np.linalg.norm(h))
        s[idx] = -np.inf
        order = np.lexsort((np.arange(len(s)), -s))[:5]
        ids, sc = m.recommend_for_history(hist, k=5)
        assert ids.tolist() == m.items_.ids[order].tolist()
        np.testing.assert_allclose(sc, s[order], rtol=1e-4, atol=1e-5)
        # without filtering, history items can come back
        ids2, _ = m.recommend_for_history(hist, k=len(m.items_), filter_seen=False)
        assert set(hist) <= set(ids2.tolist())


def test_recommend_known_users_and_batches():
    seqs, _ = planted_groups(n_seq=60)
    data = Sequences.from_lists({f"u{j}": s for j, s in enumerate(seqs)})
    m = tb.Item2Vec(factors=8, epochs=2, num_threads=1).fit(data)
    assert m.users_ == data.users
    # seen_ holds each user's items
    for u in (0, 17, 59):
        assert set(m.items_.ids[m.seen_[u].indices]) == set(seqs[u])
    ids, sc = m.recommend(["u0", "u5"], k=4)
    assert ids.shape == (2, 4)
    for r, u in enumerate((0, 5)):
        assert not set(ids[r]) & set(seqs[u])
        i1, s1 = m.recommend_for_history(seqs[u], k=4)
        assert i1.tolist() == ids[r].tolist()
        np.testing.assert_allclose(s1, sc[r], rtol=1e-6)
    # batch of histories = one call per history
    bi, bs = m.recommend_for_history([seqs[0], seqs[5][:3]], k=4)
    assert bi[1].tolist() == m.recommend_for_history(seqs[5][:3], k=4)[0].tolist()
    with pytest.raises(UnknownIdError):
        m.recommend(["nobody"], k=3)


def test_baskets_and_plain_lists():
    seqs, group = planted_groups(n_seq=200)
    b = Baskets(seqs)
    m = tb.Item2Vec(factors=8, epochs=5, mode="basket", sample=0, num_threads=1).fit(b)
    assert len(m.users_) == len(seqs) and m.seen_.shape == (len(seqs), 50)
    assert m.users_.ids.tolist() == list(range(len(seqs)))
    ids, _ = m.similar_items("i12", k=3)
    assert all(group[x] == 1 for x in ids)
    # a Sequences object or plain integer lists work too
    ints, _ = planted_groups(n_seq=50, as_str=False)
    m2 = tb.Item2Vec(factors=8, epochs=1, num_threads=1).fit(ints)
    assert m2.items_.ids.dtype.kind == "i"


def test_min_count_drops_rare_items():
    seqs = [[1, 2, 3, 1, 2], [2, 1, 3, 9], [1, 2, 1]]
    m = tb.Item2Vec(factors=4, epochs=1, min_count=2, num_threads=1).fit(seqs)
    assert sorted(m.items_.ids.tolist()) == [1, 2, 3]
    assert 9 not in m.items_
    with pytest.warns(UserWarning, match="unknown"):
        m.recommend_for_history([9, 1], k=1)


# ---------------------------------------------------------------------- errors
def test_errors():
    with pytest.raises(DataError):
        tb.Item2Vec().fit([])
    with pytest.raises(DataError):
        tb.Item2Vec().fit([[], []])
    with pytest.raises(DataError, match="two or more"):
        tb.Item2Vec().fit([[1], [2]])
    with pytest.raises(DataError):
        tb.Item2Vec(mode="basket").fit([[], []])
    for bad in (dict(factors=0), dict(window=0), dict(n_negatives=0), dict(epochs=-1), dict(sample=-1),
                dict(lr=0), dict(min_lr=1.0), dict(mode="sessions"), dict(scoring="dot"), dict(history_decay=0)):
        with pytest.raises(ValueError):
            tb.Item2Vec(**bad).fit([[1, 2]])
    m = tb.Item2Vec(factors=4, epochs=1, num_threads=1).fit([["a", "b", "c"], ["b", "c"]])
    with pytest.raises(UnknownIdError):
        m.similar_items("zzz")
    with pytest.raises(UnknownIdError):
        m.recommend_for_history(["a", "zzz"], k=1, unknown="raise")
    with pytest.warns(UserWarning, match="zzz"):
        ids, _ = m.recommend_for_history(["a", "zzz"], k=1)
    assert ids[0] in ("b", "c")
    with pytest.warns(UserWarning) as rec:
        ids, _ = m.recommend_for_history(["zzz"], k=1)
    assert any("popularity" in str(r.message) for r in rec) and any("zzz" in str(r.message) for r in rec)
    assert ids[0] in ("b", "c")  # most popular
    with pytest.raises(ValueError, match="k="):
        m.recommend_for_history(["a"], k=4)
    with pytest.raises(ValueError):
        m.recommend_for_history("a", k=1)
    with pytest.raises(tb.NotFittedError):
        tb.Item2Vec().recommend_for_history(["a"])


# ---------------------------------------------------------------------- export / persistence
def test_torch_embedding_returns_vectors():
    torch = pytest.importorskip("torch")
    seqs, _ = planted_groups(n_seq=50)
    m = tb.Item2Vec(factors=8, epochs=1, num_threads=1).fit(seqs)
    emb, idmap = m.to_torch_embedding()
    assert isinstance(emb, torch.nn.Embedding) and idmap == m.items_
    idx = idmap.index(["i4", "i40", "i0"])
    out = emb(torch.as_tensor(idx)).detach().numpy()
    np.testing.assert_array_equal(out, m.item_vectors_[idx])
    assert emb.weight.requires_grad
    emb2, _ = m.to_torch_embedding(freeze=True, padding=True)
    assert not emb2.weight.requires_grad and emb2.padding_idx == 0
    np.testing.assert_array_equal(emb2(torch.as_tensor(idx + 1)).detach().numpy(), m.item_vectors_[idx])
    assert emb2(torch.tensor([0])).abs().sum().item() == 0


def test_save_load_identical(tmp_path):
    seqs, _ = planted_groups(n_seq=80)
    data = Sequences.from_lists({f"u{j}": s for j, s in enumerate(seqs)})
    m = tb.Item2Vec(factors=8, epochs=2, num_threads=1, history_decay=0.7).fit(data)
    p = m.save(tmp_path / "i2v.tb")
    m2 = tb.load(p)
    assert isinstance(m2, tb.Item2Vec) and m2.get_params() == m.get_params()
    np.testing.assert_array_equal(m2.item_vectors_, m.item_vectors_)
    np.testing.assert_array_equal(m2.context_vectors_, m.context_vectors_)
    for a, b in zip(m.recommend(["u1", "u9"], k=5), m2.recommend(["u1", "u9"], k=5)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(m.similar_items("i3", k=4), m2.similar_items("i3", k=4)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(m.recommend_for_history(["i1", "i2"], k=4), m2.recommend_for_history(["i1", "i2"], k=4)):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------- end to end
def _games() -> Path:
    root = os.environ.get("TASTEBUD_DATA")
    if not root or not (Path(root) / "amazon-games" / "sequences.txt").exists():
        pytest.skip("TASTEBUD_DATA with amazon-games/sequences.txt not available")
    return Path(root) / "amazon-games" / "sequences.txt"


def test_end_to_end_amazon_games_slice():
    """On real sessions, an item's nearest neighbours are items bought by the same users far more
    often than random items; next-item hit rate is far above chance."""
    import scipy.sparse as sp

    seqs = Sequences.from_file(_games()).subset_users(np.arange(8000))
    lens = seqs.lengths()
    train = seqs.truncate(1)
    m = tb.Item2Vec(epochs=5, random_state=0).fit(train)
    assert np.isfinite(m.item_vectors_).all() and m.n_pairs_ > train.n_interactions
    # co-occurrence of items within a user's sequence (the signal item2vec learns)
    rows = np.repeat(np.arange(len(m.hist_indptr_) - 1), np.diff(m.hist_indptr_))
    X = sp.csr_matrix((np.ones(len(rows)), (rows, m.hist_indices_)), shape=(len(m.hist_indptr_) - 1, len(m.items_)))
    X.data[:] = 1
    C = (X.T @ X).tocsr()
    frequent = np.flatnonzero(m.item_counts_ >= 20)[:200]
    rng = np.random.default_rng(0)
    hits = rnd = 0
    for i in frequent:
        ids, _ = m.similar_items(m.items_.ids[i], k=10)
        hits += int((C[i, m.items_.index(ids)].toarray() > 0).sum())
        rnd += int((C[i, rng.integers(0, len(m.items_), 10)].toarray() > 0).sum())
    frac, frac_rnd = hits / (10 * len(frequent)), rnd / (10 * len(frequent))
    assert frac > 0.5 and frac > 3 * frac_rnd, (frac, frac_rnd)
    # next-item hit rate (leave-last-out, history items excluded) vs chance
    ev = np.flatnonzero(lens >= 2)
    targets = seqs.items.ids[seqs.indices[seqs.indptr[ev] + lens[ev] - 1]]
    hist = [seqs.items.ids[train.sequence(u)].tolist() for u in ev]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ids, _ = m.recommend_for_history(hist, k=10)
    hr = float((ids == targets[:, None]).any(1).mean())
    assert hr > 3 * 10 / len(m.items_), hr
