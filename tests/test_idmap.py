import numpy as np
import pandas as pd
import pytest

from tastebud import DataError, IdMap, UnknownIdError
from tastebud.data.idmap import normalize_ids


def test_roundtrip_int_and_str():
    m = IdMap([10, 3, 7], "user")
    assert m.index([7, 10]).tolist() == [2, 0]
    assert m.external([1, 2]).tolist() == [3, 7]
    s = IdMap(["b", "a"], "item")
    assert s.index("a").tolist() == [1]
    assert "b" in s and "z" not in s and 3 in m


def test_unknown_raises_keyerror_naming_id():
    m = IdMap([1, 2], "user")
    with pytest.raises(KeyError) as e:
        m.index([1, 99])
    assert isinstance(e.value, UnknownIdError)
    assert "99" in str(e.value) and "user" in str(e.value)
    assert m.index([1, 99], missing="mask").tolist() == [0, -1]


def test_string_query_on_int_map_is_unknown_not_crash():
    m = IdMap([1, 2], "user")
    with pytest.raises(UnknownIdError):
        m.index(["x"])
    assert m.index(["x"], missing="mask").tolist() == [-1]


def test_normalisation_rules():
    assert normalize_ids(np.array([1.0, 2.0])).dtype == np.int64
    assert normalize_ids(pd.Series([1, 2], dtype=object)).dtype == np.int64
    with pytest.raises(DataError, match="mix"):
        normalize_ids(np.array([1, "1"], dtype=object))
    with pytest.raises(DataError, match="NaN"):
        normalize_ids(np.array([1.0, np.nan]))
    with pytest.raises(DataError, match="non-integral"):
        normalize_ids(np.array([1.5]))
    with pytest.raises(DataError, match="duplicate"):
        IdMap([1, 1])


def test_from_values_first_appearance_order():
    m, codes = IdMap.from_values(["c", "a", "c", "b"])
    assert m.ids.tolist() == ["c", "a", "b"]
    assert codes.tolist() == [0, 1, 0, 2]


def test_mixed_query_each_id_on_its_own():
    m = IdMap([1, 2], "user")
    assert m.index([1, "stranger", 2.0, None], missing="mask").tolist() == [0, -1, 1, -1]
    with pytest.raises(UnknownIdError, match="stranger"):
        m.index([1, "stranger"])
