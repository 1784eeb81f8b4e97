"""Beyond-accuracy metrics of recommendation lists, vectorised over users.

Every function takes ``ranked`` (int array ``(n_users, k)`` of item indices, best first, ``-1`` for
padding) and what it needs of the training data, in the model's index space:

* ``item_counts``: training users per item (``model.item_counts_``), ``n_users`` the number of
  training users (``model.seen_.shape[0]``);
* ``seen``: the users' training items (rows of ``model.seen_``, aligned with ``ranked``).

Per-user metrics return one value per row (``reduce="none"``, NaN where undefined) or their mean
over the rows where they are defined (``reduce="mean"``). Definitions, with sources
(docs/evaluation.md, "Beyond accuracy"), for a user's list L of m = |L| items (padding dropped):

    novelty@k         = mean_{i∈L} −log2(max(c_i, 1) / N)                      (Zhou et al. 2010)
    diversity@k       = 1 − mean_{i<j∈L} cos(f_i, f_j)                         (Ziegler et al. 2005)
    serendipity@k     = |{i ∈ L : i relevant, i ∉ PM_u}| / k                   (Ge et al. 2010)
    popularity@k      = mean_{i∈L} c_i                                         (Abdollahpouri et al. 2019)
    popularity_lift@k = (popularity@k − mean_{i∈H_u} c_i) / mean_{i∈H_u} c_i    (Abdollahpouri et al. 2020)
    gini@k            = Σ_j (2j − n − 1) x_(j) / (n Σ_j x_j)   (list-level)    (Fleder & Hosanagar 2009)

with c_i the training users of item i, N the training users, f_i item i's feature vector (default:
its column of the binary training matrix, so cos is the items' co-occurrence cosine), PM_u the
"primitive" list (the k most popular training items the user has not seen), H_u the user's training
items, and x_(j) the exposure (number of lists holding the item) of every catalogue item, ascending.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from .metrics import hits_matrix

__all__ = ["novelty", "diversity", "serendipity", "popularity", "popularity_lift", "gini", "exposure",
           "primitive_lists", "item_vectors_from_seen"]


def _check(ranked: Any, n_items: int | None = None) -> np.ndarray:
    ranked = np.asarray(ranked)
    if ranked.ndim != 2 or ranked.dtype.kind not in "iu":
        raise ValueError(f"ranked must be a 2-D integer array (n_users, k), got {ranked.dtype} {ranked.shape}")
    if n_items is not None and ranked.size and (ranked.max() >= n_items or ranked.min() < -1):
        raise ValueError(f"ranked holds item indices outside -1..{n_items - 1}")
    return ranked.astype(np.int64)


def _reduce(v: np.ndarray, reduce: str) -> Any:
    if reduce == "none":
        return v
    if reduce != "mean":
        raise ValueError(f"reduce must be 'mean' or 'none', got {reduce!r}")
    ok = ~np.isnan(v)
    if not ok.any():
        raise ValueError("the metric is undefined for every user (empty lists?)")
    return float(v[ok].mean())


def _list_mean(ranked: np.ndarray, per_item: np.ndarray) -> np.ndarray:
    """Mean of ``per_item`` over each row's non-padding items (NaN for an empty row)."""
    valid = ranked >= 0
    vals = np.where(valid, per_item[np.maximum(ranked, 0)], 0.0)
    m = valid.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(m > 0, vals.sum(1) / np.maximum(m, 1), np.nan)


def novelty(ranked: Any, item_counts: Any, n_users: int, reduce: str = "mean") -> Any:
    """Mean self-information of the recommended items, −log2(c_i / N) bits (an item no training
    user touched counts as touched once)."""
    c = np.asarray(item_counts, dtype=np.float64)
    ranked = _check(ranked, len(c))
    if n_users < 1:
        raise ValueError(f"n_users must be positive, got {n_users!r}")
    info = -np.log2(np.maximum(c, 1.0) / float(n_users))
    return _reduce(_list_mean(ranked, info), reduce)


def popularity(ranked: Any, item_counts: Any, reduce: str = "mean") -> Any:
    """Average recommendation popularity (ARP): mean training users per recommended item."""
    c = np.asarray(item_counts, dtype=np.float64)
    return _reduce(_list_mean(_check(ranked, len(c)), c), reduce)


def popularity_lift(ranked: Any, item_counts: Any, seen: Any, reduce: str = "mean") -> Any:
    """Relative gap between the popularity of the recommended items and of the user's own
    training items: (ARP_u − profile popularity_u) / profile popularity_u; NaN without a profile."""
    c = np.asarray(item_counts, dtype=np.float64)
    ranked = _check(ranked, len(c))
    seen = sp.csr_matrix(seen)
    if seen.shape[0] != ranked.shape[0]:
        raise ValueError(f"seen has {seen.shape[0]} rows but ranked has {ranked.shape[0]}")
    s = seen.copy()
    s.data[:] = 1.0
    s.eliminate_zeros()
    n_prof = np.diff(s.indptr)
    prof = np.asarray(s @ c).ravel()
    with np.errstate(invalid="ignore", divide="ignore"):
        prof = np.where(n_prof > 0, prof / np.maximum(n_prof, 1), np.nan)
        rec = _list_mean(ranked, c)
        lift = np.where(prof > 0, (rec - prof) / prof, np.nan)
    return _reduce(lift, reduce)


def item_vectors_from_seen(seen_all: Any) -> sp.csr_matrix:
    """The default item representation for :func:`diversity`: each item's column of the binary
    training matrix (items × users), so that cos(f_i, f_j) = |U_i ∩ U_j| / √(|U_i| |U_j|)."""
    s = sp.csr_matrix(seen_all, dtype=np.float64, copy=True)
    s.data[:] = 1.0
    s.eliminate_zeros()
    return sp.csr_matrix(s.T)


def _normalised_rows(F: Any) -> Any:
    if sp.issparse(F):
        F = sp.csr_matrix(F, dtype=np.float64)
        norms = np.sqrt(np.asarray(F.multiply(F).sum(1)).ravel())
        inv = np.where(norms > 0, 1.0 / np.where(norms > 0, norms, 1.0), 0.0)
        return sp.diags(inv) @ F, (norms > 0).astype(np.float64)
    F = np.asarray(F, dtype=np.float64)
    if F.ndim != 2:
        raise ValueError(f"item features must be a 2-D array (n_items, d), got shape {F.shape}")
    if not np.isfinite(F).all():
        raise ValueError("item features hold NaN or infinity")
    norms = np.linalg.norm(F, axis=1)
    return F / np.where(norms > 0, norms, 1.0)[:, None], (norms > 0).astype(np.float64)


def diversity(ranked: Any, item_features: Any, reduce: str = "mean") -> Any:
    """Intra-list diversity: 1 − the mean cosine similarity over the pairs of each list.

    ``item_features``: (n_items, d) dense or sparse; an item whose vector is zero is similar to
    nothing (cosine 0). Lists with fewer than 2 items are NaN. Computed without forming pairs:
    Σ_{i<j} cos(f_i, f_j) = (‖Σ_i f̂_i‖² − Σ_i ‖f̂_i‖²) / 2 with f̂ the unit vectors."""
    Fn, nonzero = _normalised_rows(item_features)
    ranked = _check(ranked, Fn.shape[0])
    n, k = ranked.shape
    valid = ranked >= 0
    rows = np.repeat(np.arange(n), valid.sum(1))
    A = sp.csr_matrix((np.ones(len(rows)), (rows, ranked[valid])), shape=(n, Fn.shape[0]))
    S = A @ Fn
    sq = np.asarray(S.multiply(S).sum(1)).ravel() if sp.issparse(S) else (S * S).sum(1)
    self_sq = np.asarray(A @ nonzero).ravel()
    m = valid.sum(1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_cos = (sq - self_sq) / (m * (m - 1))
    return _reduce(np.where(m >= 2, 1.0 - mean_cos, np.nan), reduce)


def primitive_lists(item_counts: Any, seen: Any, k: int) -> np.ndarray:
    """Each user's "primitive" recommendation (Ge et al. 2010; Murakami et al. 2008): the ``k``
    most popular training items (ties by lower index) the user has not seen; ``(n_users, k)``."""
    c = np.asarray(item_counts)
    seen = sp.csr_matrix(seen)
    order = np.lexsort((np.arange(len(c)), -c.astype(np.float64)))
    n = seen.shape[0]
    out = np.full((n, k), -1, dtype=np.int64)
    n_seen = np.diff(seen.indptr)
    for s in range(0, n, 1024):
        e = min(n, s + 1024)
        width = min(len(c), k + int(n_seen[s:e].max(initial=0)))
        cand = np.broadcast_to(order[:width], (e - s, width))
        taken = hits_matrix(np.ascontiguousarray(cand), seen[s:e])
        free = ~taken
        pos = np.cumsum(free, axis=1) - 1  # rank among the user's unseen candidates
        r, j = np.nonzero(free & (pos < k))
        out[s + r, pos[r, j]] = cand[r, j]
    return out


def serendipity(ranked: Any, relevant: Any, item_counts: Any, seen: Any, reduce: str = "mean",
                n_relevant: Any = None) -> Any:
    """Share of the k slots holding an item that is both relevant and unexpected (absent from the
    user's primitive popularity list of the same length). Users without a relevant item are NaN."""
    ranked = _check(ranked)
    rel = sp.csr_matrix(relevant)
    k = ranked.shape[1]
    pm = primitive_lists(item_counts, seen, k)
    valid = pm >= 0
    rows = np.repeat(np.arange(len(pm)), valid.sum(1))
    PM = sp.csr_matrix((np.ones(len(rows)), (rows, pm[valid])), shape=rel.shape)
    useful = hits_matrix(ranked, rel) & ~hits_matrix(ranked, PM)
    R = np.diff(rel.indptr) if n_relevant is None else np.asarray(n_relevant)
    v = useful.sum(1) / float(k)
    return _reduce(np.where(R > 0, v, np.nan), reduce)


def exposure(ranked: Any, n_items: int) -> np.ndarray:
    """Number of lists each catalogue item appears in."""
    ranked = _check(ranked, n_items)
    v = ranked[ranked >= 0]
    return np.bincount(v, minlength=n_items).astype(np.float64)


def gini(ranked: Any, n_items: int) -> float:
    """Gini index of item exposure over the whole catalogue (0: every item recommended equally
    often; → 1: all exposure on one item). Items never recommended count as zero exposure."""
    if not isinstance(n_items, (int, np.integer)) or n_items < 1:
        raise ValueError(f"n_items must be a positive integer, got {n_items!r}")
    x = np.sort(exposure(ranked, n_items))
    tot = x.sum()
    if tot == 0:
        raise ValueError("gini: the lists are empty")
    n = len(x)
    j = np.arange(1, n + 1)
    return float(((2 * j - n - 1) * x).sum() / (n * tot))
