"""Readers for review-style data: one row per (user, item, rating, text, metadata).

The output is a pandas DataFrame with standard column names — ``user``, ``item``, ``rating``,
``text``, and where present ``summary``, ``timestamp`` — plus any metadata columns kept, ready
for :class:`~tastebud.models.multimodal.model.MultimodalModel` (e.g. ``fields={"user": "id", "item":
"id", "text": "text", "summary": "text"}``) or :func:`reviews_to_interactions`.

* :func:`read_amazon_reviews` — Amazon product reviews as JSON lines (McAuley et al. 2015/2016,
  Ni et al. 2019): ``reviewerID, asin, overall, reviewText, summary, unixReviewTime`` (plus
  ``vote``, ``verified``, ``style``, ... kept on request); plain or gzip-compressed.
* :func:`read_reviews` — any CSV / TSV / JSON-lines / Parquet file with a column mapping, e.g.
  Yelp's ``review.json``: ``columns={"user": "user_id", "item": "business_id", "rating": "stars",
  "text": "text", "timestamp": "date"}``.

Errors name the file and, for JSON lines, the line number.
"""

from __future__ import annotations

import gzip
import io
import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..exceptions import DataError
from .readers import _check_path

STANDARD = ("user", "item", "rating", "text", "summary", "timestamp")
AMAZON_COLUMNS = {"user": "reviewerID", "item": "asin", "rating": "overall", "text": "reviewText",
                  "summary": "summary", "timestamp": "unixReviewTime"}


def _open_text(p: Path) -> io.TextIOBase:
    with open(p, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(p, "rb"), encoding="utf-8")
    return open(p, encoding="utf-8")


def iter_json_lines(path: str | os.PathLike) -> Iterable[tuple[int, dict]]:
    """Yield ``(line number, record)`` for each non-blank line of a JSON-lines file (gzip or plain)."""
    p = _check_path(path)
    try:
        with _open_text(p) as fh:
            for n, line in enumerate(fh, 1):
                s = line.strip()
                if not s:
                    continue
                try:
                    rec = json.loads(s)
                except json.JSONDecodeError as e:
                    raise DataError(f"{p}: line {n}: not valid JSON: {e.msg}") from None
                if not isinstance(rec, dict):
                    raise DataError(f"{p}: line {n}: expected a JSON object, got {type(rec).__name__}")
                yield n, rec
    except UnicodeDecodeError as e:
        raise DataError(f"{p}: cannot decode as UTF-8: {e}") from None


def _finish(df: pd.DataFrame, source: str, text_fill: bool = True) -> pd.DataFrame:
    """Validate ids and ratings, normalise text and timestamps."""
    for col in ("user", "item"):
        if col in df.columns and df[col].isna().any():
            row = int(np.flatnonzero(df[col].isna().to_numpy())[0])
            raise DataError(f"{source}: missing {col} id at row {row}")
    if "rating" in df.columns:
        r = pd.to_numeric(df["rating"], errors="coerce")
        bad = r.isna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(f"{source}: rating {df['rating'].iloc[row]!r} at row {row} is not a number")
        df["rating"] = r.astype(np.float64)
    for col in ("text", "summary"):
        if col in df.columns and text_fill:
            df[col] = df[col].where(df[col].notna(), "").astype(str)
    if "timestamp" in df.columns and not pd.api.types.is_numeric_dtype(df["timestamp"]):
        ts = pd.to_datetime(df["timestamp"], errors="coerce", utc=True, format="mixed")
        bad = ts.isna() & df["timestamp"].notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(f"{source}: timestamp {df['timestamp'].iloc[row]!r} at row {row} is not a date")
        df["timestamp"] = (ts - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    return df.reset_index(drop=True)


def read_amazon_reviews(path: str | os.PathLike, keep: Sequence[str] | None = None, min_rating: float | None = None,
                        dedupe: bool = True) -> pd.DataFrame:
    """Amazon review JSON lines → DataFrame ``user, item, rating, text, summary, timestamp`` (+ ``keep``).

    ``keep`` names further record keys to keep as columns (e.g. ``["vote", "verified"]``; nested
    objects such as ``style`` are kept as JSON strings). Records without ``reviewerID``/``asin``
    or ``overall`` raise :class:`DataError` naming the line. Missing review text becomes ``""``.
    ``dedupe`` drops exact repeats of (user, item, timestamp, text), which these dumps contain.
    ``min_rating`` keeps only ratings ≥ it.
    """
    p = _check_path(path)
    keep = list(keep or [])
    rows: list[dict[str, Any]] = []
    for n, rec in iter_json_lines(p):
        row: dict[str, Any] = {}
        for std, key in AMAZON_COLUMNS.items():
            v = rec.get(key)
            if std in ("user", "item", "rating") and (v is None or v == ""):
                raise DataError(f"{p}: line {n}: missing {key!r} ({std})")
            row[std] = v
        for k in keep:
            v = rec.get(k)
            row[k] = json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v
        rows.append(row)
    if not rows:
        raise DataError(f"{p}: no reviews in file")
    df = pd.DataFrame(rows, columns=[*AMAZON_COLUMNS, *keep])
    df = _finish(df, str(p))
    if "vote" in df.columns:  # "1,234" strings in the 2018 dump
        df["vote"] = pd.to_numeric(df["vote"].astype(str).str.replace(",", ""), errors="coerce").fillna(0.0)
    if dedupe:
        df = df.drop_duplicates(subset=["user", "item", "timestamp", "text"]).reset_index(drop=True)
    if min_rating is not None:
        df = df[df["rating"] >= float(min_rating)].reset_index(drop=True)
    return df


def read_reviews(path: str | os.PathLike, columns: Mapping[str, str] | None = None, format: str | None = None,
                 keep: Sequence[str] | None = None, sep: str | None = None) -> pd.DataFrame:
    """A review file (CSV / TSV / JSON lines / Parquet) with a column mapping → standard columns.

    ``columns`` maps standard names (``user``, ``item``, ``rating``, ``text``, ``summary``,
    ``timestamp``) to the file's column names; names not mapped are looked up as themselves, and
    ``user`` and ``item`` are required. ``keep`` lists further file columns to keep (metadata).
    ``format`` is ``"csv"``, ``"tsv"``, ``"jsonl"`` or ``"parquet"`` (default: from the suffix, with
    ``.gz`` looked through). Timestamps given as dates become Unix seconds.
    """
    p = _check_path(path)
    fmt = format or _guess_format(p)
    if fmt in ("csv", "tsv"):
        try:
            raw = pd.read_csv(p, sep=sep or ("\t" if fmt == "tsv" else ","), compression="infer")
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
            raise DataError(f"{p}: cannot read as {fmt}: {e}") from None
    elif fmt == "jsonl":
        recs = [r for _, r in iter_json_lines(p)]
        raw = pd.DataFrame(recs)
    elif fmt == "parquet":
        raw = pd.read_parquet(p)
    else:
        raise ValueError(f"format must be 'csv', 'tsv', 'jsonl' or 'parquet', got {fmt!r}")
    mapping = dict(columns or {})
    bad = [k for k in mapping if k not in STANDARD]
    if bad:
        raise ValueError(f"columns= keys must be standard names {STANDARD}, got {bad}")
    out = pd.DataFrame(index=raw.index)
    for std in STANDARD:
        src = mapping.get(std, std)
        if src in raw.columns:
            out[std] = raw[src]
        elif std in mapping or std in ("user", "item"):
            raise DataError(f"{p}: column {src!r} (for {std}) not found; columns are {list(raw.columns)}")
    for k in keep or []:
        if k not in raw.columns:
            raise DataError(f"{p}: keep column {k!r} not found; columns are {list(raw.columns)}")
        out[k] = raw[k]
    if len(out) == 0:
        raise DataError(f"{p}: no reviews in file")
    return _finish(out, str(p))


def _guess_format(p: Path) -> str:
    suffixes = [s.lower() for s in p.suffixes if s.lower() not in (".gz", ".bz2", ".zip", ".xz")]
    ext = suffixes[-1] if suffixes else ""
    return {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".json": "jsonl", ".jsonl": "jsonl", ".ndjson": "jsonl",
            ".parquet": "parquet", ".pq": "parquet"}.get(ext, "csv")


def reviews_to_interactions(df: pd.DataFrame, duplicates: str = "last") -> Any:
    """The (user, item, rating[, timestamp]) part of a reviews frame as :class:`Interactions`."""
    from .interactions import Interactions

    return Interactions.from_frame(df, rating="rating" if "rating" in df.columns else None,
                                   timestamp="timestamp" if "timestamp" in df.columns else None,
                                   duplicates=duplicates, source="reviews")
