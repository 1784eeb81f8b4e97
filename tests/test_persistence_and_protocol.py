import json
import zipfile

import numpy as np
import pandas as pd
import pytest

import tastebud as tb
from tastebud import FormatError, Interactions, NotFittedError, UnknownIdError
from tastebud.models.base import topk_rows


def small():
    rng = np.random.default_rng(1)
    n = 400
    df = pd.DataFrame({"user": rng.integers(0, 25, n), "item": [f"i{x}" for x in rng.integers(0, 30, n)],
                       "rating": rng.integers(1, 6, n).astype(float)})
    return Interactions.from_frame(df, rating="rating", duplicates="last")


def test_topk_rows_matches_full_sort():
    rng = np.random.default_rng(0)
    S = rng.random((50, 40)).astype(np.float32)
    for k in (1, 5, 40):
        idx, val = topk_rows(S, k)
        ref = np.argsort(-S, axis=1, kind="stable")[:, :k]
        np.testing.assert_array_equal(idx, ref)
        np.testing.assert_array_equal(val, np.take_along_axis(S, ref, 1))


def test_recommend_filters_seen_and_matches_bruteforce():
    x = small()
    m = tb.BaselinePredictor().fit(x)
    users = x.users.ids[:10]
    ids, sc = m.recommend(users, k=5)
    assert ids.shape == (10, 5) and sc.shape == (10, 5)
    dense = x.matrix.toarray() != 0
    for row, u in enumerate(users):
        ui = x.users.index(u)[0]
        scores = m.global_mean_ + m.user_bias_[ui] + m.item_bias_
        scores[dense[ui]] = -np.inf
        ref = x.items.ids[np.argsort(-scores, kind="stable")[:5]]
        assert list(ids[row]) == list(ref)
        seen = set(x.items.ids[dense[ui]])
        assert not seen & set(ids[row])
    ids2, _ = m.recommend(users, k=5, filter_seen=False)
    assert (ids2 == np.asarray(x.items.ids[np.argsort(-m.item_bias_, kind="stable")[:5]])[None, :]).all()


def test_recommend_scalar_candidates_padding_and_errors():
    x = small()
    m = tb.Popularity().fit(x)
    u = x.users.ids[0]
    ids, sc = m.recommend(u, k=3)
    assert ids.shape == (3,)
    cand = list(x.items.ids[:4])
    ids, _ = m.recommend([u], k=2, items=cand)
    assert set(ids[0]) <= set(cand)
    # k larger than the catalogue
    with pytest.raises(ValueError, match="exceeds"):
        m.recommend([u], k=x.n_items + 1)
    with pytest.raises(ValueError, match="positive"):
        m.recommend([u], k=0)
    # a user who has seen nearly everything gets padded rows, never seen items
    seen_n = int(m.seen_[x.users.index(u)[0]].nnz)
    ids, sc = m.recommend([u], k=x.n_items)
    assert ids.dtype == object and sum(i is None for i in ids[0]) == seen_n
    assert np.isnan(sc[0, -seen_n:]).all() if seen_n else True
    with pytest.raises(UnknownIdError, match="nobody"):
        m.recommend(["nobody"])
    ids, _ = m.recommend([u, "nobody"], k=3, unknown="popular", filter_seen=False)
    assert list(ids[1]) == list(ids[0])


class _FixedVectors(tb.Popularity):
    """Popularity plus given item vectors: exercises the base class's cosine similar_items."""

    def __init__(self, V=None):
        super().__init__()
        self.V = V

    def item_vectors(self):
        return self.V


def test_similar_items_cosine_excludes_self_and_filter():
    x = small()
    V = np.random.default_rng(2).standard_normal((x.n_items, 4)).astype(np.float32)
    m = _FixedVectors(V).fit(x)
    item = x.items.ids[3]
    cos = (V @ V[3]) / (np.linalg.norm(V, axis=1) * np.linalg.norm(V[3]))
    cos[3] = -np.inf
    ids, sc = m.similar_items(item, k=5)
    ref = np.argsort(-cos, kind="stable")[:5]
    assert list(ids) == list(x.items.ids[ref]) and item not in ids
    np.testing.assert_allclose(sc, cos[ref], rtol=1e-5)
    # filter_items removes those items; items= restricts the candidates
    ids2, _ = m.similar_items(item, k=5, filter_items=list(ids[:2]))
    assert list(ids2[:3]) == list(ids[2:5]) and not set(ids[:2]) & set(ids2)
    cand = list(x.items.ids[10:20])
    ids3, _ = m.similar_items(item, k=3, items=cand)
    assert set(ids3) <= set(cand)
    with pytest.raises(ValueError, match="exceeds"):
        m.similar_items(item, k=x.n_items)  # the item itself is not a candidate
    with pytest.raises(NotImplementedError):
        tb.Popularity().fit(x).similar_items(item)


def test_predict_fallback_and_raise():
    x = small()
    m = tb.BaselinePredictor().fit(x)
    u, i = x.users.ids[0], x.items.ids[0]
    p = m.predict([u, "stranger", u], [i, i, "new-item"])
    assert m.n_fallbacks_ == 2
    assert p[1] == pytest.approx(m.global_mean_ + m.item_bias_[0])
    assert p[2] == pytest.approx(m.global_mean_ + m.user_bias_[x.users.index(u)[0]])
    with pytest.raises(UnknownIdError):
        m.predict([u], ["new-item"], unknown="raise")
    with pytest.raises(ValueError, match="same length"):
        m.predict([u, u], [i])
    assert np.isscalar(m.predict(u, i))


def test_not_fitted():
    with pytest.raises(NotFittedError):
        tb.BaselinePredictor().predict([1], [1])
    with pytest.raises(NotFittedError):
        tb.Popularity().save("x.tb")


def test_save_load_roundtrip_atomic_and_validated(tmp_path):
    x = small()
    m = tb.BaselinePredictor(reg_u=5).fit(x)
    path = tmp_path / "m.tb"
    m.save(path)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    m2 = tb.load(path)
    assert type(m2) is tb.BaselinePredictor and m2.get_params() == m.get_params()
    users = x.users.ids
    np.testing.assert_array_equal(m2.predict(users, np.resize(x.items.ids, len(users))),
                                  m.predict(users, np.resize(x.items.ids, len(users))))
    a, b = m.recommend(users[:5], k=4), m2.recommend(users[:5], k=4)
    np.testing.assert_array_equal(a[0], b[0])
    assert (m2.seen_ != m.seen_).nnz == 0
    with zipfile.ZipFile(path) as z:
        meta = json.loads(z.read("meta.json"))
    assert meta["class"] == "baseline" and meta["format_version"] == 1
    # loading through the wrong class, a corrupt file, a future version
    with pytest.raises(FormatError):
        tb.Popularity.load(path)
    (tmp_path / "junk.tb").write_bytes(b"not a zip")
    with pytest.raises(FormatError, match="not a tastebud"):
        tb.load(tmp_path / "junk.tb")
    bad = tmp_path / "future.tb"
    with zipfile.ZipFile(path) as z, zipfile.ZipFile(bad, "w") as out:
        for n in z.namelist():
            data = z.read(n)
            if n == "meta.json":
                d = json.loads(data)
                d["format_version"] = 99
                data = json.dumps(d).encode()
            out.writestr(n, data)
    with pytest.raises(FormatError, match="format_version"):
        tb.load(bad)


def test_pickled_arrays_refused(tmp_path):
    import io

    x = small()
    m = tb.Popularity().fit(x)
    path = tmp_path / "p.tb"
    m.save(path)
    evil = tmp_path / "evil.tb"
    with zipfile.ZipFile(path) as z, zipfile.ZipFile(evil, "w") as out:
        for n in z.namelist():
            data = z.read(n)
            if n == "arrays/popularity.npy":
                buf = io.BytesIO()
                np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
                data = buf.getvalue()
            out.writestr(n, data)
    with pytest.raises(FormatError, match="safely"):
        tb.load(evil)


def test_get_set_params():
    m = tb.BaselinePredictor(reg_u=3.0)
    assert m.get_params() == {"reg_u": 3.0, "reg_i": 10.0, "epochs": 10}
    m.set_params(epochs=2)
    assert m.epochs == 2
    with pytest.raises(ValueError, match="no parameter"):
        m.set_params(bogus=1)
    assert "BaselinePredictor(" in repr(m)


def test_registry_lists_every_model_and_loads_builtin():
    from tastebud.models import registry

    names = registry.names()
    for n in ("baseline", "popularity", "mf", "svdpp", "als", "implicit-als", "bpr", "puresvd", "ease",
              "fm", "item2vec", "sasrec", "multimodal", "fpgrowth"):
        assert n in names
    assert registry.get("baseline") is tb.BaselinePredictor
    with pytest.raises(KeyError, match="unknown model"):
        registry.get("nope")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_topk_kernel_equals_stable_sort_with_ties_nan_and_inf(dtype):
    from tastebud.models.base import topk_rows_reference

    rng = np.random.default_rng(5)
    for _ in range(30):
        n, m = rng.integers(1, 20), rng.integers(1, 60)
        S = rng.integers(0, 6, size=(n, m)).astype(dtype)  # many ties
        S[rng.random((n, m)) < 0.2] = -np.inf
        S[rng.random((n, m)) < 0.05] = np.nan
        for k in {1, int(rng.integers(1, m + 1)), int(m)}:
            a, av = topk_rows(S, k)
            b, bv = topk_rows_reference(S, k)
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(av, bv)
