import numpy as np
import pandas as pd
import pytest

from tastebud import Baskets, DataError, Interactions, Sequences
from tastebud.data import as_baskets, as_sequences


def test_baskets_forms_agree(tmp_path):
    lists = [["milk", "bread"], ["bread", "bread", "eggs"], [], ["milk"]]
    a = Baskets(lists)
    assert len(a) == 4 and a.matrix.nnz == 5  # duplicate 'bread' counted once, empty basket kept
    assert a.to_lists()[1] == ["bread", "eggs"]
    long = pd.DataFrame({"transaction": [0, 0, 1, 1, 3], "item": ["milk", "bread", "bread", "eggs", "milk"]})
    b = Baskets.from_frame(long)
    assert sorted(map(sorted, b.to_lists())) == sorted(map(sorted, [l for l in a.to_lists() if l]))
    onehot = pd.DataFrame({"milk": [1, 0, 1], "bread": [True, True, False]})
    c = Baskets.from_onehot(onehot)
    assert c.to_lists() == [["milk", "bread"], ["bread"], ["milk"]]
    assert Baskets(lists, drop_empty=True).matrix.shape[0] == 3
    assert isinstance(as_baskets(lists), Baskets) and isinstance(as_baskets(onehot), Baskets)


def test_basket_files(tmp_path):
    (tmp_path / "b.dat").write_text("1 2 3\n2 3\n\n3\n")
    b = Baskets.from_file(tmp_path / "b.dat")
    assert len(b) == 4 and b.items.ids.dtype == np.int64
    np.testing.assert_array_equal(b.item_counts()[b.items.index([1, 2, 3])], [1, 2, 3])
    (tmp_path / "g.csv").write_text("whole milk,yogurt\nyogurt\n")
    g = Baskets.from_file(tmp_path / "g.csv", sep=",")
    assert g.to_lists()[0] == ["whole milk", "yogurt"]
    (tmp_path / "bad.csv").write_text("a,,b\n")
    with pytest.raises(DataError, match="line 1"):
        Baskets.from_file(tmp_path / "bad.csv", sep=",")
    with pytest.raises(DataError, match="string"):
        Baskets(["abc"])
    with pytest.raises(DataError, match="0/1"):
        Baskets.from_onehot(pd.DataFrame({"a": [2]}))


def test_sequences_forms():
    df = pd.DataFrame({"user": [1, 2, 1, 1, 2], "item": ["a", "b", "c", "a", "a"], "ts": [3, 1, 1, 2, 5]})
    s = Sequences.from_frame(df, timestamp="ts")
    assert s.to_lists() == [["c", "a", "a"], ["b", "a"]]  # ordered by time, repeats kept
    r = Sequences.from_frame(df)  # row order without timestamp
    assert r.to_lists() == [["a", "c", "a"], ["b", "a"]]
    d = Sequences.from_lists({"x": ["a", "b"], "y": ["b"]})
    assert d.users.ids.tolist() == ["x", "y"] and d.lengths().tolist() == [2, 1]
    inter = Interactions.from_frame(df, timestamp="ts")
    f = Sequences.from_interactions(inter)
    # duplicates (1, a) summed in Interactions: one entry at the latest time
    assert f.to_lists() == [["c", "a"], ["b", "a"]]
    t = s.truncate(1)
    assert t.to_lists() == [["c", "a"], ["b"]]
    sub = s.subset_users(np.array([1]))
    assert sub.users.ids.tolist() == [2] and sub.to_lists() == [["b", "a"]]
    assert as_sequences([["a"], ["b", "a"]]).n_interactions == 3
    with pytest.raises(DataError, match="empty"):
        as_sequences([[]])
    with pytest.raises(DataError, match="timestamps"):
        Sequences.from_interactions(Interactions.from_frame(df))


def test_sequence_file(tmp_path):
    (tmp_path / "s.txt").write_text("1 10\n1 11\n2 10\n1 12\n")
    s = Sequences.from_file(tmp_path / "s.txt")
    assert s.to_lists() == [[10, 11, 12], [10]]
    (tmp_path / "bad.txt").write_text("1 10\n7\n")
    with pytest.raises(DataError, match="line 2"):
        Sequences.from_file(tmp_path / "bad.txt")
