"""Item metadata (title, genres, …) returned beside ids, and the title search of the page.

From a registered dataset's item side table (``tastebud serve DIR --dataset movielens-100k``) or a
user's CSV/TSV/Parquet table (``--items items.csv``) whose ``item`` column (or first column) holds
the ids. Values are returned as JSON scalars; lists (genres) are kept as lists.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def json_value(v: Any) -> Any:
    """A value as plain JSON: arrays and tuples as lists, numpy scalars as Python ones, NaN/NA as null."""
    if isinstance(v, np.ndarray):
        return [json_value(x) for x in v.tolist()]
    if isinstance(v, (list, tuple)):
        return [json_value(x) for x in v]
    if isinstance(v, dict):
        return {str(k): json_value(x) for k, x in v.items()}
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    try:
        import pandas as pd

        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    return str(v)


class Catalog:
    """Metadata per item id (looked up by the id's text, so 42 and "42" find the same row)."""

    def __init__(self, frame: Any = None, id_column: str | None = None):
        self.rows: dict[str, dict[str, Any]] = {}
        self.ids: list[Any] = []
        self._text: list[str] = []
        if frame is None:
            return
        df = frame
        col = id_column or ("item" if "item" in df.columns else df.columns[0])
        if col not in df.columns:
            raise ValueError(f"item table has no column {col!r}; columns are {list(df.columns)}")
        other = [c for c in df.columns if c != col]
        title_col = next((c for c in other if str(c).lower() in ("title", "name")), other[0] if other else None)
        for rec in df.to_dict("records"):
            iid = json_value(rec[col])
            meta = {str(c): json_value(rec[c]) for c in other}
            key = str(iid)
            if key in self.rows:
                raise ValueError(f"item table: duplicate item id {iid!r} in column {col!r}")
            self.rows[key] = meta
            self.ids.append(iid)
            parts = [str(iid)] + [str(meta.get(title_col, ""))] if title_col else [str(iid)]
            for c in other:
                v = meta[c]
                if isinstance(v, list):
                    parts += [str(x) for x in v]
                elif isinstance(v, str) and c != title_col:
                    parts.append(v)
            self._text.append(" ".join(parts).lower())
        self.title_column = title_col

    def __len__(self) -> int:
        return len(self.rows)

    def get(self, item: Any) -> dict[str, Any] | None:
        return self.rows.get(str(item))

    def title(self, item: Any) -> str | None:
        row = self.rows.get(str(item))
        if row is None or not self.title_column:
            return None
        t = row.get(self.title_column)
        return None if t is None else str(t)

    def describe(self, items: list[Any]) -> list[dict[str, Any] | None]:
        return [self.rows.get(str(i)) for i in items]

    def search(self, q: str, limit: int, restrict: Any = None) -> list[dict[str, Any]]:
        """Items whose id, title or text columns contain every word of ``q`` (case-insensitive);
        exact titles first, then titles starting with the query, then titles containing it. ``restrict``: a set of id texts to keep."""
        words = [w for w in q.lower().split() if w]
        if not words:
            return []
        hits: list[tuple[int, int]] = []
        for j, text in enumerate(self._text):
            if all(w in text for w in words):
                if restrict is not None and str(self.ids[j]) not in restrict:
                    continue
                title = str(self.rows[str(self.ids[j])].get(self.title_column, "")).lower() if self.title_column else ""
                phrase = " ".join(words)
                rank = 0 if title == phrase else 1 if title.startswith(phrase) else 2 if phrase in title else 3
                hits.append((rank, j))
                if len(hits) >= limit * 20:
                    break
        hits.sort()
        return [{"item": self.ids[j], **self.rows[str(self.ids[j])]} for _, j in hits[:limit]]


def load_catalog(items: str | None = None, dataset: str | None = None) -> Catalog:
    """A catalogue from an item table file or a registered dataset's item side table."""
    import pandas as pd

    if items:
        p = Path(items)
        if not p.exists():
            raise FileNotFoundError(f"{p}: no such item table")
        if p.suffix.lower() == ".parquet":
            df = pd.read_parquet(p)
        else:
            df = pd.read_csv(p, sep="\t" if p.suffix.lower() in (".tsv", ".tab") else ",")
        return Catalog(df)
    if dataset:
        from ..data import datasets

        ds = datasets.load(dataset)
        if getattr(ds, "items", None) is None:
            raise ValueError(f"dataset {dataset!r} has no item side table")
        return Catalog(ds.items)
    return Catalog()
