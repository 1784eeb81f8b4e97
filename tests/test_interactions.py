import numpy as np
import pandas as pd
import pytest

from tastebud import DataError, Interactions
from tastebud.data.interactions import as_interactions


def frame():
    return pd.DataFrame({"u": ["a", "b", "a", "c", "a"], "i": [1, 2, 2, 1, 1],
                         "r": [4.0, 3.0, 5.0, 1.0, 2.0], "t": [1, 2, 3, 4, 5]})


@pytest.mark.parametrize("policy,expected", [("sum", 6.0), ("mean", 3.0), ("max", 4.0), ("first", 4.0), ("last", 2.0)])
def test_duplicate_policies(policy, expected):
    x = Interactions.from_frame(frame(), "u", "i", "r", "t", duplicates=policy)
    u, i = x.users.index("a")[0], x.items.index(1)[0]
    assert x.matrix[u, i] == pytest.approx(expected)
    assert x.nnz == 4
    # the kept timestamp: latest of the group (earliest for "first")
    assert x.timestamps[u, i] == (1 if policy == "first" else 5)


def test_last_by_timestamp_not_row_order():
    df = pd.DataFrame({"user": [1, 1], "item": [1, 1], "rating": [5.0, 1.0], "ts": [10, 2]})
    x = Interactions.from_frame(df, rating="rating", timestamp="ts", duplicates="last")
    assert x.matrix[0, 0] == 5.0


def test_duplicates_raise():
    with pytest.raises(DataError, match="duplicate"):
        Interactions.from_frame(frame(), "u", "i", "r", duplicates="raise")


def test_matches_dense_bruteforce():
    rng = np.random.default_rng(0)
    n = 500
    df = pd.DataFrame({"user": rng.integers(0, 30, n), "item": rng.integers(0, 40, n), "rating": rng.random(n)})
    x = Interactions.from_frame(df, rating="rating", duplicates="sum")
    dense = np.zeros((x.n_users, x.n_items))
    for u, i, r in df.itertuples(index=False):
        dense[x.users.index(u)[0], x.items.index(i)[0]] += r
    np.testing.assert_allclose(x.matrix.toarray(), dense, rtol=1e-5)
    back = x.to_frame()
    assert len(back) == x.nnz and set(back.columns) == {"user", "item", "rating"}


def test_nan_rating_and_missing_ids_named():
    df = frame()
    df.loc[3, "r"] = np.nan
    with pytest.raises(DataError, match="row 3"):
        Interactions.from_frame(df, "u", "i", "r")
    df = frame()
    df.loc[2, "u"] = None
    with pytest.raises(DataError, match="row 2"):
        Interactions.from_frame(df, "u", "i", "r")
    with pytest.raises(DataError, match="column 'nope'"):
        Interactions.from_frame(frame(), "u", "nope")
    df = frame().astype({"r": object})
    df.loc[1, "r"] = "five"
    with pytest.raises(DataError, match="non-numeric"):
        Interactions.from_frame(df, "u", "i", "r")


def test_polars_and_pyarrow_inputs():
    pl = pytest.importorskip("polars")
    import pyarrow as pa

    a = Interactions.from_frame(frame(), "u", "i", "r", duplicates="mean")
    b = Interactions.from_frame(pl.from_pandas(frame()), "u", "i", "r", duplicates="mean")
    c = Interactions.from_frame(pa.Table.from_pandas(frame()), "u", "i", "r", duplicates="mean")
    d = Interactions.from_frame(pl.from_pandas(frame()).lazy(), "u", "i", "r", duplicates="mean")  # a LazyFrame
    for other in (b, c, d):
        assert (a.matrix != other.matrix).nnz == 0 and a.users == other.users


def test_csv_and_parquet(tmp_path):
    p = tmp_path / "r.csv"
    frame().to_csv(p, index=False)
    x = Interactions.from_csv(p, "u", "i", "r", "t")
    assert x.nnz == 4 and x.timestamps is not None
    q = tmp_path / "r.parquet"
    frame().to_parquet(q)
    y = Interactions.from_parquet(q, "u", "i", "r", "t")
    assert (x.matrix != y.matrix).nnz == 0


def test_malformed_csv_names_file_and_line(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("user,item,rating\n1,2,3\n1,2,3,4,5\n")
    with pytest.raises(DataError) as e:
        Interactions.from_csv(p, rating="rating")
    assert "bad.csv" in str(e.value) and "line 3" in str(e.value)
    with pytest.raises(FileNotFoundError):
        Interactions.from_csv(tmp_path / "missing.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="empty"):
        Interactions.from_csv(tmp_path / "empty.csv")


def test_shared_maps_and_unknown_policy():
    full = Interactions.from_frame(frame(), "u", "i", "r")
    part = Interactions.from_frame(frame().iloc[:2], "u", "i", "r", user_map=full.users, item_map=full.items)
    assert part.shape == full.shape
    extra = pd.DataFrame({"u": ["zz"], "i": [1], "r": [1.0]})
    with pytest.raises(KeyError, match="zz"):
        Interactions.from_frame(extra, "u", "i", "r", user_map=full.users, item_map=full.items)
    dropped = Interactions.from_frame(extra, "u", "i", "r", user_map=full.users, item_map=full.items, unknown="drop")
    assert dropped.nnz == 0


def test_views_and_select():
    x = Interactions.from_frame(frame(), "u", "i", "r", "t")
    b = x.binarize()
    assert set(b.matrix.data) == {1.0}
    assert b.binarize(threshold=None).nnz == x.nnz
    assert x.binarize(threshold=4.0).nnz == int((x.matrix.data >= 4.0).sum())
    c = x.confidence(alpha=2.0)
    np.testing.assert_allclose(c.data, 1 + 2.0 * x.matrix.data)
    cl = x.confidence(alpha=2.0, scheme="log", epsilon=1.0)
    np.testing.assert_allclose(cl.data, 1 + 2.0 * np.log1p(x.matrix.data), rtol=1e-6)
    mask = np.arange(x.nnz) % 2 == 0
    s = x.select(mask)
    assert s.nnz == mask.sum() and s.users is x.users and s.timestamps is not None


def test_zero_ratings_are_kept():
    df = pd.DataFrame({"user": [1, 2], "item": [1, 1], "rating": [0.0, 3.0]})
    assert Interactions.from_frame(df, rating="rating").nnz == 2


def test_as_interactions_and_datetime_timestamps():
    df = frame().rename(columns={"u": "user", "i": "item", "r": "rating"}).drop(columns="t")
    df["timestamp"] = pd.to_datetime([1, 2, 3, 4, 5], unit="s")
    x = as_interactions(df)
    assert x.timestamps is not None and x.timestamps.data.max() == 5.0
    with pytest.raises(DataError):
        as_interactions(42)
