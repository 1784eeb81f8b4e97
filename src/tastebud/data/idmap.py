"""Maps between external ids (ints or strings) and contiguous integer indices.

External ids are normalised once, here: a set of ids that are all integers (including
integral floats, as pandas produces for a column with missing values elsewhere) becomes an
``int64`` array; anything else must be all strings and becomes a unicode array. Mixing ints and
strings is refused, because ``1`` and ``"1"`` would otherwise silently be two users.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import pandas as pd

from ..exceptions import DataError, UnknownIdError


def normalize_ids(values: Any, what: str = "id") -> np.ndarray:
    """Return ``values`` as an int64 array (all-integer ids) or a unicode array (string ids)."""
    if isinstance(values, (pd.Series, pd.Index)):
        values = values.to_numpy()
    arr = np.asarray(values) if not isinstance(values, np.ndarray) else values
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise DataError(f"{what}s must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        return arr.astype(np.int64)
    kind = arr.dtype.kind
    if kind in "iu":
        return arr.astype(np.int64, copy=False)
    if kind == "b":
        raise DataError(f"{what}s must be integers or strings, got booleans")
    if kind == "f":
        if np.isnan(arr).any():
            raise DataError(f"{what}s contain NaN (missing ids) at position {int(np.flatnonzero(np.isnan(arr))[0])}")
        if not np.all(np.mod(arr, 1) == 0):
            bad = arr[np.mod(arr, 1) != 0][0]
            raise DataError(f"{what}s must be integers or strings, got the non-integral number {bad!r}")
        return arr.astype(np.int64)
    if kind in "US":
        return arr.astype(str)
    if kind == "O":
        types = {type(v) for v in arr.tolist()}
        if types <= {int, np.int64, np.int32, bool} and bool not in types:
            return arr.astype(np.int64)
        if types <= {int, float, np.int64, np.int32, np.float64, np.float32}:
            return normalize_ids(arr.astype(np.float64), what)  # integral floats → ints
        if types <= {str, np.str_}:
            return arr.astype(str)
        if any(v is None or (isinstance(v, float) and np.isnan(v)) for v in arr.tolist()):
            pos = next(i for i, v in enumerate(arr.tolist()) if v is None or (isinstance(v, float) and np.isnan(v)))
            raise DataError(f"{what}s contain a missing value (None/NaN) at position {pos}")
        names = sorted(t.__name__ for t in types)
        raise DataError(f"{what}s must be all integers or all strings, got a mix of {names}")
    raise DataError(f"{what}s must be integers or strings, got dtype {arr.dtype}")


class IdMap:
    """A bijection between external ids and indices ``0..n-1`` (in the order given)."""

    __slots__ = ("ids", "_lookup", "kind")

    def __init__(self, ids: Iterable[Any] | np.ndarray, kind: str = "id"):
        arr = normalize_ids(ids if isinstance(ids, np.ndarray) else list(ids) if not isinstance(ids, (pd.Series, pd.Index)) else ids, kind)
        self.kind = kind
        self.ids = arr
        self._lookup = pd.Index(arr)
        if not self._lookup.is_unique:
            dup = self._lookup[self._lookup.duplicated()][0]
            raise DataError(f"duplicate {kind} id {dup!r} in id map")

    @classmethod
    def from_values(cls, values: Any, kind: str = "id") -> tuple["IdMap", np.ndarray]:
        """Build a map of the unique ``values`` (first-appearance order) and return the codes too."""
        arr = normalize_ids(values, kind)
        codes, uniques = pd.factorize(arr, sort=False)
        m = cls.__new__(cls)
        m.kind = kind
        m.ids = np.asarray(uniques, dtype=arr.dtype)
        m._lookup = pd.Index(m.ids)
        return m, codes.astype(np.int64)

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, x: Any) -> bool:
        return self._index_one(x) >= 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdMap) and self.ids.dtype.kind == other.ids.dtype.kind and np.array_equal(self.ids, other.ids)

    def __repr__(self) -> str:
        return f"IdMap({self.kind}, n={len(self)}, dtype={self.ids.dtype})"

    def index(self, ids: Any, missing: str = "raise") -> np.ndarray:
        """Indices of external ``ids``. ``missing="raise"`` raises :class:`UnknownIdError`;
        ``missing="mask"`` returns -1 for unknown ids. A query id of another type than the map's
        (``"1"`` against integer ids) is unknown, never coerced."""
        if missing not in ("raise", "mask"):
            raise ValueError(f"missing must be 'raise' or 'mask', got {missing!r}")
        scalar = np.ndim(ids) == 0 and not isinstance(ids, (list, tuple))
        seq = [ids] if scalar else ids
        if isinstance(seq, (list, tuple)):
            obj = np.empty(len(seq), dtype=object)  # keep each id's own type (no int→str coercion)
            obj[:] = list(seq)
            seq = obj
        try:
            arr = normalize_ids(seq, self.kind)
        except DataError:
            # mixed or odd types: each id on its own (anything not matching is unknown)
            vals = list(np.asarray(seq, dtype=object))
            idx = np.array([self._index_one(v) for v in vals], dtype=np.int64)
            arr = np.asarray(vals, dtype=object)
        else:
            if arr.size and arr.dtype.kind != self.ids.dtype.kind:
                idx = np.full(len(arr), -1, dtype=np.int64)
            else:
                idx = self._lookup.get_indexer(arr).astype(np.int64)
        if missing == "raise" and (idx < 0).any():
            raise UnknownIdError(self.kind, np.asarray(arr, dtype=object)[idx < 0].tolist())
        return idx

    def _index_one(self, v: Any) -> int:
        try:
            a = normalize_ids(np.array([v], dtype=object), self.kind)
        except DataError:
            return -1
        if a.dtype.kind != self.ids.dtype.kind:
            return -1
        return int(self._lookup.get_indexer(a)[0])

    def external(self, idx: Any) -> np.ndarray:
        """External ids at indices ``idx``."""
        idx = np.asarray(idx, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"{self.kind} index out of range 0..{len(self) - 1}")
        return self.ids[idx]

    def to_array(self) -> np.ndarray:
        """The ids as a plain array (int64 or unicode) suitable for ``np.save``."""
        return self.ids

    @classmethod
    def from_array(cls, arr: np.ndarray, kind: str = "id") -> "IdMap":
        return cls(arr, kind)
