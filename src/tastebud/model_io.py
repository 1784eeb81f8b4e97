"""Turning files and datasets into the input a registered model's ``fit`` expects (used by the CLI,
the demo and the server). Models never parse files themselves.

File formats (``fmt="auto"`` tells them apart by the file's name and first lines):

``table``    a delimited file (CSV/TSV/whitespace) with a header naming the user and item columns
             (plus optional rating / weight / timestamp columns), or a Parquet file;
``pairs``    no header, exactly two fields per line: ``user item`` in time order (amazon-games);
``baskets``  no header, one basket per line (groceries.csv, FIMI .dat files).
"""

from __future__ import annotations

import codecs
import os
import types
from pathlib import Path
from typing import Any

from .exceptions import DataError

FORMATS = ("auto", "table", "pairs", "baskets")


def unescape_sep(sep: str | None) -> str | None:
    """``'\\t'`` as typed in a shell (a backslash and a t) → a tab; other escapes likewise."""
    if sep is None or "\\" not in sep:
        return sep
    try:
        return codecs.decode(sep, "unicode_escape")
    except UnicodeDecodeError as e:
        raise DataError(f"--sep {sep!r}: not a valid escape sequence ({e})") from None


def _default_sep(suffix: str) -> str | None:
    return "," if suffix == ".csv" else "\t" if suffix in (".tsv", ".tab", ".data") else None


def sniff_format(path: str | os.PathLike, sep: str | None = None, user: str = "user", item: str = "item") -> str:
    """``"table"``, ``"pairs"`` or ``"baskets"`` for a data file (see the module docstring)."""
    p = Path(path)
    if p.suffix.lower() in (".parquet", ".pq"):
        return "table"
    sep = sep if sep is not None else _default_sep(p.suffix.lower())
    widths: list[int] = []
    with open(p, encoding="utf-8", errors="replace") as f:
        for line in f:
            s = line.strip()
            if not s:
                continue
            fields = [x.strip().strip('"') for x in (s.split(sep) if sep else s.split())]
            if not widths and user in fields and item in fields:
                return "table"
            widths.append(len(fields))
            if len(widths) >= 1000:
                break
    if not widths:
        raise DataError(f"{p}: file is empty")
    return "pairs" if all(w == 2 for w in widths) else "baskets"


def _read_frame(p: Path, sep: str | None):
    if p.suffix.lower() in (".parquet", ".pq"):
        import pandas as pd

        try:
            return pd.read_parquet(p)
        except Exception as e:  # pyarrow raises several types for bad files
            raise DataError(f"{p}: cannot read as Parquet: {e}") from e
    from .data.readers import read_table

    sep = sep if sep is not None else _default_sep(p.suffix.lower())
    return read_table(p, sep=sep if sep is not None else r"\s+")


def _interactions(df: Any, p: Path, user: str, item: str, rating: str | None, weight: str | None,
                  timestamp: str | None, duplicates: str | None) -> Any:
    from .data import Interactions

    if weight is not None:
        rating = None
    elif rating is not None and rating not in df.columns:
        rating = None
    return Interactions.from_frame(df, user=user, item=item, rating=rating, weight=weight,
                                   timestamp=timestamp if timestamp and timestamp in df.columns else None,
                                   duplicates=duplicates, source=str(p))  # type: ignore[arg-type]


def load_training_data(task: str, path: str | os.PathLike | None = None, dataset: str | None = None,
                       user: str = "user", item: str = "item", rating: str | None = "rating",
                       timestamp: str | None = None, sep: str | None = None, *, weight: str | None = None,
                       duplicates: str | None = None, fmt: str = "auto", accepts_baskets: bool = False) -> Any:
    """Read ``path`` (CSV/TSV/Parquet table, ``user item`` pairs or basket file) or a named dataset into
    the object a model of ``task`` fits on: Interactions (rating/topn), Sequences, Baskets, or a
    DataFrame (features). ``rating`` names the explicit-rating column (used when present), ``weight``
    an implicit-weight column; ``duplicates`` as in :meth:`Interactions.from_frame`. A sequence model
    that also learns from baskets (``accepts_baskets``, e.g. Item2Vec) gets Baskets from a basket file."""
    from .data import Baskets, Sequences

    if (path is None) == (dataset is None):
        raise ValueError("give exactly one of a data file or a dataset name")
    if dataset is not None:
        from .data import datasets

        ds = datasets.load(dataset)
        if task in ("rating", "topn", "features"):
            if ds.interactions is None:
                raise DataError(f"dataset {dataset!r} has no user-item interactions (task {task})")
            return ds.interactions if task != "features" else ds.interactions.to_frame()
        if task == "sequence":
            if ds.sequences is not None:
                return ds.sequences
            if ds.interactions is not None and ds.interactions.timestamps is not None:
                return Sequences.from_interactions(ds.interactions)
            if accepts_baskets and ds.baskets is not None:
                return ds.baskets
            raise DataError(f"dataset {dataset!r} has no sequences")
        if task == "baskets":
            if ds.baskets is None:
                raise DataError(f"dataset {dataset!r} has no baskets")
            return ds.baskets
        raise ValueError(f"unknown task {task!r}")

    p = Path(path)  # type: ignore[arg-type]
    sep = unescape_sep(sep)
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    kind = sniff_format(p, sep, user, item) if fmt == "auto" else fmt
    if kind == "baskets":
        if task == "baskets" or (task == "sequence" and accepts_baskets):
            return Baskets.from_file(p, sep=sep if sep is not None else _default_sep(p.suffix.lower()))
        raise DataError(f"{p} looks like a basket file (one basket per line, no header naming columns "
                        f"{user!r} and {item!r}); a {task} model needs a table with a header "
                        f"({user},{item}[,rating,timestamp]){' or user-item pairs' if task == 'sequence' else ''}. "
                        "Use --user-col/--item-col, or --format table if the file is one")
    if kind == "pairs":
        seqs = Sequences.from_file(p, sep=sep if sep is not None else _default_sep(p.suffix.lower()))
        if task == "sequence":
            return seqs
        if task == "baskets":
            return Baskets.from_frame(_pairs_frame(seqs), transaction="user", item="item")
        if task == "rating":
            raise DataError(f"{p}: a rating model needs a rating column; the file holds 'user item' pairs without a header")
        return _pairs_interactions(seqs)
    df = _read_frame(p, sep)
    if task == "features":
        return df
    if task == "sequence":
        from .data._frames import require_columns

        require_columns(df, {"user": user, "item": item}, str(p))
        return Sequences.from_frame(df, user=user, item=item, timestamp=timestamp if timestamp in df.columns else None)
    if task == "baskets":
        return Baskets.from_frame(df, transaction=user, item=item)
    if task == "rating" and (rating is None or rating not in df.columns):
        raise DataError(f"{p}: a rating model needs a rating column (looked for {rating!r}; columns are {list(df.columns)})")
    return _interactions(df, p, user, item, rating, weight, timestamp, duplicates)


def _pairs_frame(seqs: Any) -> Any:
    import numpy as np
    import pandas as pd

    u = np.repeat(np.arange(seqs.n_users), seqs.lengths())
    return pd.DataFrame({"user": seqs.users.ids[u], "item": seqs.items.ids[seqs.indices]})


def _pairs_interactions(seqs: Any) -> Any:
    from .data import Interactions

    df = _pairs_frame(seqs)
    return Interactions.from_arrays(df["user"].to_numpy(), df["item"].to_numpy(), user_map=seqs.users, item_map=seqs.items)


def load_dataset_file(path: str | os.PathLike, user: str = "user", item: str = "item", rating: str | None = "rating",
                      timestamp: str | None = "timestamp", sep: str | None = None, *, weight: str | None = None,
                      duplicates: str | None = None, fmt: str = "auto") -> Any:
    """A data file as a dataset for ``tastebud evaluate --data``: an object with ``name``,
    ``interactions``, ``sequences``, ``baskets`` (``None`` where the file does not hold that kind of
    data) and ``has_ratings`` (whether ``interactions`` holds explicit ratings)."""
    from .data import Baskets, Sequences

    p = Path(path)
    sep = unescape_sep(sep)
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    kind = sniff_format(p, sep, user, item) if fmt == "auto" else fmt
    ds = types.SimpleNamespace(name=p.name, path=p, interactions=None, sequences=None, baskets=None,
                               has_ratings=False, kind=kind)
    if kind == "baskets":
        ds.baskets = Baskets.from_file(p, sep=sep if sep is not None else _default_sep(p.suffix.lower()))
    elif kind == "pairs":
        ds.sequences = Sequences.from_file(p, sep=sep if sep is not None else _default_sep(p.suffix.lower()))
        ds.interactions = _pairs_interactions(ds.sequences)
    else:
        df = _read_frame(p, sep)
        ds.interactions = _interactions(df, p, user, item, rating, weight, timestamp, duplicates)
        ds.has_ratings = weight is None and rating is not None and rating in df.columns
        ts = timestamp if timestamp and timestamp in df.columns else None
        ds.sequences = Sequences.from_frame(df, user=user, item=item, timestamp=ts)
    return ds
