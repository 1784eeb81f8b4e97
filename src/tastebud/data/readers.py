"""File readers. Every error names the file and, where it can, the line."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from ..exceptions import DataError


def _check_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no such file: {p}")
    if p.is_dir():
        raise DataError(f"{p} is a directory, expected a file")
    return p


def read_table(path: str | os.PathLike, sep: str = ",", header: bool = True, **kw: Any) -> pd.DataFrame:
    """``pandas.read_csv`` with errors that name the file and line."""
    p = _check_path(path)
    try:
        return pd.read_csv(p, sep=sep, header=0 if header else None, engine=kw.pop("engine", "c"), **kw)
    except pd.errors.EmptyDataError as e:
        raise DataError(f"{p}: file is empty") from e
    except pd.errors.ParserError as e:
        m = re.search(r"line (\d+)", str(e))
        where = f" line {m.group(1)}" if m else ""
        raise DataError(f"{p}:{where}: malformed delimited file: {e}") from e
    except UnicodeDecodeError as e:
        raise DataError(f"{p}: cannot decode as {kw.get('encoding', 'utf-8')}: {e}; pass encoding=") from e


def iter_lines(path: str | os.PathLike, encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, stripped line), skipping blank lines."""
    p = _check_path(path)
    try:
        with open(p, encoding=encoding) as f:
            for n, line in enumerate(f, 1):
                s = line.strip()
                if s:
                    yield n, s
    except UnicodeDecodeError as e:
        raise DataError(f"{p}: cannot decode as {encoding}: {e}") from e


def read_ml100k_ratings(path: str | os.PathLike) -> pd.DataFrame:
    """MovieLens 100K ``u.data`` / ``uN.base`` / ``uN.test``: tab-separated user item rating timestamp."""
    p = _check_path(path)
    df = read_table(p, sep="\t", header=False, names=["user", "item", "rating", "timestamp"],
                    dtype={"user": np.int64, "item": np.int64, "rating": np.float64, "timestamp": np.int64}
                    if _looks_numeric(p) else None)
    if df.shape[1] != 4 or df.isna().any().any():
        bad = int(np.flatnonzero(df.isna().any(axis=1).to_numpy())[0]) + 1 if df.isna().any().any() else 1
        raise DataError(f"{p}: line {bad}: expected 4 tab-separated fields user item rating timestamp")
    return df


def _looks_numeric(p: Path) -> bool:
    with open(p, encoding="latin-1") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 4 or not all(re.fullmatch(r"-?\d+(\.\d+)?", x.strip()) for x in parts):
                raise DataError(f"{p}: line {n}: expected 4 tab-separated numbers user item rating timestamp, got {line.strip()!r}")
    return True


ML100K_GENRES = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
]


def read_ml100k_items(path: str | os.PathLike) -> pd.DataFrame:
    """``u.item`` (latin-1, ``|``-separated): item, title, release_date, url, genres (list of names), and 19 flags."""
    p = _check_path(path)
    names = ["item", "title", "release_date", "video_release_date", "url"] + [f"g_{g}" for g in ML100K_GENRES]
    df = read_table(p, sep="|", header=False, names=names, encoding="latin-1")
    if df["item"].isna().any():
        raise DataError(f"{p}: missing item id")
    flags = df[[f"g_{g}" for g in ML100K_GENRES]].fillna(0).astype(int).to_numpy()
    df["genres"] = [[g for g, f in zip(ML100K_GENRES, row) if f] for row in flags]
    df["year"] = pd.to_datetime(df["release_date"], format="%d-%b-%Y", errors="coerce").dt.year
    return df.drop(columns=["video_release_date"]).set_index("item", drop=False)


def read_ml100k_users(path: str | os.PathLike) -> pd.DataFrame:
    """``u.user``: user|age|gender|occupation|zip."""
    p = _check_path(path)
    df = read_table(p, sep="|", header=False, names=["user", "age", "gender", "occupation", "zip"], dtype={"zip": str})
    return df.set_index("user", drop=False)


def read_baskets_file(path: str | os.PathLike, sep: str | None = None, encoding: str = "utf-8") -> list[list[str]]:
    """One basket per line. ``sep=None`` splits on whitespace (FIMI ``.dat``); ``sep=","`` for CSV baskets.
    Items are returned as strings (integer-looking items are converted by the caller)."""
    out: list[list[str]] = []
    p = _check_path(path)
    with open(p, encoding=encoding) as f:
        for n, line in enumerate(f, 1):
            s = line.strip()
            if not s:
                out.append([])
                continue
            items = [x.strip() for x in (s.split() if sep is None else s.split(sep))]
            if any(x == "" for x in items):
                raise DataError(f"{p}: line {n}: empty item (doubled separator {sep!r})")
            out.append(items)
    # a trailing newline at EOF produces no extra line with enumerate; strip trailing empties from padding
    while out and out[-1] == []:
        out.pop()
    return out


def read_user_item_pairs(path: str | os.PathLike, sep: str | None = None) -> tuple[list[str], list[str]]:
    """Lines ``user item`` (extra columns ignored), in file order."""
    users: list[str] = []
    items: list[str] = []
    for n, s in iter_lines(path):
        parts = s.split() if sep is None else s.split(sep)
        if len(parts) < 2:
            raise DataError(f"{path}: line {n}: expected 'user item', got {s!r}")
        users.append(parts[0])
        items.append(parts[1])
    return users, items


def maybe_int(values: list[str]) -> np.ndarray:
    """Strings → int64 when every value is an integer literal, else unicode."""
    arr = np.asarray(values, dtype=str)
    if arr.size and all(re.fullmatch(r"-?\d+", v) for v in set(values)):
        return arr.astype(np.int64)
    return arr
