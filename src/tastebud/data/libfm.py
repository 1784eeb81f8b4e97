"""Read and write libFM / libsvm text files.

Format: one example per line, ``label index:value index:value ...``; indices are non-negative
integers (libFM counts from 0, libsvm usually from 1: ``zero_based=True`` keeps indices as
written, ``False`` subtracts 1). Blank lines and ``#`` comments (to the end of the line) are
skipped. Every error names the file and the 1-based line.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ..exceptions import DataError
from .readers import text_lines


def read_libfm(
    path: str | os.PathLike,
    n_features: int | None = None,
    zero_based: bool = True,
    dtype: type = np.float64,
) -> tuple[sp.csr_matrix, np.ndarray]:
    """Read a libFM/libsvm file into ``(X, y)``: a CSR matrix and the labels.

    ``n_features`` fixes the number of columns (e.g. to align a test file with its training
    file); an index at or beyond it is an error. Otherwise the width is the largest index + 1.
    Duplicate indices on a line are an error.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no such file: {p}")
    labels: list[float] = []
    indptr = [0]
    indices: list[int] = []
    values: list[float] = []
    off = 0 if zero_based else 1
    for lineno, line in text_lines(p, "utf-8"):
        hash_pos = line.find("#")
        if hash_pos >= 0:
            line = line[:hash_pos]
        parts = line.split()
        if not parts:
            continue
        try:
            lab = float(parts[0])
        except ValueError:
            raise DataError(f"{p}:{lineno}: label {parts[0]!r} is not a number") from None
        if not np.isfinite(lab):
            raise DataError(f"{p}:{lineno}: label {parts[0]!r} is not finite")
        row_idx: list[int] = []
        for tok in parts[1:]:
            key, sep, val = tok.partition(":")
            if not sep:
                raise DataError(f"{p}:{lineno}: expected index:value, got {tok!r}")
            try:
                j = int(key) - off
            except ValueError:
                raise DataError(f"{p}:{lineno}: feature index {key!r} is not an integer") from None
            try:
                v = float(val)
            except ValueError:
                raise DataError(f"{p}:{lineno}: value {val!r} of feature {key} is not a number") from None
            if j < 0:
                raise DataError(f"{p}:{lineno}: feature index {key} is below the first index ({off})")
            if n_features is not None and j >= n_features:
                raise DataError(f"{p}:{lineno}: feature index {key} is out of range for n_features={n_features}")
            if not np.isfinite(v):
                raise DataError(f"{p}:{lineno}: value {val!r} of feature {key} is not finite")
            row_idx.append(j)
            values.append(v)
        if len(set(row_idx)) != len(row_idx):  # linear: one set, then one pass to name the first repeat
            seen: set[int] = set()
            dup = next(j for j in row_idx if j in seen or seen.add(j))  # type: ignore[func-returns-value]
            raise DataError(f"{p}:{lineno}: feature index {dup + off} appears twice")
        indices.extend(row_idx)
        labels.append(lab)
        indptr.append(len(indices))
    if not labels:
        raise DataError(f"{p}: no examples in the file")
    width = n_features if n_features is not None else (max(indices) + 1 if indices else 0)
    X = sp.csr_matrix((np.asarray(values, dtype=dtype), np.asarray(indices, dtype=np.int64),
                       np.asarray(indptr, dtype=np.int64)), shape=(len(labels), width))
    X.sort_indices()
    return X, np.asarray(labels, dtype=np.float64)


def write_libfm(path: str | os.PathLike, X: sp.spmatrix | np.ndarray, y: np.ndarray, zero_based: bool = True) -> None:
    """Write ``(X, y)`` as a libFM/libsvm file (explicit zeros are skipped; values use ``repr``
    precision so that reading back gives identical floats). Written atomically."""
    M = sp.csr_matrix(X)
    yy = np.asarray(y, dtype=np.float64).ravel()
    if M.ndim != 2 or yy.shape != (M.shape[0],):
        raise DataError(f"y must have one label per row of X ({M.shape[0]}), got shape {np.shape(y)}")
    if not np.isfinite(yy).all() or (M.nnz and not np.isfinite(M.data).all()):
        raise DataError("write_libfm: X and y must be finite")
    M.sort_indices()
    off = 0 if zero_based else 1
    p = Path(path)
    tmp = p.with_name(f".{p.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for r in range(M.shape[0]):
            lab = yy[r]
            head = str(int(lab)) if float(lab).is_integer() else repr(float(lab))
            a, b = M.indptr[r], M.indptr[r + 1]
            toks = [f"{int(j) + off}:{float(v)!r}" for j, v in zip(M.indices[a:b], M.data[a:b]) if v != 0]
            fh.write(" ".join([head, *toks]) + "\n")
    os.replace(tmp, p)
