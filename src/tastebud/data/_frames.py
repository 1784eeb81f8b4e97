"""Accept pandas, polars and pyarrow tables alike (converted to pandas at the door)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..exceptions import DataError

#: ``DataFrame.attrs`` key set by :func:`tastebud.data.readers.read_table`: (path, header lines, rows)
FILE_ATTR = "tastebud_file"


def to_pandas(df: Any, what: str = "data") -> pd.DataFrame:
    if isinstance(df, pd.DataFrame):
        return df
    mod = type(df).__module__.split(".")[0]
    if mod == "polars":
        if hasattr(df, "collect") and not hasattr(df, "to_pandas"):  # a LazyFrame: run the query first
            df = df.collect()
        return df.to_pandas()
    if mod == "pyarrow":
        return df.to_pandas()
    if isinstance(df, dict):
        return pd.DataFrame(df)
    raise DataError(f"{what} must be a pandas, polars or pyarrow table, got {type(df).__name__}")


def where(df: pd.DataFrame, row: int) -> str:
    """``"line N"`` (1-based line of the file) for row ``row`` of a table read by ``read_table`` and
    not reshaped since, else ``"row N"`` (0-based position)."""
    info = df.attrs.get(FILE_ATTR)
    if info and len(df) == info[2] and isinstance(df.index, pd.RangeIndex) and df.index.start == 0 and df.index.step == 1:
        line = line_of_row(info[0], row, info[1])
        if line is not None:
            return f"line {line}"
    return f"row {row}"


def line_of_row(path: str, row: int, header_lines: int = 1, encoding: str = "utf-8") -> int | None:
    """1-based line number of data row ``row`` (0-based) of a delimited file whose first
    ``header_lines`` non-blank lines are headers; blank lines are skipped, as ``read_csv`` does.
    ``None`` when the file has fewer rows (or cannot be read). Reads the file: for error messages."""
    seen = -header_lines
    try:
        with open(path, encoding=encoding, errors="replace") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                if seen == row:
                    return n
                seen += 1
    except OSError:
        return None
    return None


def require_columns(df: pd.DataFrame, cols: dict[str, str | None], source: str = "data") -> None:
    for arg, col in cols.items():
        if col is not None and col not in df.columns:
            raise DataError(
                f"{source}: column {col!r} (argument {arg}=) not found; columns are {list(df.columns)}"
            )
