"""FMFeatures: one-hot, numeric, multi-hot, implicit feedback, time; vocabularies; persistence."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tastebud.exceptions import DataError, NotFittedError
from tastebud.models.fm.features import FMFeatures


@pytest.fixture
def frame():
    return pd.DataFrame({
        "user": [1, 1, 2, 3, 3, 3],
        "item": ["a", "b", "a", "b", "c", "d"],
        "occupation": ["x", "x", "y", "z", "z", "z"],
        "age": [20.0, 20.0, 30.0, 40.0, 40.0, np.nan],
        "genres": [["g1", "g2"], ["g2"], ["g1", "g2"], ["g2"], "g1|g3", []],
        "ts": [10, 20, 30, 40, 50, 60],
    })


def test_each_kind_of_group(frame):
    fb = FMFeatures(categorical=["user", "item", "occupation"], numeric=["age"], multi_hot=["genres"],
                    implicit=[("user", "item")], time="ts", n_time_bins=3)
    X, groups = fb.fit_transform(frame)
    A = X.toarray()
    sizes = fb.group_sizes()
    assert sizes == [3, 4, 3, 1, 3, 4, 1, 3]
    assert X.shape == (6, sum(sizes)) and len(groups) == X.shape[1]
    np.testing.assert_array_equal(groups, np.repeat(np.arange(8), sizes))
    off = np.concatenate([[0], np.cumsum(sizes)])
    blk = lambda g: A[:, off[g]:off[g + 1]]  # noqa: E731
    # one-hot: exactly one 1 per row
    for g in range(3):
        np.testing.assert_array_equal(blk(g).sum(1), 1.0)
    # numeric standardised with the fit mean/std; missing → 0 (the mean)
    ages = np.array([20, 20, 30, 40, 40.0])
    np.testing.assert_allclose(blk(3)[:5, 0], (ages - ages.mean()) / ages.std())
    assert blk(3)[5, 0] == 0
    # multi-hot normalised to sum 1; an empty list → empty block
    np.testing.assert_allclose(blk(4).sum(1), [1, 1, 1, 1, 1, 0])
    assert set(np.round(blk(4)[4][blk(4)[4] > 0], 6)) == {0.5}
    # implicit: the items of the row's user, each 1/sqrt(|N(u)|)
    imp = blk(5)
    assert (imp[0] > 0).sum() == 2 and np.allclose(imp[0][imp[0] > 0], 1 / np.sqrt(2))
    assert (imp[3] > 0).sum() == 3 and np.allclose(imp[3][imp[3] > 0], 1 / np.sqrt(3))
    np.testing.assert_array_equal(imp[3], imp[5])  # same user, same block
    vocab = fb.state_["groups"][5]["vocab"]
    assert {vocab[j] for j in np.flatnonzero(imp[3])} == {"b", "c", "d"}
    # time: a numeric column and one bin per row
    np.testing.assert_array_equal(blk(7).sum(1), 1.0)
    assert np.argmax(blk(7)[0]) <= np.argmax(blk(7)[5])
    assert len(fb.feature_names_) == X.shape[1]


def test_unseen_categories_and_keys_give_empty_blocks(frame):
    fb = FMFeatures(categorical=["user", "item"], multi_hot=["genres"], implicit=[("user", "item")]).fit(frame)
    new = pd.DataFrame({"user": [99, 1], "item": ["zzz", "a"], "genres": [["new"], ["g1", "new"]]})
    X, _ = fb.transform(new)
    A = X.toarray()
    sizes = fb.group_sizes()
    assert A[0].sum() == 0  # unseen user, item, genre, no implicit items
    assert A[1, :sizes[0]].sum() == 1
    # unknown genre ignored: the known one gets weight 1
    g = A[1, sum(sizes[:2]):sum(sizes[:3])]
    assert g.sum() == pytest.approx(1.0)


def test_vocabularies_survive_json_round_trip(frame, tmp_path):
    fb = FMFeatures(categorical=["user", "occupation"], numeric=["age"], multi_hot=["genres"],
                    implicit=[("item", "user")], time="ts").fit(frame)
    fb.save(tmp_path / "f.json")
    json.loads((tmp_path / "f.json").read_text())
    fb2 = FMFeatures.load(tmp_path / "f.json")
    X1, g1 = fb.transform(frame)
    X2, g2 = fb2.transform(frame)
    assert (X1 != X2).nnz == 0
    np.testing.assert_array_equal(g1, g2)


def test_infer_and_errors(frame):
    fb = FMFeatures.infer(frame[["occupation", "age", "genres"]])
    assert fb.categorical == ["occupation"] and fb.numeric == ["age"] and fb.multi_hot == ["genres"]
    with pytest.raises(NotFittedError):
        FMFeatures(categorical=["user"]).transform(frame)
    with pytest.raises(DataError, match="not in the frame"):
        FMFeatures(categorical=["nope"]).fit(frame)
    with pytest.raises(DataError, match="non-numeric"):
        FMFeatures(numeric=["occupation"]).fit(frame)
    with pytest.raises(DataError, match="no rows"):
        FMFeatures(categorical=["user"]).fit(frame.iloc[:0])
    with pytest.raises(ValueError, match="pairs"):
        FMFeatures(implicit=[("user",)])


def test_implicit_group_turns_fm_into_svdpp_features(frame):
    # with implicit items of the user, the factor sum of the user side is v_u + |N(u)|^-1/2 Σ_j y_j
    fb = FMFeatures(categorical=["user", "item"], implicit=[("user", "item")]).fit(frame)
    X, groups = fb.transform(frame)
    rng = np.random.default_rng(0)
    V = rng.normal(size=(X.shape[1], 2))
    sizes = fb.group_sizes()
    Yimp = V[sizes[0] + sizes[1]:]
    vocab = fb.state_["groups"][2]["vocab"]
    items_of_3 = [vocab.index(v) for v in ["b", "c", "d"]]
    # the implicit part of row 3 (user 3)
    a, b = X.indptr[3], X.indptr[4]
    imp = [(j, v) for j, v in zip(X.indices[a:b], X.data[a:b]) if j >= sizes[0] + sizes[1]]
    got = sum(v * V[j] for j, v in imp)
    np.testing.assert_allclose(got, Yimp[items_of_3].sum(0) / np.sqrt(3))
