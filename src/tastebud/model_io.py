"""Turning files and datasets into the input a registered model's ``fit`` expects (used by the CLI,
the demo and the server). Models never parse files themselves."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .exceptions import DataError


def load_training_data(task: str, path: str | os.PathLike | None = None, dataset: str | None = None,
                       user: str = "user", item: str = "item", rating: str | None = "rating",
                       timestamp: str | None = None, sep: str | None = None) -> Any:
    """Read ``path`` (CSV/TSV/Parquet/basket/sequence file) or a named dataset into the object a model
    of ``task`` fits on: Interactions (rating/topn), Sequences, Baskets, or a DataFrame (features)."""
    from .data import Baskets, Interactions, Sequences

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
            raise DataError(f"dataset {dataset!r} has no sequences")
        if task == "baskets":
            if ds.baskets is None:
                raise DataError(f"dataset {dataset!r} has no baskets")
            return ds.baskets
        raise ValueError(f"unknown task {task!r}")

    p = Path(path)  # type: ignore[arg-type]
    suffix = p.suffix.lower()
    if task == "baskets":
        return Baskets.from_file(p, sep=sep if sep is not None else ("," if suffix == ".csv" else None))
    if task == "sequence" and suffix not in (".csv", ".tsv", ".parquet"):
        return Sequences.from_file(p, sep=sep)
    if suffix == ".parquet":
        import pandas as pd

        df = pd.read_parquet(p)
    else:
        from .data.readers import read_table

        df = read_table(p, sep=sep if sep is not None else ("\t" if suffix in (".tsv", ".data") else ","))
    if task == "features":
        return df
    if task == "sequence":
        return Sequences.from_frame(df, user=user, item=item, timestamp=timestamp if timestamp in df.columns else None)
    has_rating = rating is not None and rating in df.columns
    if task == "rating" and not has_rating:
        raise DataError(f"{p}: a rating model needs a rating column (looked for {rating!r}; columns are {list(df.columns)})")
    return Interactions.from_frame(df, user=user, item=item, rating=rating if has_rating else None,
                                   timestamp=timestamp if timestamp and timestamp in df.columns else None,
                                   source=str(p))
