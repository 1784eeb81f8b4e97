"""Accept pandas, polars and pyarrow tables alike (converted to pandas at the door)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..exceptions import DataError


def to_pandas(df: Any, what: str = "data") -> pd.DataFrame:
    if isinstance(df, pd.DataFrame):
        return df
    mod = type(df).__module__.split(".")[0]
    if mod == "polars":
        return df.to_pandas()
    if mod == "pyarrow":
        return df.to_pandas()
    if isinstance(df, dict):
        return pd.DataFrame(df)
    raise DataError(f"{what} must be a pandas, polars or pyarrow table, got {type(df).__name__}")


def require_columns(df: pd.DataFrame, cols: dict[str, str | None], source: str = "data") -> None:
    for arg, col in cols.items():
        if col is not None and col not in df.columns:
            raise DataError(
                f"{source}: column {col!r} (argument {arg}=) not found; columns are {list(df.columns)}"
            )
