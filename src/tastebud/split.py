"""Train/test splits. All are seeded and vectorised, and all share the input's id maps, so the parts
align row for row (a user's index is the same in train and test).

``holdout``          random holdout, global or per user
``kfold``            k folds, each interaction in exactly one test fold (global or per user)
``temporal``         a global time cut: the latest interactions are the test set
``leave_last_out``   each user's last item for test (and the one before it for validation)
``official_folds``   MovieLens-100K's u1..u5 (and ua, ub) read from the dataset folder
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp

from .data.interactions import Interactions, as_interactions
from .data.sequences import Sequences, as_sequences
from .exceptions import DataError

__all__ = ["holdout", "kfold", "temporal", "leave_last_out", "official_folds"]


def _rng(random_state: Any) -> np.random.Generator:
    return random_state if isinstance(random_state, np.random.Generator) else np.random.default_rng(random_state)


def _check_fraction(name: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)) or not 0 < v < 1:
        raise ValueError(f"{name} must be a fraction strictly between 0 and 1, got {v!r}")
    return float(v)


def _rank_within_user(rows: np.ndarray, key: np.ndarray, n_users: int) -> np.ndarray:
    """Rank (0-based) of each entry within its user when sorted by ``key`` ascending (stable)."""
    order = np.lexsort((key, rows))
    counts = np.bincount(rows, minlength=n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(len(rows), dtype=np.int64)
    rank[order] = np.arange(len(rows)) - np.repeat(starts, counts)
    return rank


def _round_half_up(x: np.ndarray) -> np.ndarray:
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5 + 1e-9).astype(np.int64)


def holdout(
    inter: Any,
    test_size: float = 0.2,
    per_user: bool = True,
    random_state: Any = 0,
    min_train: int = 1,
) -> tuple[Interactions, Interactions]:
    """Random holdout. Returns ``(train, test)`` with the input's id maps.

    ``per_user=True``: each user with n interactions gives ``round(test_size · n)`` of them (half up) to
    test, but never so many that fewer than ``min_train`` stay in train (users with ≤ ``min_train``
    interactions keep all of them). ``per_user=False``: exactly ``round(test_size · nnz)`` interactions,
    uniformly at random, go to test.
    """
    inter = as_interactions(inter)
    test_size = _check_fraction("test_size", test_size)
    rng = _rng(random_state)
    n = inter.nnz
    if n == 0:
        raise DataError("holdout: the interactions are empty")
    if per_user:
        rows, _, _, _ = inter.coo()
        counts = inter.user_counts()
        n_test = np.minimum(_round_half_up(test_size * counts), np.maximum(counts - min_train, 0))
        rank = _rank_within_user(rows, rng.random(n), inter.n_users)
        test_mask = rank < n_test[rows]
    else:
        test_mask = np.zeros(n, dtype=bool)
        test_mask[rng.permutation(n)[: int(_round_half_up(test_size * n))]] = True
    return inter.select(~test_mask), inter.select(test_mask)


def kfold(inter: Any, n_folds: int = 5, per_user: bool = False, random_state: Any = 0) -> list[tuple[Interactions, Interactions]]:
    """``n_folds`` (train, test) pairs; every interaction is in exactly one test fold.

    Global: a random permutation cut into folds whose sizes differ by at most one. ``per_user=True``:
    each user's interactions are shuffled and dealt round-robin (starting at a random fold per user),
    so every user's test share is as even as possible across folds.
    """
    inter = as_interactions(inter)
    if not isinstance(n_folds, (int, np.integer)) or isinstance(n_folds, bool) or n_folds < 2:
        raise ValueError(f"n_folds must be an integer >= 2, got {n_folds!r}")
    n = inter.nnz
    if n < n_folds:
        raise DataError(f"kfold: {n} interactions cannot fill {n_folds} folds")
    rng = _rng(random_state)
    if per_user:
        rows, _, _, _ = inter.coo()
        rank = _rank_within_user(rows, rng.random(n), inter.n_users)
        offset = rng.integers(0, n_folds, inter.n_users)
        fold = (rank + offset[rows]) % n_folds
    else:
        fold = np.empty(n, dtype=np.int64)
        fold[rng.permutation(n)] = np.arange(n) % n_folds
    return [(inter.select(fold != f), inter.select(fold == f)) for f in range(n_folds)]


def temporal(inter: Any, test_size: float | None = 0.2, *, cutoff: float | None = None,
             drop_unknown: bool = False) -> tuple[Interactions, Interactions]:
    """A global time cut. With ``test_size``: exactly the ``round(test_size · nnz)`` latest interactions
    (ties at the boundary broken by user-major order) are the test set. With ``cutoff`` (a timestamp in
    the data's units, seconds for datetimes): interactions at or after it are the test set.
    ``drop_unknown=True`` removes test interactions whose user or item has no training interaction."""
    inter = as_interactions(inter)
    if inter.timestamps is None:
        raise DataError("temporal split needs Interactions with timestamps")
    u, i, _, t = inter.coo()
    n = inter.nnz
    if cutoff is not None:
        test_mask = t >= float(cutoff)
    else:
        test_size = _check_fraction("test_size", test_size)
        k = int(_round_half_up(test_size * n))
        order = np.argsort(t, kind="stable")
        test_mask = np.zeros(n, dtype=bool)
        test_mask[order[n - k:]] = True
    if drop_unknown:
        tr = ~test_mask
        ku = np.bincount(u[tr], minlength=inter.n_users) > 0
        ki = np.bincount(i[tr], minlength=inter.n_items) > 0
        test = inter.select(test_mask & ku[u] & ki[i])
        return inter.select(tr), test
    return inter.select(~test_mask), inter.select(test_mask)


def _one_per_user(users, items, seq_users: np.ndarray, seq_items: np.ndarray, ts: np.ndarray | None) -> Interactions:
    nu, ni = len(users), len(items)
    m = sp.csr_matrix((np.ones(len(seq_users), np.float32), (seq_users, seq_items)), shape=(nu, ni))
    tm = sp.csr_matrix((ts, (seq_users, seq_items)), shape=(nu, ni)) if ts is not None else None
    return Interactions(m, users, items, tm)


def leave_last_out(data: Any, validation: bool = True):
    """Hold out each user's last interaction (in time order) for test and, with ``validation``, the
    one before it for validation.

    * ``Sequences`` (or anything :func:`~tastebud.data.sequences.as_sequences` accepts, except
      Interactions): returns ``(train: Sequences, valid: Interactions, test: Interactions)`` where train
      drops each user's last two items; users with fewer than 3 items keep their whole sequence in
      train and have no valid/test entry (the SASRec protocol). With ``validation=False``:
      ``(train, test)``, train drops the last item; users with fewer than 2 items have no test entry.
    * ``Interactions`` with timestamps: the same on each user's interactions ordered by timestamp
      (ties by item index), returning Interactions ``(train, valid, test)`` or ``(train, test)``.

    The held-out parts share the input's id maps.
    """
    hold = 2 if validation else 1
    if isinstance(data, Interactions):
        if data.timestamps is None:
            raise DataError("leave_last_out on Interactions needs timestamps (or pass Sequences)")
        rows, cols, _, t = data.coo()
        # position within the user in time order (ties: larger item index counts as later)
        order = np.lexsort((cols, t, rows))
        counts = data.user_counts()
        ends = np.cumsum(counts)
        pos = np.empty(len(rows), dtype=np.int64)
        pos[order] = np.arange(len(rows))
        from_end = ends[rows] - 1 - pos  # 0 for a user's latest interaction
        eligible = counts[rows] >= hold + 1
        test_mask = eligible & (from_end == 0)
        valid_mask = eligible & (from_end == 1) if validation else np.zeros(len(rows), bool)
        train = data.select(~(test_mask | valid_mask))
        test = data.select(test_mask)
        if validation:
            return train, data.select(valid_mask), test
        return train, test
    seqs = as_sequences(data)
    lens = seqs.lengths()
    eligible = lens >= hold + 1
    users_idx = np.flatnonzero(eligible)
    last = seqs.indptr[users_idx + 1] - 1
    ts = seqs.timestamps
    test = _one_per_user(seqs.users, seqs.items, users_idx, seqs.indices[last], None if ts is None else ts[last])
    keep_len = np.where(eligible, lens - hold, lens)
    keep = np.arange(len(seqs.indices)) - np.repeat(seqs.indptr[:-1], lens) < np.repeat(keep_len, lens)
    train = Sequences(np.concatenate([[0], np.cumsum(keep_len)]), seqs.indices[keep], seqs.users, seqs.items,
                      None if ts is None else ts[keep])
    if validation:
        prev = last - 1
        valid = _one_per_user(seqs.users, seqs.items, users_idx, seqs.indices[prev], None if ts is None else ts[prev])
        return train, valid, test
    return train, test


def official_folds(dataset: Any = None, folds: Sequence[str] = ("u1", "u2", "u3", "u4", "u5")) -> list[tuple[Interactions, Interactions]]:
    """MovieLens-100K's official splits, read from the dataset folder (``uN.base``/``uN.test``).

    ``dataset``: a loaded ``movielens-100k`` :class:`~tastebud.data.datasets.Dataset`, a path to its
    folder, or ``None`` (load it). Train and test share the full dataset's id maps (all 943 users and
    1,682 items), so a test item absent from its training fold is a known id with no training data.
    ``folds`` may also name ``"ua"``/``"ub"``.
    """
    from .data import readers
    from .data.datasets import Dataset, load

    if dataset is None:
        dataset = load("movielens-100k")
    elif isinstance(dataset, (str, os.PathLike)):
        dataset = load("movielens-100k", data_dir=Path(dataset), download=False)
    if not isinstance(dataset, Dataset) or dataset.interactions is None:
        raise ValueError(f"official_folds needs the movielens-100k Dataset, got {type(dataset).__name__}")
    full = dataset.interactions
    out = []
    for f in folds:
        parts = []
        for suffix in ("base", "test"):
            p = Path(dataset.path) / f"{f}.{suffix}"
            if not p.is_file():
                raise DataError(f"official fold file {p} not found (folds are u1..u5, ua, ub)")
            df = readers.read_ml100k_ratings(p)
            parts.append(Interactions.from_frame(df, rating="rating", timestamp="timestamp", duplicates="raise",
                                                 user_map=full.users, item_map=full.items, source=str(p)))
        out.append((parts[0], parts[1]))
    return out
