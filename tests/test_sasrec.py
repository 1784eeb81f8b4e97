"""SASRec: architecture invariants (causality, padding, ALBERT parameter counts), training,
in-context recommendation for new users, persistence."""

from __future__ import annotations

import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import tastebud  # noqa: E402
from tastebud.data.interactions import Interactions  # noqa: E402
from tastebud.data.sequences import Sequences  # noqa: E402
from tastebud.exceptions import UnknownIdError  # noqa: E402
from tastebud.models.sequential.sasrec import SASRec  # noqa: E402
from tastebud.models.sequential.sasrec_nn import SASRecNet, SequenceDataset, left_pad  # noqa: E402

pytestmark = pytest.mark.torch

# the planted-pattern tests check the network and its losses: random initialisation and no
# internal hold-out (the defaults start from Item2Vec and hold out users' last items)
PLAIN = dict(init="random", validation_fraction=0)


def _net(**kw) -> SASRecNet:
    torch.manual_seed(0)
    args = dict(n_items=30, hidden=16, layers=2, heads=2, max_len=12, dropout=0.0)
    args.update(kw)
    return SASRecNet(**args).eval()


def _block_params(hidden: int) -> int:
    # 2 layer norms (2H each) + q,k,v,out (H² + H each) + FFN fc1, fc2 (H² + H each)
    return 2 * 2 * hidden + 6 * (hidden * hidden + hidden)


def _cycles(n_users: int = 40, n_items: int = 12, length: int = 10, seed: int = 0) -> list[list[str]]:
    """Deterministic planted pattern: item j is always followed by item j+1 (mod n_items)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_users):
        start = int(rng.integers(n_items))
        out.append([f"i{(start + t) % n_items}" for t in range(length)])
    return out


# ---------------------------------------------------------------------------- network invariants
@pytest.mark.parametrize("share", [False, True])
def test_causality_earlier_outputs_unchanged(share):
    net = _net(share_layers=share)
    rng = np.random.default_rng(1)
    seq = torch.as_tensor(rng.integers(1, 31, size=(3, 12)))
    base = net(seq)
    for t in range(12):
        alt = seq.clone()
        alt[:, t] = (alt[:, t] % 30) + 1  # a different real item at position t
        out = net(alt)
        if t > 0:
            assert torch.equal(out[:, :t], base[:, :t]), f"outputs before position {t} changed"
        assert not torch.allclose(out[:, t], base[:, t]), "the changed position itself must change"


def test_padding_invariance():
    net = _net(embedding_dim=8)
    hist = np.array([5, 3, 17, 2, 9])
    short = torch.as_tensor(left_pad([hist + 0], 12))                 # width 5, no padding
    padded = torch.as_tensor(left_pad([hist, np.arange(1, 12)], 12))[:1]  # width 11, 6 pads
    full = torch.zeros(1, 12, dtype=torch.long)
    full[0, -5:] = torch.as_tensor(hist)                                # width 12, 7 pads
    s1, s2, s3 = net.score_all(short), net.score_all(padded), net.score_all(full)
    torch.testing.assert_close(s1, s2, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(s1, s3, rtol=1e-5, atol=1e-5)
    # and all positions (not only the last) agree
    torch.testing.assert_close(net(short)[0], net(full)[0, -5:], rtol=1e-5, atol=1e-5)
    # an all-padding row stays finite
    assert torch.isfinite(net(torch.zeros(2, 4, dtype=torch.long))).all()


def test_recency_positions_are_the_first_positions_reversed():
    """For an n-item history, recency position of item t is n-1-t and "first" position is t: a
    "first" net whose position table is the recency net's, reversed over rows 0..n-1, must give
    identical outputs (with and without left padding)."""
    rec = _net(positions="recency")
    fst = _net(positions="first")
    hist = np.array([5, 3, 17, 2, 9])
    n = len(hist)
    state = {k: v.clone() for k, v in rec.state_dict().items()}
    state["pos_emb.weight"][:n] = rec.state_dict()["pos_emb.weight"][:n].flip(0)
    fst.load_state_dict(state)
    for width in (n, 9):
        seq = torch.zeros(1, width, dtype=torch.long)
        seq[0, -n:] = torch.as_tensor(hist)
        torch.testing.assert_close(fst(seq)[0, -n:], rec(seq)[0, -n:], rtol=1e-5, atol=1e-5)
    # and the two encodings really differ on the unmodified weights
    assert not torch.allclose(_net(positions="first")(seq), rec(seq))


def test_shared_layers_have_exactly_one_block():
    H, n_items, L = 16, 30, 12
    shared = _net(share_layers=True, layers=4)
    plain = _net(share_layers=False, layers=4)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    emb = (n_items + 1) * H + L * H + 2 * H  # item table + positions + final layer norm
    assert count(shared) == emb + _block_params(H)
    assert count(plain) == emb + 4 * _block_params(H)
    assert len(shared.blocks) == 1
    # sharing really reuses the weights: perturbing the one block changes every layer's input
    shared_2 = _net(share_layers=True, layers=2)
    assert count(shared_2) == count(shared)


def test_factorized_embedding_parameter_count():
    H, E, n_items = 16, 4, 30
    fact = _net(embedding_dim=E)
    full = _net()
    table = lambda m: sum(p.numel() for p in m.item_emb.parameters())  # noqa: E731
    assert table(fact) == (n_items + 1) * E + E * H
    assert table(full) == (n_items + 1) * H
    total_diff = sum(p.numel() for p in full.parameters()) - sum(p.numel() for p in fact.parameters())
    assert total_diff == (n_items + 1) * H - ((n_items + 1) * E + E * H)
    # the factorized output embedding is exactly W e_i
    h = torch.randn(3, H)
    with torch.no_grad():
        M = fact.item_emb.proj(fact.item_emb.table.weight)
    torch.testing.assert_close(fact.item_emb.score(h), h @ M.T, rtol=1e-5, atol=1e-5)


def test_dataset_left_padded_with_valid_negatives():
    seqs = [np.array([1, 2, 3, 4]), np.array([5, 6]), np.array([7])]
    ds = SequenceDataset(seqs, n_items=10, max_len=5, n_negatives=3, seed=0)
    assert len(ds) == 2  # a one-item sequence has no training pair
    inp, tgt, neg = ds[0]
    assert inp.tolist() == [0, 0, 1, 2, 3] and tgt.tolist() == [0, 0, 2, 3, 4]
    assert neg.shape == (5, 3)
    assert (neg[:2] == 0).all() and not np.isin(neg[2:].numpy(), [1, 2, 3, 4]).any() and (neg[2:] >= 1).all()
    ds.set_epoch(0)
    assert torch.equal(ds[0][2], neg)  # same (seed, epoch, index) -> same negatives


# ---------------------------------------------------------------------------- model
def _accuracy(m: SASRec, n_hist: int, n_items: int = 30) -> float:
    hits = [m.recommend_for_history([f"i{(j + t) % n_items}" for t in range(n_hist)], k=1)[0][0] == f"i{(j + n_hist) % n_items}"
            for j in range(n_items)]
    return float(np.mean(hits))


@pytest.mark.parametrize("positions", ["recency", "first"])
def test_overfits_tiny_planted_sequences_ce(positions):
    seqs = _cycles(n_users=48, n_items=30, length=8)
    if positions == "recency":
        # with recency positions the newest item always sits at position 0; give training short
        # sequences too, so that short histories at position 0 are in the training distribution
        seqs += [s[:n] for n in (2, 3) for s in _cycles(n_users=48, n_items=30, length=8, seed=n)]
    m = SASRec(hidden=16, layers=1, max_len=10, dropout=0.0, epochs=15, lr=1e-2, batch_size=16, loss="ce",
               positions=positions, num_threads=1, verbose=False, **PLAIN).fit(seqs)
    assert m.history_[-1]["loss"] < 0.1 * m.history_[0]["loss"]
    # the next item after a history of any length is recovered (with positions counted from the
    # first item, a one-item history is exactly the first training position)
    for n in (1, 2, 5, 7):
        assert _accuracy(m, n) == 1.0, n


def test_overfits_tiny_planted_sequences_bce():
    seqs = _cycles(n_users=48, n_items=30, length=8)
    m = SASRec(hidden=16, layers=1, max_len=10, dropout=0.0, epochs=30, lr=1e-2, batch_size=16, n_negatives=8,
               num_threads=1, verbose=False, **PLAIN).fit(seqs)
    assert m.history_[-1]["loss"] < 0.2 * m.history_[0]["loss"]
    # sampled negatives come only from items outside the user's sequence, so early positions are
    # less constrained than under the full softmax; long histories are recovered
    assert _accuracy(m, 7) >= 0.9 and _accuracy(m, 5) >= 0.8 and _accuracy(m, 2) > 0.2


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(3)
    seqs = {f"u{u}": [int(x) for x in rng.integers(0, 25, size=int(rng.integers(2, 9)))] for u in range(30)}
    m = SASRec(hidden=16, layers=2, heads=2, max_len=8, epochs=2, batch_size=8, num_threads=1, verbose=False,
               embedding_dim=8, share_layers=True)
    return m.fit(seqs), seqs


def test_recommend_for_history_equals_recommend(fitted):
    m, seqs = fitted
    for u in ["u0", "u7", "u19"]:
        np.testing.assert_array_equal(m.history(u), seqs[u])
        ids_a, sc_a = m.recommend(u, k=5)
        ids_b, sc_b = m.recommend_for_history(seqs[u], k=5)
        np.testing.assert_array_equal(ids_a, ids_b)
        np.testing.assert_allclose(sc_a, sc_b, rtol=1e-6)
        assert not set(ids_a.tolist()) & set(seqs[u])  # history excluded
    ids, _ = m.recommend_for_history(seqs["u0"], k=5, filter_seen=False)
    assert len(ids) == 5


def test_unknown_items_skipped_or_rejected(fitted):
    m, seqs = fitted
    hist = seqs["u3"]
    with pytest.warns(UserWarning, match="unknown"):
        ids_w, sc_w = m.recommend_for_history([999, *hist, 1234], k=4)
    ids, sc = m.recommend_for_history(hist, k=4)
    np.testing.assert_array_equal(ids_w, ids)
    np.testing.assert_allclose(sc_w, sc)
    with pytest.raises(UnknownIdError):
        m.recommend_for_history([999, *hist], k=4, unknown="raise")
    with pytest.raises(UnknownIdError):
        m.recommend("nobody", k=3)
    with pytest.raises(ValueError, match="k="):
        m.recommend_for_history(hist, k=10_000)


def test_save_load_identical(fitted, tmp_path):
    m, seqs = fitted
    p = tmp_path / "sasrec.tb"
    m.save(p)
    m2 = tastebud.load(str(p))
    assert isinstance(m2, SASRec) and m2.get_params() == m.get_params()
    users = list(seqs)
    a, b = m.recommend(users, k=5), m2.recommend(users, k=5)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(m.history_scores([[1, 2, 3]]), m2.history_scores([[1, 2, 3]]))
    assert m2.n_parameters() == m.n_parameters()


def test_validation_early_stopping_and_history_append():
    seqs = _cycles(n_users=30, length=8)
    full = Sequences.from_lists(seqs)
    train = full.truncate(2)
    valid = {u: seqs[u][-2] for u in range(len(seqs))}
    m = SASRec(hidden=16, layers=1, max_len=8, dropout=0.0, epochs=6, patience=2, lr=5e-3, batch_size=8,
               num_threads=1, verbose=False).fit(train, valid=valid)
    assert all("val_ndcg@10" in r for r in m.history_)
    assert 1 <= m.best_epoch_ <= len(m.history_)
    # stored history = training sequence + validation item (the test reads seq[:-1])
    np.testing.assert_array_equal(m.history(4), seqs[4][:-1])
    best = max(r["val_ndcg@10"] for r in m.history_)
    assert m.history_[m.best_epoch_ - 1]["val_ndcg@10"] == best


def test_fit_on_interactions_with_timestamps():
    users = ["a", "a", "a", "b", "b", "b"]
    items = ["x", "y", "z", "y", "z", "x"]
    ts = [3, 1, 2, 5, 6, 7]
    inter = Interactions.from_arrays(users, items, timestamps=ts)
    m = SASRec(hidden=8, max_len=4, epochs=1, num_threads=1, verbose=False).fit(inter)
    assert m.history("a").tolist() == ["y", "z", "x"]
    assert set(m.users_.ids.tolist()) == {"a", "b"}


@pytest.mark.parametrize("loss,t", [("bce", 0.75), ("gbce", 0.0), ("gbce", 0.75), ("gbce", 1.0), ("sampled_ce", 0.75)])
def test_sampled_losses_equal_their_formulas(loss, t):
    """``_loss`` against the losses written out from the raw scores: BCE, gSASRec's gBCE
    (β = α(t(1 − 1/α) + 1/α), α = K/(|I| − 1); β = 1 at t = 0 and β = α at t = 1) and the softmax
    over the target and its negatives."""
    net = _net()
    K = 4
    rng = np.random.default_rng(0)
    inp = torch.as_tensor(np.array([[0, 0, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6], [0, 0, 0, 0, 7, 8]]))
    tgt = torch.as_tensor(np.array([[0, 0, 4, 5, 6, 7], [2, 3, 4, 5, 6, 9], [0, 0, 0, 0, 8, 10]]))
    neg = torch.as_tensor(rng.integers(1, 31, size=(3, 6, K))) * (tgt != 0).unsqueeze(-1)
    m = SASRec(loss=loss, n_negatives=K, gbce_t=t)
    with torch.no_grad():
        got = float(m._loss(net, inp, tgt, neg, norm=2.0))
        H = net(inp).double()
        table = net.item_emb.table.weight.double()
        mask = (tgt != 0).numpy()
        sp = (H * table[tgt]).sum(-1).numpy()[mask]
        sn = torch.einsum("blh,blkh->blk", H, table[neg]).numpy()[mask]
    sig = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
    if loss == "sampled_ce":
        z = np.concatenate([sp[:, None], sn], 1)
        per = -np.log(np.exp(sp) / np.exp(z).sum(1))
    else:
        alpha = K / (30 - 1)
        beta = 1.0 if loss == "bce" else alpha * (t * (1 - 1 / alpha) + 1 / alpha)
        # the code's β at gSASRec's two end points: plain BCE at t = 0, the sampling rate at t = 1
        if loss == "gbce" and t == 0.0:
            assert m._beta(net.n_items) == pytest.approx(1.0)
        if loss == "gbce" and t == 1.0:
            assert m._beta(net.n_items) == pytest.approx(alpha)
        per = -beta * np.log(sig(sp)) - np.log(1.0 - sig(sn)).sum(1)
    assert got == pytest.approx(per.sum() / 2.0, rel=1e-5)


@pytest.mark.parametrize("loss", ["gbce", "sampled_ce"])
def test_overfits_tiny_planted_sequences_other_sampled_losses(loss):
    seqs = _cycles(n_users=48, n_items=30, length=8)
    # gBCE's positive term has weight β < 1 (0.46 here), so it needs more epochs to fit
    m = SASRec(hidden=16, layers=1, max_len=10, dropout=0.0, epochs=60 if loss == "gbce" else 30, lr=1e-2,
               batch_size=16, n_negatives=8, loss=loss, num_threads=1, verbose=False, **PLAIN).fit(seqs)
    assert m.history_[-1]["loss"] < 0.2 * m.history_[0]["loss"]
    assert _accuracy(m, 7) >= 0.9 and _accuracy(m, 5) >= 0.8


def test_bad_params():
    with pytest.raises(ValueError, match="loss"):
        SASRec(loss="mse").fit([[1, 2, 3]])
    with pytest.raises(ValueError, match="gbce_t"):
        SASRec(loss="gbce", gbce_t=1.5).fit([[1, 2, 3]])
    with pytest.raises(ValueError, match="n_negatives"):
        SASRec(loss="sampled_ce", n_negatives=0).fit([[1, 2, 3]])
    with pytest.raises(ValueError, match="embedding_dim"):
        SASRec(hidden=8, embedding_dim=16).fit([[1, 2, 3]])
    with pytest.raises(ValueError, match="heads"):
        SASRec(hidden=10, heads=3).fit([[1, 2, 3]])


def test_init_from_vectors():
    seqs = _cycles(n_users=10)
    vecs = {f"i{j}": np.eye(8)[j % 8] for j in range(12)}
    m = SASRec(hidden=8, max_len=6, epochs=1, lr=1e-9, num_threads=1, verbose=False)
    m.fit(seqs, init_embeddings=vecs)
    V = m.item_vectors()
    j0, j1 = m.items_.index(["i0", "i1"])
    # nearly untouched by a tiny learning rate: orthogonal one-hot inits stay orthogonal
    assert abs(float(V[j0] @ V[j1])) < 1e-3 * float(V[j0] @ V[j0])
    with pytest.raises(ValueError, match="width"):
        SASRec(hidden=16, epochs=1, verbose=False).fit(seqs, init_embeddings=vecs)


def test_init_item2vec_starts_from_item2vec_vectors():
    # reference: Item2Vec fitted separately with the same settings on the same training sequences
    seqs = _cycles(n_users=30, n_items=12, length=10)

    def min_cosine_to_reference(**kw) -> float:
        m = SASRec(hidden=8, max_len=6, epochs=1, lr=1e-9, num_threads=1, random_state=3, verbose=False,
                   validation_fraction=0, **kw)  # Item2Vec sees every sequence in full, as the reference
        m.fit(seqs, init_embeddings="item2vec")
        V = m.net_.item_emb.table.weight.detach().numpy()[1:]
        ref = tastebud.Item2Vec(factors=V.shape[1], epochs=20, random_state=3, num_threads=1).fit(seqs)
        R = ref.item_vectors()[ref.items_.index(m.items_.ids)]
        return float(((V * R).sum(1) / (np.linalg.norm(V, axis=1) * np.linalg.norm(R, axis=1))).min())

    assert min_cosine_to_reference() > 0.999  # same directions, rescaled to the init's RMS
    assert min_cosine_to_reference(embedding_dim=4) > 0.999  # a factorized table at its own width E
    with pytest.raises(ValueError, match="item2vec"):
        SASRec(hidden=8, epochs=1, verbose=False).fit(seqs, init_embeddings="word2vec")


def test_numba_kernels_leave_torch_thread_count_alone():
    # numba's OpenMP layer and torch share libgomp: numba.set_num_threads used to reset a caller's
    # torch thread count to numba's (SASRec epochs ran ~10x slower after the Item2Vec init). 3 is
    # more threads than numba starts with on these machines, so the reset is visible on any of them.
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(3)
        tastebud.Item2Vec(factors=4, epochs=1, num_threads=2).fit(_cycles(n_users=5))
        assert torch.get_num_threads() == 3
        m = SASRec(hidden=8, max_len=6, epochs=1, num_threads=3, verbose=False)
        seen = []
        orig = m._train

        def spy(*a, **k):  # the thread count training runs with, after the Item2Vec fit
            seen.append(torch.get_num_threads())
            return orig(*a, **k)

        m._train = spy
        m.fit(_cycles(n_users=10), init_embeddings="item2vec")
        assert seen == [3]
    finally:
        torch.set_num_threads(old)


def test_end_to_end_amazon_games_small():
    root = os.environ.get("TASTEBUD_DATA")
    path = os.path.join(root or "", "amazon-games", "sequences.txt")
    if not root or not os.path.exists(path):
        pytest.skip("TASTEBUD_DATA/amazon-games not available")
    full = Sequences.from_file(path)
    keep = np.flatnonzero(full.lengths() >= 5)[:600]
    seqs = full.subset_users(keep)
    train = seqs.truncate(1)
    m = SASRec(hidden=16, layers=1, max_len=20, epochs=2, batch_size=64, num_threads=1, verbose=False).fit(train)
    users = train.users.ids[:50]
    ids, sc = m.recommend(users, k=10)
    assert ids.shape == (50, 10) and np.isfinite(sc).all()
    for j, u in enumerate(users):
        assert not set(ids[j].tolist()) & set(m.history(u).tolist())


def test_valid_last_holds_out_inside_fit():
    seqs = _cycles(n_users=20, length=6)
    m = SASRec(hidden=8, layers=1, max_len=6, epochs=2, patience=5, batch_size=8, num_threads=1,
               verbose=False).fit(seqs, valid="last")
    assert len(m.history_) == 2 and "val_ndcg@10" in m.history_[0]
    np.testing.assert_array_equal(m.history(3), seqs[3])  # the full sequence is the stored history


def test_missing_torch_names_the_extra(monkeypatch):
    import importlib
    import sys

    from tastebud.exceptions import MissingExtraError

    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.delitem(sys.modules, "tastebud.models.sequential.sasrec", raising=False)
    with pytest.raises(MissingExtraError, match=r"tastebud\[torch\]"):
        importlib.import_module("tastebud.models.sequential.sasrec")


def test_ctrl_c_keeps_the_best_epoch(monkeypatch):
    """KeyboardInterrupt during training warns and keeps the best validated epoch's weights."""
    import copy

    seqs = _cycles(n_users=20, n_items=12, length=6)
    valid = {f"u{j}": s[-1] for j, s in enumerate(seqs)}
    train = {f"u{j}": s[:-1] for j, s in enumerate(seqs)}
    snaps, calls = {}, [0]

    def fake_eval(self, net, hists, targets, dev):
        calls[0] += 1
        if calls[0] == 4:
            raise KeyboardInterrupt
        snaps[calls[0]] = copy.deepcopy(net.state_dict())
        return 0.0, [0.1, 0.3, 0.2][calls[0] - 1]  # epoch 2 is the best

    monkeypatch.setattr(SASRec, "_evaluate_next", fake_eval)
    m = SASRec(hidden=8, layers=1, max_len=6, epochs=10, num_threads=1, verbose=False)
    with pytest.warns(UserWarning, match="interrupted after 3"):
        m.fit(train, valid=valid)
    assert m.best_epoch_ == 2 and len(m.history_) == 3
    for k, v in m.net_.state_dict().items():
        assert torch.equal(v, snaps[2][k]), k


# ---------------------------------------------------------------------- defaults (issue #14 item 11)
def test_defaults_are_the_measured_recipe_and_the_paper_is_one_call_away():
    p = SASRec().get_params()
    assert {k: p[k] for k in ("hidden", "dropout", "n_negatives", "lr", "epochs", "patience", "init",
                              "validation_fraction", "num_threads")} == {
        "hidden": 50, "dropout": 0.5, "n_negatives": 32, "lr": 2e-3, "epochs": 200, "patience": 15,
        "init": "item2vec", "validation_fraction": 0.1, "num_threads": None}
    q = SASRec.paper().get_params()
    assert (q["n_negatives"], q["lr"], q["init"], q["validation_fraction"], q["max_len"], q["dropout"]) == \
        (1, 1e-3, "random", 0.0, 50, 0.5)
    d = SASRec.paper(dense=True, epochs=3)
    assert (d.max_len, d.dropout, d.epochs) == (200, 0.2, 3)
    with pytest.raises(ValueError, match="validation_fraction"):
        SASRec(validation_fraction=1.5).fit([[1, 2, 3]])
    with pytest.raises(ValueError, match="init"):
        SASRec(init="glove").fit([[1, 2, 3]])


def test_internal_holdout_size_rule():
    m = SASRec(random_state=4)
    for n_users, expect in ((500, 500), (3_000, 1_000), (20_000, 2_000), (80_000, 5_000)):
        hist = [np.arange(3)] * n_users + [np.arange(2)] * 50  # 50 users too short to hold out
        u, i = m._holdout_targets(hist)
        assert len(u) == expect and (u < n_users).all() and len(np.unique(u)) == expect
        assert (i == 2).all()  # each held-out user's last item
    u1, _ = m._holdout_targets([np.arange(4)] * 20_000)
    u2, _ = SASRec(random_state=4)._holdout_targets([np.arange(4)] * 20_000)
    np.testing.assert_array_equal(u1, u2)  # seeded
    assert len(SASRec(validation_fraction=0)._holdout_targets([np.arange(4)] * 50)[0]) == 0


def test_early_stopping_without_valid_on_the_internal_holdout(monkeypatch):
    """No ``valid``: training stops on held-out last items (it ran all epochs before), trains
    without them, and keeps them in the stored histories."""
    seqs = _cycles(n_users=20, n_items=12, length=6)
    calls = []

    def flat_eval(self, net, hists, targets, dev):  # validation never improves after epoch 1
        calls.append((len(hists), {len(h) for h in hists}))
        return 0.0, 0.0

    monkeypatch.setattr(SASRec, "_evaluate_next", flat_eval)
    m = SASRec(hidden=8, layers=1, max_len=6, epochs=50, patience=3, init="random", num_threads=1,
               verbose=False).fit(seqs)
    assert len(m.history_) == 4 and m.best_epoch_ == 1 and "val_ndcg@10" in m.history_[0]
    assert calls[0] == (20, {5})  # all 20 users (fewer than 1,000) validated on item 6 after items 1-5
    for j in (0, 7):
        np.testing.assert_array_equal(m.history(j), seqs[j])  # the held-out item is kept
    calls.clear()
    m = SASRec(hidden=8, layers=1, max_len=6, epochs=3, patience=1, init="random", validation_fraction=0,
               num_threads=1, verbose=False).fit(seqs)
    assert len(m.history_) == 3 and not calls and "val_ndcg@10" not in m.history_[0]


def test_default_torch_threads_is_one():
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(3)
        m = SASRec(hidden=8, max_len=6, epochs=1, init="random", validation_fraction=0, verbose=False)
        seen = []
        orig = m._train

        def spy(*a, **k):
            seen.append(torch.get_num_threads())
            return orig(*a, **k)

        m._train = spy
        m.fit(_cycles(n_users=10))
        assert seen == [1] and torch.get_num_threads() == 3  # one thread inside fit, restored after
    finally:
        torch.set_num_threads(old)
