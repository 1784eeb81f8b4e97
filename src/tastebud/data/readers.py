"""File readers. Every error names the file and, where it can, the line."""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import os
import re
import zipfile
import zlib
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import numpy as np
import pandas as pd

from ..exceptions import DataError
from ._frames import FILE_ATTR


def _check_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no such file: {p}")
    if p.is_dir():
        raise DataError(f"{p} is a directory, expected a file")
    return p


# what the decompressors raise on a truncated or corrupt file (bz2 raises a plain OSError)
_CORRUPT = (EOFError, zlib.error, lzma.LZMAError, zipfile.BadZipFile, gzip.BadGzipFile)


@contextlib.contextmanager
def _compressed_bytes_of(p: Path) -> Iterator[None]:
    """Decompression failures inside the block become a DataError naming ``p``; OSErrors about the
    file system (they carry an errno; bz2's "Invalid data stream" does not) pass through."""
    try:
        yield
    except _CORRUPT as e:
        raise DataError(f"{p}: the compressed file is truncated or corrupt ({type(e).__name__}: {e})") from None
    except OSError as e:
        if e.errno is not None:
            raise
        raise DataError(f"{p}: the compressed file is truncated or corrupt ({type(e).__name__}: {e})") from None


def open_binary(path: str | os.PathLike) -> BinaryIO:
    """The file's bytes, decompressed by suffix (``.gz``, ``.bz2``, ``.xz``/``.lzma``) like pandas does."""
    p = _check_path(path)
    suffix = p.suffix.lower()
    if suffix == ".gz":
        return gzip.open(p, "rb")
    if suffix == ".bz2":
        return bz2.open(p, "rb")
    if suffix in (".xz", ".lzma"):
        return lzma.open(p, "rb")
    return open(p, "rb")


def text_lines(path: str | os.PathLike, encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
    """Yield ``(1-based line number, line)`` of a text file (compressed by suffix or not).

    Undecodable bytes raise :class:`DataError` naming the file and the line; a truncated or corrupt
    compressed file raises :class:`DataError` naming the file."""
    p = _check_path(path)
    try:
        with _compressed_bytes_of(p), io.TextIOWrapper(open_binary(p), encoding=encoding) as f:
            yield from enumerate(f, 1)
    except UnicodeDecodeError as e:
        raise DataError(f"{p}: line {_undecodable_line(p, encoding)}: not valid {encoding} text ({e.reason}); "
                        "is it a text file of that encoding?") from None


def _undecodable_line(p: Path, encoding: str) -> int | str:
    """The first line of ``p`` that does not decode (for error messages)."""
    try:
        with open_binary(p) as f:
            for n, raw in enumerate(f, 1):
                try:
                    raw.decode(encoding)
                except UnicodeDecodeError:
                    return n
    except (OSError, *_CORRUPT):
        pass
    return "?"


def read_table(path: str | os.PathLike, sep: str = ",", header: bool = True, **kw: Any) -> pd.DataFrame:
    """``pandas.read_csv`` with errors that name the file and line (compression by suffix). The frame
    remembers its file (``df.attrs``) so that later checks (e.g. a NaN rating) can give the file's line."""
    p = _check_path(path)
    exact = not ({"skiprows", "comment", "skipfooter", "nrows"} & set(kw))  # rows map to lines one to one
    try:
        with _compressed_bytes_of(p):
            df = pd.read_csv(p, sep=sep, header=0 if header else None, engine=kw.pop("engine", "c"), **kw)
        if exact:
            df.attrs[FILE_ATTR] = (str(p), 1 if header else 0, len(df))
        return df
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
    for n, line in text_lines(path, encoding):
        s = line.strip()
        if s:
            yield n, s


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
    for n, line in text_lines(p, encoding):
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
    """Strings → int64 when every value is an integer literal within the int64 range, else unicode
    (so integer-looking ids too large for int64 are kept, as strings)."""
    arr = np.asarray(values, dtype=str)
    if arr.size and all(re.fullmatch(r"-?\d+", v) for v in set(values)):
        try:
            return arr.astype(np.int64)
        except OverflowError:
            return arr
    return arr


# ---------------------------------------------------------------------- MovieLens latest-small / 1M
def _split_genres(s: pd.Series, sep: str = "|") -> list[list[str]]:
    out = []
    for v in s.fillna("").astype(str):
        out.append([] if v in ("", "(no genres listed)") else v.split(sep))
    return out


def _check_columns(p: Path, df: pd.DataFrame, cols: list[str]) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DataError(f"{p}: missing column(s) {missing}; header has {list(df.columns)}")


def _check_numeric(p: Path, df: pd.DataFrame, cols: list[str], header_lines: int = 1) -> None:
    for c in cols:
        vals = pd.to_numeric(df[c], errors="coerce")
        bad = vals.isna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(f"{p}: line {row + 1 + header_lines}: column {c!r} is not a number ({df[c].iloc[row]!r})")
        df[c] = vals


def read_ml_latest_ratings(path: str | os.PathLike) -> pd.DataFrame:
    """MovieLens latest ``ratings.csv`` (userId,movieId,rating,timestamp) → columns user, item, rating, timestamp."""
    p = _check_path(path)
    df = read_table(p, sep=",", dtype=str)
    _check_columns(p, df, ["userId", "movieId", "rating", "timestamp"])
    _check_numeric(p, df, ["userId", "movieId", "rating", "timestamp"])
    df = df.rename(columns={"userId": "user", "movieId": "item"})
    return df.astype({"user": np.int64, "item": np.int64, "rating": np.float64, "timestamp": np.int64})


def read_ml_latest_movies(path: str | os.PathLike) -> pd.DataFrame:
    """MovieLens latest ``movies.csv`` (movieId,title,genres) → indexed by item; ``genres`` is a list of names
    (``"(no genres listed)"`` → ``[]``), ``year`` parsed from a trailing ``(YYYY)`` in the title."""
    p = _check_path(path)
    df = read_table(p, sep=",", dtype={"movieId": str, "title": str, "genres": str}, keep_default_na=False)
    _check_columns(p, df, ["movieId", "title", "genres"])
    _check_numeric(p, df, ["movieId"])
    df = df.rename(columns={"movieId": "item"}).astype({"item": np.int64})
    df["genres"] = _split_genres(df["genres"])
    df["year"] = pd.to_numeric(df["title"].str.extract(r"\((\d{4})\)\s*$")[0], errors="coerce").astype("Int64")
    return df.set_index("item", drop=False)


def read_ml_latest_tags(path: str | os.PathLike) -> pd.DataFrame:
    """MovieLens latest ``tags.csv`` (userId,movieId,tag,timestamp) → columns user, item, tag, timestamp."""
    p = _check_path(path)
    df = read_table(p, sep=",", dtype={"tag": str}, keep_default_na=False)
    _check_columns(p, df, ["userId", "movieId", "tag", "timestamp"])
    _check_numeric(p, df, ["userId", "movieId", "timestamp"])
    df = df.rename(columns={"userId": "user", "movieId": "item"})
    return df.astype({"user": np.int64, "item": np.int64, "timestamp": np.int64})


def read_ml_latest_links(path: str | os.PathLike) -> pd.DataFrame:
    """MovieLens latest ``links.csv`` (movieId,imdbId,tmdbId) → indexed by item; ids kept as strings."""
    p = _check_path(path)
    df = read_table(p, sep=",", dtype=str, keep_default_na=False)
    _check_columns(p, df, ["movieId", "imdbId", "tmdbId"])
    _check_numeric(p, df, ["movieId"])
    df = df.rename(columns={"movieId": "item"}).astype({"item": np.int64})
    return df.set_index("item", drop=False)


def _read_double_colon(p: Path, names: list[str], encoding: str = "latin-1") -> pd.DataFrame:
    rows = []
    for n, s in iter_lines(p, encoding=encoding):
        parts = s.split("::")
        if len(parts) != len(names):
            raise DataError(f"{p}: line {n}: expected {len(names)} '::'-separated fields ({', '.join(names)}), got {s!r}")
        rows.append(parts)
    if not rows:
        raise DataError(f"{p}: file is empty")
    return pd.DataFrame(rows, columns=names)


def read_ml1m_ratings(path: str | os.PathLike) -> pd.DataFrame:
    """MovieLens 1M ``ratings.dat``: ``UserID::MovieID::Rating::Timestamp`` → user, item, rating, timestamp."""
    p = _check_path(path)
    df = _read_double_colon(p, ["user", "item", "rating", "timestamp"])
    _check_numeric(p, df, ["user", "item", "rating", "timestamp"], header_lines=0)
    return df.astype({"user": np.int64, "item": np.int64, "rating": np.float64, "timestamp": np.int64})


def read_ml1m_users(path: str | os.PathLike) -> pd.DataFrame:
    """MovieLens 1M ``users.dat``: ``UserID::Gender::Age::Occupation::Zip-code`` (age and occupation are codes)."""
    p = _check_path(path)
    df = _read_double_colon(p, ["user", "gender", "age", "occupation", "zip"])
    _check_numeric(p, df, ["user", "age", "occupation"], header_lines=0)
    df = df.astype({"user": np.int64, "age": np.int64, "occupation": np.int64})
    return df.set_index("user", drop=False)


def read_ml1m_movies(path: str | os.PathLike) -> pd.DataFrame:
    """MovieLens 1M ``movies.dat``: ``MovieID::Title::Genres`` (latin-1) → indexed by item, genres as lists."""
    p = _check_path(path)
    df = _read_double_colon(p, ["item", "title", "genres"])
    _check_numeric(p, df, ["item"], header_lines=0)
    df = df.astype({"item": np.int64})
    df["genres"] = _split_genres(df["genres"])
    df["year"] = pd.to_numeric(df["title"].str.extract(r"\((\d{4})\)\s*$")[0], errors="coerce").astype("Int64")
    return df.set_index("item", drop=False)


def read_mushroom_baskets(path: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    """UCI Mushroom as a CSV with a header (``mushrooms.csv``): returns (column names, an object array of
    ``column=value`` strings of shape (n_rows, n_columns)); one basket per row."""
    p = _check_path(path)
    df = read_table(p, sep=",", dtype=str, keep_default_na=False)
    if df.shape[1] < 2:
        raise DataError(f"{p}: expected a CSV with a header and one column per attribute, got {df.shape[1]} column(s)")
    empty = (df == "").to_numpy()
    if empty.any():
        r, c = np.argwhere(empty)[0]
        raise DataError(f"{p}: line {r + 2}: empty value in column {df.columns[c]!r}")
    cols = [str(c) for c in df.columns]
    vals = df.to_numpy(dtype=object)
    out = np.empty(vals.shape, dtype=object)
    for j, c in enumerate(cols):
        out[:, j] = [f"{c}={v}" for v in vals[:, j]]
    return cols, out
