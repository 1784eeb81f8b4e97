"""Validation of factorization-machine inputs: design matrices and targets (shared by the family)."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from ...exceptions import DataError


def check_design(X: Any, name: str = "X", n_features: int | None = None) -> sp.csr_matrix:
    """Validate a design matrix: 2-D, finite, at least one row; returns canonical CSR float64."""
    if sp.issparse(X):
        M = sp.csr_matrix(X, dtype=np.float64)
    else:
        try:
            arr = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise DataError(f"{name} must be a sparse matrix or a 2-D numeric array: {e}") from None
        if arr.ndim != 2:
            raise DataError(f"{name} must be 2-D, got shape {arr.shape}")
        M = sp.csr_matrix(arr)
    if M.shape[0] == 0:
        raise DataError(f"{name} has no rows")
    if M.nnz and not np.isfinite(M.data).all():
        bad = int(np.flatnonzero(~np.isfinite(M.data))[0])
        row = int(np.searchsorted(M.indptr, bad, side="right") - 1)
        raise DataError(f"{name} contains NaN or infinity (row {row})")
    if n_features is not None and M.shape[1] != n_features:
        raise DataError(f"{name} has {M.shape[1]} columns but the model was fitted with {n_features} features")
    M.sum_duplicates()
    M.sort_indices()
    M.indices = M.indices.astype(np.int64)
    M.indptr = M.indptr.astype(np.int64)
    return M


def check_targets(y: Any, n: int, task: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Validated targets (float64, one per row) and the classes: classification labels in
    {−1, 1} or {0, 1} become ±1 (classes: the label set); ordinal values become class indices
    0..K−1 (classes: the distinct values, increasing); regression has no classes."""
    if y is None:
        raise ValueError("y is required when fitting on a design matrix")
    yy = np.asarray(y, dtype=np.float64)
    if yy.ndim != 1 or len(yy) != n:
        raise DataError(f"y must be 1-D with one value per row of X ({n}), got shape {yy.shape}")
    if not np.isfinite(yy).all():
        raise DataError(f"y contains NaN or infinity (row {int(np.flatnonzero(~np.isfinite(yy))[0])})")
    if task == "classification":
        labels = set(np.unique(yy).tolist())
        if labels <= {-1.0, 1.0}:
            classes = np.array([-1.0, 1.0])
        elif labels <= {0.0, 1.0}:
            classes = np.array([0.0, 1.0])
        else:
            bad = sorted(labels - {-1.0, 0.0, 1.0}) or sorted(labels)
            raise DataError(f"classification labels must be in {{-1, 1}} or {{0, 1}}, got {bad[:5]}")
        return np.where(yy > 0, 1.0, -1.0), classes
    if task == "ordinal":
        classes = np.unique(yy)
        if len(classes) < 2:
            raise DataError(f"task='ordinal' needs at least 2 distinct values of y, got {classes.tolist()}")
        return np.searchsorted(classes, yy).astype(np.float64), classes  # class indices 0..K-1
    return yy, None


def int64_indices(M: sp.csr_matrix) -> sp.csr_matrix:
    """``M`` with int64 ``indices``/``indptr`` (scipy builds int32 ones where they fit; the kernels
    are compiled for int64), in place; returns ``M``."""
    if M.indices.dtype != np.int64:
        M.indices = M.indices.astype(np.int64)
    if M.indptr.dtype != np.int64:
        M.indptr = M.indptr.astype(np.int64)
    return M


__all__ = ["check_design", "check_targets", "int64_indices"]
