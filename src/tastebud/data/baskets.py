"""``Baskets``: transactions as sets of items, stored as a CSR basket × item incidence matrix."""

from __future__ import annotations

import os
from typing import Any, Iterable

import numpy as np
import scipy.sparse as sp

from ..exceptions import DataError
from ._frames import require_columns, to_pandas
from .idmap import IdMap
from .readers import maybe_int, read_baskets_file


class Baskets:
    """A list of baskets (sets of items).

    Attributes: ``matrix`` (csr, bool-valued uint8, n_baskets × n_items), ``items`` (IdMap).
    Duplicate items inside one basket count once (a basket is a set). Empty baskets are kept and
    count in the denominator of support, as in mlxtend/arules; ``drop_empty=True`` removes them.
    """

    def __init__(self, baskets: Iterable[Iterable[Any]] | "Baskets", *, drop_empty: bool = False, item_map: IdMap | None = None):
        if isinstance(baskets, Baskets):
            self.matrix, self.items = baskets.matrix, baskets.items
            return
        lists = [list(b) if not isinstance(b, (str, bytes)) else _bad_basket(b) for b in baskets]
        if drop_empty:
            lists = [b for b in lists if b]
        flat = [x for b in lists for x in b]
        lengths = np.fromiter((len(b) for b in lists), dtype=np.int64, count=len(lists))
        if item_map is None:
            item_map, codes = IdMap.from_values(np.asarray(flat, dtype=object) if flat else np.array([], dtype=np.int64), "item")
        else:
            codes = item_map.index(flat) if flat else np.array([], dtype=np.int64)
        self._build(codes, lengths, item_map)

    def _build(self, codes: np.ndarray, lengths: np.ndarray, item_map: IdMap) -> None:
        rows = np.repeat(np.arange(len(lengths)), lengths)
        m = sp.csr_matrix((np.ones(len(codes), dtype=np.uint8), (rows, codes)), shape=(len(lengths), len(item_map)))
        m.sum_duplicates()
        m.data[:] = 1
        m.sort_indices()
        self.matrix: sp.csr_matrix = m
        self.items: IdMap = item_map

    @classmethod
    def from_matrix(cls, matrix: sp.spmatrix, items: IdMap) -> "Baskets":
        b = cls.__new__(cls)
        m = sp.csr_matrix(matrix)
        m.data = np.ones_like(m.data, dtype=np.uint8)
        b.matrix, b.items = m.astype(np.uint8), items
        return b

    @classmethod
    def from_frame(cls, df: Any, transaction: str = "transaction", item: str = "item") -> "Baskets":
        """Long format: one row per (transaction, item)."""
        pdf = to_pandas(df, "baskets")
        require_columns(pdf, {"transaction": transaction, "item": item}, "baskets")
        if pdf[item].isna().any():
            raise DataError(f"baskets: missing item in column {item!r} at row {int(np.flatnonzero(pdf[item].isna().to_numpy())[0])}")
        tmap, t = IdMap.from_values(pdf[transaction].to_numpy(), "transaction")
        imap, i = IdMap.from_values(pdf[item].to_numpy(), "item")
        m = sp.csr_matrix((np.ones(len(t), dtype=np.uint8), (t, i)), shape=(len(tmap), len(imap)))
        m.sum_duplicates()
        m.data[:] = 1
        m.sort_indices()
        return cls.from_matrix(m, imap)

    @classmethod
    def from_onehot(cls, df: Any) -> "Baskets":
        """A boolean/0-1 DataFrame, one column per item (mlxtend's input format)."""
        pdf = to_pandas(df, "baskets")
        vals = pdf.to_numpy()
        if not (np.isin(vals, [0, 1, True, False])).all():
            raise DataError("one-hot baskets must contain only 0/1 or booleans")
        return cls.from_matrix(sp.csr_matrix(vals.astype(np.uint8)), IdMap(np.asarray(pdf.columns), "item"))

    @classmethod
    def from_file(cls, path: str | os.PathLike, sep: str | None = None, *, drop_empty: bool = False) -> "Baskets":
        """One basket per line: FIMI ``.dat`` (whitespace, ``sep=None``) or CSV (``sep=","``).
        Integer-looking items become ints, others stay strings."""
        lists = read_baskets_file(path, sep=sep)
        flat = [x for b in lists for x in b]
        if not flat:
            raise DataError(f"{path}: no items found")
        arr = maybe_int(flat)
        lengths = np.fromiter((len(b) for b in lists), dtype=np.int64, count=len(lists))
        if drop_empty:
            keep = lengths > 0
            lengths = lengths[keep]
        imap, codes = IdMap.from_values(arr, "item")
        b = cls.__new__(cls)
        b._build(codes, lengths, imap)
        return b

    # ------------------------------------------------------------------
    def __len__(self) -> int:
        return self.matrix.shape[0]

    @property
    def n_items(self) -> int:
        return self.matrix.shape[1]

    def __repr__(self) -> str:
        return f"Baskets({len(self)} baskets, {self.n_items} items, {self.matrix.nnz} entries)"

    def __iter__(self):
        m = self.matrix
        for r in range(m.shape[0]):
            yield self.items.ids[m.indices[m.indptr[r]:m.indptr[r + 1]]].tolist()

    def to_lists(self) -> list[list[Any]]:
        return list(self)

    def item_counts(self) -> np.ndarray:
        return np.bincount(self.matrix.indices, minlength=self.n_items)


def _bad_basket(b: Any) -> list:
    raise DataError(f"each basket must be a list/set of items, got the string {b!r} (wrap it in a list)")


def as_baskets(data: Any) -> Baskets:
    """Accept Baskets, a list of lists/sets, a one-hot DataFrame or a long DataFrame (transaction, item)."""
    if isinstance(data, Baskets):
        return data
    if isinstance(data, (list, tuple)) or hasattr(data, "__next__"):
        return Baskets(data)
    if isinstance(data, (str, os.PathLike)):
        return Baskets.from_file(data, sep="," if str(data).endswith(".csv") else None)
    pdf = to_pandas(data, "baskets")
    if {"transaction", "item"} <= set(pdf.columns):
        return Baskets.from_frame(pdf)
    return Baskets.from_onehot(pdf)
