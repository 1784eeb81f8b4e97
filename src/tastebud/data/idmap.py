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


_INT64_MAX = int(np.iinfo(np.int64).max)
_INT64_MIN = int(np.iinfo(np.int64).min)


def _label(what: str) -> str:
    return what if what.endswith("id") else f"{what} id"


def _bad(msg: str, row: int | None = None) -> DataError:
    """A DataError that remembers the 0-based row at fault (callers that know the file turn it into a line)."""
    e = DataError(msg)
    e.row = row  # type: ignore[attr-defined]
    return e


def normalize_ids(values: Any, what: str = "id") -> np.ndarray:
    """Return ``values`` as an int64 array (all-integer ids) or a unicode array (string ids).

    Refused with a :class:`DataError` naming the row: a mix of integers and strings (``1`` and
    ``"1"`` would silently be two users), booleans, missing values, non-integral numbers, integers
    outside the int64 range (unsigned 64-bit ids above 2⁶³−1 would wrap to negative ids: read such a
    column as strings to keep them), and string ids ending in a NUL character (numpy's fixed-width
    strings drop trailing NULs, so ``"a\\x00"`` would merge with ``"a"``).
    """
    if isinstance(values, (pd.Series, pd.Index)):
        values = values.to_numpy()
    if isinstance(values, (list, tuple)):
        arr = np.empty(len(values), dtype=object)  # keep each id's own type: np.asarray would turn [1, "a"] into strings
        try:
            arr[:] = values
        except (ValueError, TypeError):
            raise DataError(f"{what}s must be a flat list of ids, got nested sequences") from None
    else:
        arr = np.asarray(values) if not isinstance(values, np.ndarray) else values
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise DataError(f"{what}s must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    kind = arr.dtype.kind
    if kind == "i":
        return arr.astype(np.int64, copy=False)
    if kind == "u":
        big = arr > _INT64_MAX
        if big.any():
            pos = int(np.flatnonzero(big)[0])
            raise _bad(f"{_label(what)} {int(arr[pos])} at row {pos} is above 2^63-1, the largest integer id; "
                       "read the column as strings to keep such ids", pos)
        return arr.astype(np.int64)
    if kind == "b":
        raise DataError(f"{what}s must be integers or strings, got booleans")
    if kind == "f":
        nan = np.isnan(arr)
        if nan.any():
            pos = int(np.flatnonzero(nan)[0])
            raise _bad(f"{what}s contain NaN (missing ids) at row {pos}", pos)
        with np.errstate(invalid="ignore"):
            frac = np.mod(arr, 1) != 0
        if frac.any() or not np.isfinite(arr).all():
            pos = int(np.flatnonzero(frac | ~np.isfinite(arr))[0])
            raise _bad(f"{what}s must be integers or strings, got the non-integral number {float(arr[pos])!r} at row {pos}", pos)
        out = (arr >= 2.0**63) | (arr < -(2.0**63))
        if out.any():
            pos = int(np.flatnonzero(out)[0])
            raise _bad(f"{_label(what)} {float(arr[pos])!r} at row {pos} is outside the 64-bit integer range", pos)
        return arr.astype(np.int64)
    if kind == "U":
        return arr
    if kind == "S":
        try:
            return np.char.decode(arr, "utf-8").astype(str)
        except UnicodeDecodeError as e:
            raise DataError(f"{what}s: byte-string ids must be UTF-8 ({e})") from None
    if kind == "O":
        return _normalize_objects(arr, what)
    raise DataError(f"{what}s must be integers or strings, got dtype {arr.dtype}")


def _normalize_objects(arr: np.ndarray, what: str) -> np.ndarray:
    vals = arr.tolist()
    is_int = [isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in vals]
    if all(is_int):
        for pos, v in enumerate(vals):
            if not _INT64_MIN <= v <= _INT64_MAX:
                raise _bad(f"{_label(what)} {v} at row {pos} is outside the 64-bit integer range"
                           + ("; read the column as strings to keep such ids" if v > 0 else ""), pos)
        return np.array(vals, dtype=np.int64)
    is_str = [isinstance(v, str) for v in vals]
    if all(is_str):
        for pos, v in enumerate(vals):
            if v.endswith("\x00"):
                raise _bad(f"{_label(what)} {v!r} at row {pos} ends with a NUL character; numpy string arrays drop "
                           f"trailing NULs, so it would merge with {v.rstrip(chr(0))!r}", pos)
        return np.array(vals, dtype=str)
    for pos, v in enumerate(vals):
        if _is_missing(v):
            raise _bad(f"{what}s contain a missing value (None/NaN) at row {pos}", pos)
    is_num = [b or (isinstance(v, (float, np.floating))) for b, v in zip(is_int, vals)]
    if all(is_num):
        try:
            return normalize_ids(np.array(vals, dtype=np.float64), what)  # integral floats → ints
        except OverflowError:
            pass
    if any(isinstance(v, (bool, np.bool_)) for v in vals):
        raise DataError(f"{what}s must be integers or strings, got booleans")
    kinds = {"int" if i else "str" if s else type(v).__name__ for i, s, v in zip(is_int, is_str, vals)}
    first = next(pos for pos, (i, s) in enumerate(zip(is_int, is_str)) if (i, s) != (is_int[0], is_str[0]))
    raise _bad(f"{what}s must be all integers or all strings, got a mix of {sorted(kinds)} "
               f"(row 0 is {vals[0]!r}, row {first} is {vals[first]!r})", first)


def _is_missing(v: Any) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, (float, np.floating)) and v != v)


def check_not_missing(ids: Any, argument: str) -> None:
    """Raise :class:`DataError` naming ``argument`` when the ids hold None/NaN (a missing value is
    not an unknown id: a model must not answer it with a fallback)."""
    scalar = np.ndim(ids) == 0 and not isinstance(ids, (list, tuple))
    pos = _missing_position([ids] if scalar else ids)
    if pos is not None:
        where = "" if scalar else f"[{pos}]"
        value = ids if scalar else list(ids)[pos] if isinstance(ids, (list, tuple)) else np.asarray(ids, dtype=object)[pos]
        raise DataError(f"{argument}{where} is {value!r}: a missing value is not an id")


def _missing_position(seq: Any) -> int | None:
    """Position of the first None/NaN in a query of ids, or None."""
    if isinstance(seq, (list, tuple)):
        return next((j for j, v in enumerate(seq) if _is_missing(v)), None)
    a = np.asarray(seq) if not isinstance(seq, np.ndarray) else seq
    if a.dtype.kind == "f":
        bad = np.flatnonzero(np.isnan(a.ravel()))
        return int(bad[0]) if len(bad) else None
    if a.dtype.kind == "O":
        return next((j for j, v in enumerate(a.ravel().tolist()) if _is_missing(v)), None)
    return None


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
    def from_values(cls, values: Any, kind: str = "id", source: str | None = None) -> tuple["IdMap", np.ndarray]:
        """Build a map of the unique ``values`` (first-appearance order) and return the codes too.
        ``source`` (a file name, say) prefixes the message of a bad id."""
        try:
            arr = normalize_ids(values, kind)
        except DataError as e:
            if source is None:
                raise
            raise _bad(f"{source}: {e}", getattr(e, "row", None)) from None
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
