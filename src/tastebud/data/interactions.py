"""``Interactions``: a user × item sparse matrix with id maps both ways and optional timestamps."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..exceptions import DataError
from ._frames import require_columns, to_pandas, where
from .idmap import IdMap

Duplicates = Literal["sum", "mean", "last", "first", "max", "raise"]


class Interactions:
    """User × item interactions: ratings (explicit) or weights/counts (implicit).

    Attributes
    ----------
    matrix : scipy.sparse.csr_matrix, float32, shape (n_users, n_items)
        Canonical CSR (sorted indices, no duplicates). Explicit zero entries are kept: a rating
        of 0 is a rating. ``matrix.data`` holds ratings, or 1.0 for each pair when no rating
        column was given.
    users, items : IdMap
        External id ↔ row/column index.
    timestamps : csr_matrix (float64) with exactly ``matrix``'s structure, or None.

    **Explicit or implicit.** The constructors know which kind of values they get from the argument
    that names them: ``rating=`` (a column) / ``ratings=`` (an array) holds *explicit* ratings on a
    scale (stars); ``weight=`` / ``weights=`` holds *implicit* weights or counts (plays, clicks);
    with neither, every row is one implicit interaction (1.0).

    **Duplicate (user, item) rows** are resolved at construction by ``duplicates=``: ``"sum"``,
    ``"mean"``, ``"max"``, ``"first"``/``"last"`` (by timestamp when given, else by row order), or
    ``"raise"``. The default (``duplicates=None``) depends on the kind of values:

    * explicit ratings keep their scale: ``"last"`` (the latest rating by timestamp) when timestamps
      are given, else ``"mean"``; a ``UserWarning`` gives the number of duplicate rows;
    * implicit weights and plain rows are summed (``"sum"``): three plays count 3.

    An explicit ``duplicates=`` always wins (and does not warn). The kept timestamp is the latest
    one of the group (for ``first``, the earliest).
    """

    def __init__(
        self,
        matrix: sp.spmatrix,
        users: IdMap,
        items: IdMap,
        timestamps: sp.spmatrix | None = None,
    ):
        m = sp.csr_matrix(matrix, dtype=np.float32)
        m.sum_duplicates()
        m.sort_indices()
        if m.shape != (len(users), len(items)):
            raise DataError(f"matrix shape {m.shape} does not match id maps ({len(users)} users, {len(items)} items)")
        if m.nnz and not np.isfinite(m.data).all():
            raise DataError("interaction values contain NaN or infinity")
        if timestamps is not None:
            t = sp.csr_matrix(timestamps, dtype=np.float64)
            t.sort_indices()
            if t.shape != m.shape or not (np.array_equal(t.indptr, m.indptr) and np.array_equal(t.indices, m.indices)):
                raise DataError("timestamps must have exactly the structure of the interaction matrix")
            timestamps = t
        self.matrix: sp.csr_matrix = m
        self.users = users
        self.items = items
        self.timestamps: sp.csr_matrix | None = timestamps

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_arrays(
        cls,
        users: Any,
        items: Any,
        ratings: Any = None,
        timestamps: Any = None,
        *,
        weights: Any = None,
        duplicates: Duplicates | None = None,
        user_map: IdMap | None = None,
        item_map: IdMap | None = None,
        unknown: Literal["raise", "drop"] = "raise",
        source: str = "data",
    ) -> "Interactions":
        """Build from parallel arrays of external user ids, item ids, optional explicit ``ratings``
        (or implicit ``weights``) and timestamps.

        ``duplicates=None`` resolves repeated (user, item) rows by the kind of values (see the class
        docstring): ratings → latest by timestamp, else mean, with a warning; weights/none → sum.
        ``user_map``/``item_map`` fix the id maps (e.g. to share them between a train and a test
        set); ids absent from a given map raise :class:`UnknownIdError` or are dropped
        (``unknown="drop"``).
        """
        n = len(users)
        if len(items) != n:
            raise DataError(f"{source}: users and items have different lengths ({n} vs {len(items)})")
        if ratings is not None and weights is not None:
            raise DataError(f"{source}: give ratings= (explicit) or weights= (implicit), not both")
        explicit = ratings is not None
        what = "rating" if explicit else "weight"
        r = None
        if ratings is not None or weights is not None:
            r = np.asarray(ratings if explicit else weights, dtype=np.float64)
            if r.shape != (n,):
                raise DataError(f"{source}: {what}s have shape {r.shape}, expected ({n},)")
            bad = ~np.isfinite(r)
            if bad.any():
                pos = int(np.flatnonzero(bad)[0])
                raise DataError(f"{source}: {what} at position {pos} is {float(r[pos])} (NaN/inf {what}s are not allowed)")
        warn = duplicates is None and explicit
        if duplicates is None:
            duplicates = ("last" if timestamps is not None else "mean") if explicit else "sum"
        t = None
        if timestamps is not None:
            t = _timestamps_to_float(timestamps, source)
            if t.shape != (n,):
                raise DataError(f"{source}: timestamps have shape {t.shape}, expected ({n},)")
        if user_map is None:
            user_map, u = IdMap.from_values(users, "user", source)
        else:
            u = user_map.index(users, missing="mask" if unknown == "drop" else "raise")
        if item_map is None:
            item_map, i = IdMap.from_values(items, "item", source)
        else:
            i = item_map.index(items, missing="mask" if unknown == "drop" else "raise")
        keep = (u >= 0) & (i >= 0)
        if not keep.all():
            u, i = u[keep], i[keep]
            r = r[keep] if r is not None else None
            t = t[keep] if t is not None else None
        return cls._from_codes(u, i, r, t, user_map, item_map, duplicates, source, warn=warn)

    @classmethod
    def _from_codes(cls, u, i, r, t, user_map, item_map, duplicates, source="data", warn=False) -> "Interactions":
        if duplicates not in ("sum", "mean", "max", "first", "last", "raise"):
            raise ValueError(f"duplicates must be one of sum, mean, max, first, last, raise; got {duplicates!r}")
        nu, ni = len(user_map), len(item_map)
        n = len(u)
        order, key_s = _sort_pairs(np.asarray(u, dtype=np.int64), np.asarray(i, dtype=np.int64), ni)
        first = np.ones(n, dtype=bool)  # first entry of each (user, item) group
        if n > 1:
            np.not_equal(key_s[1:], key_s[:-1], out=first[1:])
        if n and not first.all():
            if duplicates == "raise":
                j = order[np.flatnonzero(~first)[0]]
                raise DataError(
                    f"{source}: duplicate (user, item) pair ({user_map.ids[u[j]]!r}, {item_map.ids[i[j]]!r}); "
                    "pass duplicates='sum'|'mean'|'max'|'first'|'last'"
                )
            starts = np.flatnonzero(first)
            del first
            if warn:
                how = "the latest rating (by timestamp)" if duplicates == "last" and t is not None else f"the {duplicates} rating"
                warnings.warn(
                    f"{source}: {n - len(starts)} duplicate (user, item) row(s) in {int((np.diff(np.append(starts, n)) > 1).sum())} "
                    f"pair(s); kept {how} so ratings stay on their scale. Choose with duplicates='sum'|'mean'|'max'|"
                    "'first'|'last'|'raise' (CLI: --duplicates), or give implicit counts as weight= (CLI: "
                    "--weight-col), which are summed",
                    UserWarning, stacklevel=_caller_level())
            if t is not None and duplicates in ("first", "last"):
                _order_groups_by_time(order, starts, t)
            if r is None:  # implicit: every row is 1.0
                counts = np.diff(np.append(starts, n))
                vals = {"sum": counts, "mean": None, "max": None, "first": None, "last": None}[duplicates]
                vals = np.ones(len(starts), np.float32) if vals is None else vals.astype(np.float32)
            else:
                rs = r[order]
                if duplicates == "sum":
                    vals = np.add.reduceat(rs, starts)
                elif duplicates == "mean":
                    vals = np.add.reduceat(rs, starts) / np.diff(np.append(starts, n))
                elif duplicates == "max":
                    vals = np.maximum.reduceat(rs, starts)
                elif duplicates == "first":
                    vals = rs[starts]
                else:  # last
                    vals = rs[np.append(starts[1:], n) - 1]
                del rs
            ts = None
            if t is not None:
                tt = t[order]
                ts = tt[starts] if duplicates == "first" else np.maximum.reduceat(tt, starts)
                del tt
            key_u = key_s[starts]
        else:
            vals = np.ones(n, np.float32) if r is None else r[order]
            ts = t[order] if t is not None else None
            key_u = key_s
        del order, key_s
        # key_u is sorted user-major, item-minor and unique: build canonical CSR directly
        uk = key_u // ni if ni else key_u
        ik = key_u - uk * ni
        idx_t = np.int32 if max(ni, len(key_u)) < 2**31 - 1 else np.int64
        indptr = np.zeros(nu + 1, dtype=idx_t)
        np.cumsum(np.bincount(uk, minlength=nu), out=indptr[1:])
        ik = ik.astype(idx_t)
        del uk, key_u
        mat = sp.csr_matrix((np.asarray(vals, dtype=np.float32), ik, indptr), shape=(nu, ni))
        mat.has_canonical_format = True
        tmat = None
        if ts is not None:
            tmat = sp.csr_matrix((np.asarray(ts, dtype=np.float64), ik, indptr), shape=(nu, ni))
            tmat.has_canonical_format = True
        # explicit zeros are kept (a rating of 0 is a rating); tmat shares mat's structure
        return cls(mat, user_map, item_map, tmat)

    @classmethod
    def from_frame(
        cls,
        df: Any,
        user: str = "user",
        item: str = "item",
        rating: str | None = None,
        timestamp: str | None = None,
        *,
        weight: str | None = None,
        duplicates: Duplicates | None = None,
        user_map: IdMap | None = None,
        item_map: IdMap | None = None,
        unknown: Literal["raise", "drop"] = "raise",
        source: str = "data",
    ) -> "Interactions":
        """Build from a pandas / polars (eager or lazy) / pyarrow table with one row per interaction.

        ``rating=`` names a column of explicit ratings, ``weight=`` one of implicit weights/counts
        (not both); ``duplicates=None`` then keeps the latest (else the mean) rating, or sums weights.
        Errors name the column and the row, or the file's line for a table read by
        :func:`tastebud.data.readers.read_table` (as ``from_csv`` and the CLI do)."""
        pdf = to_pandas(df, source)
        if rating is not None and weight is not None:
            raise DataError(f"{source}: give rating= (explicit) or weight= (implicit), not both")
        require_columns(pdf, {"user": user, "item": item, "rating": rating, "weight": weight, "timestamp": timestamp}, source)
        for col, what in ((user, "user"), (item, "item")):
            if pdf[col].isna().any():
                row = int(np.flatnonzero(pdf[col].isna().to_numpy())[0])
                raise DataError(f"{source}: {where(pdf, row)}: missing {what} id in column {col!r}")
        values = None
        vcol = rating if rating is not None else weight
        if vcol is not None:
            what = "rating" if rating is not None else "weight"
            vals = pd.to_numeric(pdf[vcol], errors="coerce")
            bad = vals.isna() & pdf[vcol].notna()
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise DataError(f"{source}: {where(pdf, row)}: non-numeric {what} {pdf[vcol].iloc[row]!r} in column {vcol!r}")
            values = vals.to_numpy(dtype=np.float64)
            bad = ~np.isfinite(values)
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                v = values[row]
                why = "missing (empty or NaN)" if np.isnan(v) else f"{float(v)} (infinite)"
                raise DataError(f"{source}: {where(pdf, row)}: {what} in column {vcol!r} is {why}")
        ts = None
        if timestamp is not None:
            ts = _timestamps_to_float(pdf[timestamp], source, lambda row: where(pdf, row))
        try:
            return cls.from_arrays(
                pdf[user].to_numpy(),
                pdf[item].to_numpy(),
                values if rating is not None else None,
                ts,
                weights=values if weight is not None else None,
                duplicates=duplicates,
                user_map=user_map,
                item_map=item_map,
                unknown=unknown,
                source=source,
            )
        except DataError as e:  # a bad id (out of the int64 range, mixed types...): give the file's line
            row = getattr(e, "row", None)
            if row is None:
                raise
            raise DataError(str(e).replace(f"at row {row}", f"at {where(pdf, row)}", 1)) from None

    @classmethod
    def from_csv(
        cls,
        path: str | os.PathLike,
        user: str | int = "user",
        item: str | int = "item",
        rating: str | int | None = None,
        timestamp: str | int | None = None,
        *,
        weight: str | int | None = None,
        sep: str = ",",
        header: bool = True,
        duplicates: Duplicates | None = None,
        **read_kw: Any,
    ) -> "Interactions":
        """Read a delimited text file. With ``header=False`` columns are named by position (0, 1, ...).
        ``rating=`` (explicit) / ``weight=`` (implicit) and ``duplicates=`` as in :meth:`from_frame`;
        errors give the file's line number."""
        from .readers import read_table

        df = read_table(path, sep=sep, header=header, **read_kw)
        return cls.from_frame(df, user, item, rating, timestamp, weight=weight, duplicates=duplicates, source=str(path))

    @classmethod
    def from_parquet(
        cls,
        path: str | os.PathLike,
        user: str = "user",
        item: str = "item",
        rating: str | None = None,
        timestamp: str | None = None,
        *,
        weight: str | None = None,
        duplicates: Duplicates | None = None,
    ) -> "Interactions":
        """Read columns of a Parquet file; ``rating=`` / ``weight=`` / ``duplicates=`` as in :meth:`from_frame`."""
        import pyarrow.parquet as pq

        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(f"no such file: {p}")
        cols = [c for c in (user, item, rating, weight, timestamp) if c is not None]
        try:
            table = pq.read_table(p, columns=cols)
        except Exception as e:  # pyarrow raises several types for bad files/columns
            raise DataError(f"{p}: cannot read Parquet columns {cols}: {e}") from e
        return cls.from_frame(table, user, item, rating, timestamp, weight=weight, duplicates=duplicates, source=str(p))

    @classmethod
    def from_matrix(cls, matrix: Any, users: Any = None, items: Any = None) -> "Interactions":
        """Wrap an existing (sparse or dense) matrix; ids default to 0..n-1."""
        m = sp.csr_matrix(matrix)
        nu, ni = m.shape
        return cls(m, IdMap(np.arange(nu) if users is None else users, "user"),
                   IdMap(np.arange(ni) if items is None else items, "item"))

    # ------------------------------------------------------------------ basic facts
    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape

    @property
    def n_users(self) -> int:
        return self.matrix.shape[0]

    @property
    def n_items(self) -> int:
        return self.matrix.shape[1]

    @property
    def nnz(self) -> int:
        return self.matrix.nnz

    def __len__(self) -> int:
        return self.matrix.nnz

    def __repr__(self) -> str:
        ts = ", timestamps" if self.timestamps is not None else ""
        return f"Interactions({self.n_users} users × {self.n_items} items, {self.nnz} interactions{ts})"

    def coo(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """(user_idx, item_idx, values, timestamps or None) in CSR (user-major) order."""
        m = self.matrix
        rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
        ts = self.timestamps.data if self.timestamps is not None else None
        return rows, m.indices.astype(np.int64), m.data, ts

    def to_frame(self) -> pd.DataFrame:
        """One row per interaction with external ids: columns user, item, rating[, timestamp]."""
        u, i, r, t = self.coo()
        d = {"user": self.users.ids[u], "item": self.items.ids[i], "rating": r.astype(np.float64)}
        if t is not None:
            d["timestamp"] = t
        return pd.DataFrame(d)

    def user_counts(self) -> np.ndarray:
        return np.diff(self.matrix.indptr)

    def item_counts(self) -> np.ndarray:
        return np.bincount(self.matrix.indices, minlength=self.n_items)

    # ------------------------------------------------------------------ derived views
    def select(self, mask: np.ndarray) -> "Interactions":
        """A new Interactions holding the entries where ``mask`` (in :meth:`coo` order) is True.
        Id maps are shared, so train/test parts of a split align row for row."""
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (self.nnz,):
            raise DataError(f"mask has shape {mask.shape}, expected ({self.nnz},)")
        u, i, r, t = self.coo()
        m = sp.csr_matrix((r[mask], (u[mask], i[mask])), shape=self.shape)
        tm = sp.csr_matrix((t[mask], (u[mask], i[mask])), shape=self.shape) if t is not None else None
        return Interactions(m, self.users, self.items, tm)

    def binarize(self, threshold: float | None = None) -> "Interactions":
        """Implicit view: 1.0 for every interaction (or only those with value >= ``threshold``)."""
        if threshold is None:
            m = self.matrix.copy()
            m.data[:] = 1.0
            return Interactions(m, self.users, self.items, self.timestamps)
        return self.select(self.matrix.data >= threshold).binarize()

    def confidence(self, alpha: float = 40.0, scheme: Literal["linear", "log"] = "linear", epsilon: float = 1.0) -> sp.csr_matrix:
        """Hu, Koren & Volinsky (2008) confidence c = 1 + α·r (``linear``) or 1 + α·log(1 + r/ε) (``log``)."""
        m = self.matrix.copy()
        if scheme == "linear":
            m.data = 1.0 + alpha * m.data
        elif scheme == "log":
            m.data = 1.0 + alpha * np.log1p(m.data / epsilon)
        else:
            raise ValueError(f"scheme must be 'linear' or 'log', got {scheme!r}")
        return m.astype(np.float32)

    def with_matrix(self, matrix: sp.spmatrix) -> "Interactions":
        """Same ids, new values (e.g. transformed weights); structure may differ (timestamps dropped then)."""
        m = sp.csr_matrix(matrix)
        ts = self.timestamps
        if ts is not None and not (np.array_equal(m.indptr, ts.indptr) and np.array_equal(m.indices, ts.indices)):
            ts = None
        return Interactions(m, self.users, self.items, ts)


def _caller_level() -> int:
    """``stacklevel`` that points a warning at the first frame outside tastebud (the user's call)."""
    import sys

    f, level = sys._getframe(2), 2  # 1 = the function that warns
    while f is not None and f.f_globals.get("__name__", "").startswith("tastebud."):
        f, level = f.f_back, level + 1
    return level


def _order_groups_by_time(order: np.ndarray, starts: np.ndarray, t: np.ndarray) -> None:
    """In place: within each group of ``order`` (delimited by ``starts``) that has more than one row,
    sort the rows by (timestamp, row). Only duplicate groups are touched (usually a small share)."""
    n = len(order)
    sizes = np.diff(np.append(starts, n))
    multi = np.flatnonzero(sizes > 1)
    if not len(multi):
        return
    ms = sizes[multi]
    offs = np.arange(int(ms.sum())) - np.repeat(np.cumsum(ms) - ms, ms)
    sel = np.repeat(starts[multi], ms) + offs
    sub = order[sel]
    o2 = np.lexsort((sub, t[sub], np.repeat(multi, ms)))
    order[sel] = sub[o2]


def _sort_pairs(u: np.ndarray, i: np.ndarray, n_items: int, t: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Order of rows sorted by (user, item[, timestamp]), ties by row order, and the sorted keys
    ``user * n_items + item``.

    The key and the row's position (or its rank in time) are packed into one int64 and sorted with
    ``np.sort`` — several times faster than ``np.argsort``/``np.lexsort`` at millions of rows (SIMD
    sorting), and stable by construction. Falls back to ``lexsort`` when they do not fit in 63 bits.
    """
    n = len(u)
    key = u * n_items + i
    if n == 0:
        return np.zeros(0, np.int64), key
    pos_bits = max(int(n - 1).bit_length(), 1)
    key_bits = max(int(key.max()).bit_length(), 1)
    if key_bits + pos_bits <= 63:
        if t is None:
            tie, back = np.arange(n, dtype=np.int64), None
        else:
            back = np.argsort(t, kind="stable")  # rank in time, ties by row order
            tie = np.empty(n, dtype=np.int64)
            tie[back] = np.arange(n, dtype=np.int64)
        packed = key << pos_bits
        del key
        packed |= tie
        del tie
        packed.sort()
        order = packed & ((1 << pos_bits) - 1)
        packed >>= pos_bits
        if back is not None:
            order = back[order]
        return order, packed
    order = np.argsort(key, kind="stable") if t is None else np.lexsort((t, key))
    return order, key[order]


def _timestamps_to_float(ts: Any, source: str, at: Any = None) -> np.ndarray:
    at = at or (lambda row: f"row {row}")
    if isinstance(ts, np.ndarray) and ts.dtype.kind in "fiu":
        vals = ts.astype(np.float64)
        s = None
    else:
        s = ts if isinstance(ts, pd.Series) else pd.Series(np.asarray(ts))
        if pd.api.types.is_datetime64_any_dtype(s):
            if s.isna().any():
                raise DataError(f"{source}: {at(int(np.flatnonzero(s.isna().to_numpy())[0]))}: missing timestamp")
            return (s.astype("datetime64[ns]").astype(np.int64) / 1e9).to_numpy(dtype=np.float64)
        vals = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(vals)
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        shown = f"{float(vals[pos])}" if s is None else repr(s.iloc[pos])
        raise DataError(f"{source}: {at(pos)}: timestamp is not a number ({shown})")
    return vals


def as_interactions(data: Any, **kw: Any) -> Interactions:
    """Accept an Interactions, a DataFrame (columns user, item[, rating | weight, timestamp]) or a sparse matrix.
    A ``rating`` column is read as explicit ratings, a ``weight`` column as implicit weights."""
    if isinstance(data, Interactions):
        return data
    if sp.issparse(data) or isinstance(data, np.ndarray):
        return Interactions.from_matrix(data)
    try:
        pdf = to_pandas(data, "data")
    except DataError:
        raise DataError(f"expected Interactions, a DataFrame or a sparse matrix, got {type(data).__name__}") from None
    rating = kw.pop("rating", "rating" if "rating" in pdf.columns else None)
    weight = kw.pop("weight", "weight" if rating is None and "weight" in pdf.columns else None)
    timestamp = kw.pop("timestamp", "timestamp" if "timestamp" in pdf.columns else None)
    return Interactions.from_frame(pdf, rating=rating, timestamp=timestamp, weight=weight, **kw)
