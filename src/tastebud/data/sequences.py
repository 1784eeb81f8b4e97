"""``Sequences``: each user's items in time order (ragged arrays, CSR-like)."""

from __future__ import annotations

import os
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from ..exceptions import DataError
from ._frames import require_columns, to_pandas, where
from .idmap import IdMap
from .readers import maybe_int, read_user_item_pairs


class Sequences:
    """Per-user item sequences in time order.

    Attributes
    ----------
    indptr : int64 array (n_users + 1,)  — user u's items are ``indices[indptr[u]:indptr[u+1]]``
    indices : int64 array of item indices
    users, items : IdMap
    timestamps : float64 array aligned with ``indices``, or None

    Repeated items within a sequence are kept (a sequence is not a set).
    """

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, users: IdMap, items: IdMap, timestamps: np.ndarray | None = None):
        self.indptr = np.asarray(indptr, dtype=np.int64)
        self.indices = np.asarray(indices, dtype=np.int64)
        if len(self.indptr) != len(users) + 1 or self.indptr[-1] != len(self.indices):
            raise DataError("Sequences: indptr does not match users/indices")
        self.users, self.items = users, items
        self.timestamps = None if timestamps is None else np.asarray(timestamps, dtype=np.float64)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_frame(cls, df: Any, user: str = "user", item: str = "item", timestamp: str | None = None, *, item_map: IdMap | None = None) -> "Sequences":
        """Long table; ordered by ``timestamp`` within each user (stable), else by row order."""
        pdf = to_pandas(df, "sequences")
        require_columns(pdf, {"user": user, "item": item, "timestamp": timestamp}, "sequences")
        for col in (user, item):
            if pdf[col].isna().any():
                at = where(pdf, int(np.flatnonzero(pdf[col].isna().to_numpy())[0]))
                raise DataError(f"sequences: {at}: missing value in column {col!r}")
        ts = None
        if timestamp is not None:
            from .interactions import _timestamps_to_float
            ts = _timestamps_to_float(pdf[timestamp], "sequences", lambda row: where(pdf, row))
        return cls.from_arrays(pdf[user].to_numpy(), pdf[item].to_numpy(), ts, item_map=item_map)

    @classmethod
    def from_arrays(cls, users: Any, items: Any, timestamps: Any = None, *, item_map: IdMap | None = None) -> "Sequences":
        if len(users) != len(items):
            raise DataError(f"sequences: users and items have different lengths ({len(users)} vs {len(items)})")
        t = None
        if timestamps is not None:
            from .interactions import _timestamps_to_float

            if np.ndim(timestamps) != 1 or len(timestamps) != len(users):
                raise DataError(f"sequences: timestamps must hold one value per row ({len(users)}), "
                                f"got shape {np.shape(timestamps)}")
            t = _timestamps_to_float(timestamps, "sequences")  # NaN / non-numbers are refused, naming the row
        umap, u = IdMap.from_values(users, "user")
        if item_map is None:
            imap, i = IdMap.from_values(items, "item")
        else:
            imap, i = item_map, item_map.index(items)
        if t is None:
            order = np.argsort(u, kind="stable")
            ts = None
        else:
            order = np.lexsort((t, u))
            ts = t[order]
        counts = np.bincount(u, minlength=len(umap))
        indptr = np.concatenate([[0], np.cumsum(counts)])
        return cls(indptr, i[order], umap, imap, ts)

    @classmethod
    def from_lists(cls, seqs: Iterable[Iterable[Any]] | Mapping[Any, Iterable[Any]], *, item_map: IdMap | None = None) -> "Sequences":
        """A list of item lists (users numbered 0..n-1) or a dict {user: [items...]}."""
        if isinstance(seqs, Mapping):
            keys = list(seqs.keys())
            lists = [list(v) for v in seqs.values()]
        else:
            lists = [list(s) if not isinstance(s, (str, bytes)) else _bad_seq(s) for s in seqs]
            keys = list(range(len(lists)))
        lengths = np.fromiter((len(s) for s in lists), dtype=np.int64, count=len(lists))
        flat = [x for s in lists for x in s]
        if item_map is None:
            imap, codes = IdMap.from_values(np.asarray(flat, dtype=object) if flat else np.array([], dtype=np.int64), "item")
        else:
            imap, codes = item_map, item_map.index(flat) if flat else np.array([], dtype=np.int64)
        return cls(np.concatenate([[0], np.cumsum(lengths)]), codes, IdMap(keys, "user"), imap)

    @classmethod
    def from_interactions(cls, inter: Any) -> "Sequences":
        """Each user's interacted items ordered by timestamp (requires timestamps)."""
        if inter.timestamps is None:
            raise DataError("Sequences.from_interactions needs Interactions with timestamps")
        u, i, _, t = inter.coo()
        order = np.lexsort((t, u))
        counts = np.bincount(u, minlength=inter.n_users)
        return cls(np.concatenate([[0], np.cumsum(counts)]), i[order], inter.users, inter.items, t[order])

    @classmethod
    def from_file(cls, path: str | os.PathLike, sep: str | None = None) -> "Sequences":
        """Lines ``user item`` with each user's lines in time order (e.g. amazon-games/sequences.txt)."""
        users, items = read_user_item_pairs(path, sep=sep)
        if not users:
            raise DataError(f"{path}: no 'user item' lines found")
        return cls.from_arrays(maybe_int(users), maybe_int(items))

    # ------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.indptr) - 1

    @property
    def n_users(self) -> int:
        return len(self.indptr) - 1

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_interactions(self) -> int:
        return len(self.indices)

    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def __repr__(self) -> str:
        return f"Sequences({self.n_users} users, {self.n_items} items, {self.n_interactions} interactions)"

    def sequence(self, u: int) -> np.ndarray:
        """Item indices of user index ``u`` in order."""
        return self.indices[self.indptr[u]:self.indptr[u + 1]]

    def __iter__(self):
        for u in range(self.n_users):
            yield self.items.ids[self.sequence(u)].tolist()

    def to_lists(self) -> list[list[Any]]:
        return list(self)

    def to_frame(self) -> pd.DataFrame:
        u = np.repeat(np.arange(self.n_users), self.lengths())
        d = {"user": self.users.ids[u], "item": self.items.ids[self.indices]}
        if self.timestamps is not None:
            d["timestamp"] = self.timestamps
        return pd.DataFrame(d)

    def subset_users(self, user_idx: np.ndarray) -> "Sequences":
        """Sequences of the given user indices (new user map, same item map)."""
        user_idx = np.asarray(user_idx, dtype=np.int64)
        lens = self.lengths()[user_idx]
        parts = [self.indices[self.indptr[u]:self.indptr[u + 1]] for u in user_idx]
        idx = np.concatenate(parts) if parts else np.array([], dtype=np.int64)
        ts = None
        if self.timestamps is not None:
            tp = [self.timestamps[self.indptr[u]:self.indptr[u + 1]] for u in user_idx]
            ts = np.concatenate(tp) if tp else np.array([], dtype=np.float64)
        return Sequences(np.concatenate([[0], np.cumsum(lens)]), idx, IdMap(self.users.ids[user_idx], "user"), self.items, ts)

    def truncate(self, drop_last: int = 1) -> "Sequences":
        """Each sequence minus its last ``drop_last`` items (for leave-last-out)."""
        lens = np.maximum(self.lengths() - drop_last, 0)
        keep = np.zeros(len(self.indices), dtype=bool)
        for u in range(self.n_users):
            keep[self.indptr[u]:self.indptr[u] + lens[u]] = True
        ts = self.timestamps[keep] if self.timestamps is not None else None
        return Sequences(np.concatenate([[0], np.cumsum(lens)]), self.indices[keep], self.users, self.items, ts)


def _bad_seq(s: Any) -> list:
    raise DataError(f"each sequence must be a list of items, got the string {s!r} (wrap it in a list)")


def as_sequences(data: Any) -> Sequences:
    """Accept Sequences, a list of lists, a dict {user: items}, Interactions with timestamps, or a
    long DataFrame with columns user, item[, timestamp]."""
    if isinstance(data, Sequences):
        return data
    if isinstance(data, (list, tuple, Mapping)):
        s = Sequences.from_lists(data)
        if s.n_interactions == 0:
            raise DataError("sequences are empty")
        return s
    from .interactions import Interactions
    if isinstance(data, Interactions):
        return Sequences.from_interactions(data)
    pdf = to_pandas(data, "sequences")
    return Sequences.from_frame(pdf, timestamp="timestamp" if "timestamp" in pdf.columns else None)
