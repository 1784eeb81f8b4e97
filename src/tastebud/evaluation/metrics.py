"""Evaluation metrics, vectorised over users.

Rating metrics take true and predicted values. Ranking metrics take

* ``ranked``: int array (n_users, k) of item indices, best first, ``-1`` for padding;
* ``relevant``: a CSR matrix (n_users × n_items); a nonzero entry marks a relevant item;

and return the mean over users with at least one relevant item (``reduce="none"`` gives the
per-user values, NaN for users without relevant items). With binary relevance rel_j ∈ {0, 1} at
rank j = 1..k and R the user's number of relevant items:

    precision@k = Σ rel_j / k                           recall@k = Σ rel_j / R
    hit_rate@k  = 1[Σ rel_j > 0]                        mrr@k    = 1 / (first j with rel_j = 1), 0 if none
    ndcg@k      = Σ rel_j / log2(j + 1)  /  Σ_{j ≤ min(R, k)} 1 / log2(j + 1)
    map@k       = Σ_j rel_j · precision@j / min(R, k)

(recall divides by R, not min(R, k); map@k by min(R, k), as in most libraries — see docs/evaluation.md.)
Relevant items a model cannot rank (e.g. absent from training) still count in R.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = [
    "rmse", "mae", "precision_at_k", "recall_at_k", "ndcg_at_k", "map_at_k", "mrr_at_k", "hit_rate_at_k",
    "coverage", "sampled_rank_metrics", "sampled_rank_values", "hits_matrix", "ranking_metrics",
]


# ---------------------------------------------------------------------- rating metrics
def _pair(y: Any, yhat: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=np.float64).ravel()
    yhat = np.asarray(yhat, dtype=np.float64).ravel()
    if y.shape != yhat.shape:
        raise ValueError(f"y and yhat must have the same length, got {len(y)} and {len(yhat)}")
    if len(y) == 0:
        raise ValueError("y is empty: nothing to evaluate")
    if not (np.isfinite(y).all() and np.isfinite(yhat).all()):
        raise ValueError("y and yhat must be finite (found NaN or infinity)")
    return y, yhat


def rmse(y: Any, yhat: Any) -> float:
    """Root mean squared error √(mean (y − ŷ)²)."""
    y, yhat = _pair(y, yhat)
    return float(np.sqrt(np.mean((y - yhat) ** 2)))


def mae(y: Any, yhat: Any) -> float:
    """Mean absolute error mean |y − ŷ|."""
    y, yhat = _pair(y, yhat)
    return float(np.mean(np.abs(y - yhat)))


# ---------------------------------------------------------------------- ranking metrics
def _check_ranked(ranked: Any, relevant: Any, k: int | None) -> tuple[np.ndarray, sp.csr_matrix, int]:
    ranked = np.asarray(ranked)
    if ranked.ndim != 2:
        raise ValueError(f"ranked must be a 2-D array (n_users, k), got shape {ranked.shape}")
    if ranked.dtype.kind not in "iu":
        raise ValueError(f"ranked must hold integer item indices, got dtype {ranked.dtype}")
    rel = sp.csr_matrix(relevant)
    if rel.shape[0] != ranked.shape[0]:
        raise ValueError(f"ranked has {ranked.shape[0]} rows but relevant has {rel.shape[0]}")
    if ranked.size and (ranked.max() >= rel.shape[1] or ranked.min() < -1):
        raise ValueError(f"ranked holds item indices outside -1..{rel.shape[1] - 1}")
    if k is None:
        k = ranked.shape[1]
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if k > ranked.shape[1]:
        raise ValueError(f"k={k} exceeds the {ranked.shape[1]} ranked items per user")
    return ranked[:, :k].astype(np.int64), rel, int(k)


def hits_matrix(ranked: np.ndarray, relevant: sp.csr_matrix) -> np.ndarray:
    """Boolean (n_users, k): is ranked[u, j] a relevant item of user u? Vectorised by merging sorted
    (user, item) keys; padding (−1) and repeated items never count twice."""
    rel = sp.csr_matrix(relevant)
    rel.eliminate_zeros()
    rel.sort_indices()
    n, k = ranked.shape
    m = rel.shape[1]
    rel_keys = np.repeat(np.arange(n, dtype=np.int64), np.diff(rel.indptr)) * m + rel.indices
    q = np.arange(n, dtype=np.int64)[:, None] * m + ranked
    pos = np.searchsorted(rel_keys, q)
    hit = (pos < len(rel_keys)) & (rel_keys[np.minimum(pos, max(len(rel_keys) - 1, 0))] == q) if len(rel_keys) else np.zeros((n, k), bool)
    hit &= ranked >= 0
    if k > 1 and hit.any():  # a repeated item counts once (first occurrence)
        srt = np.sort(np.where(ranked >= 0, ranked, -1 - np.arange(k)[None, :]), axis=1)
        if (srt[:, 1:] == srt[:, :-1]).any():
            for u in np.flatnonzero((srt[:, 1:] == srt[:, :-1]).any(axis=1)):
                _, first = np.unique(ranked[u], return_index=True)
                dup = np.ones(k, bool)
                dup[first] = False
                hit[u, dup] = False
    return hit


def _reduce(values: np.ndarray, n_rel: np.ndarray, reduce: str) -> Any:
    has = n_rel > 0
    if reduce == "none":
        out = values.astype(np.float64)
        out[~has] = np.nan
        return out
    if reduce != "mean":
        raise ValueError(f"reduce must be 'mean' or 'none', got {reduce!r}")
    if not has.any():
        raise ValueError("no user has a relevant item: the metric is undefined")
    return float(values[has].mean())


def _n_relevant(rel: sp.csr_matrix, n_relevant: Any) -> np.ndarray:
    if n_relevant is not None:
        return np.asarray(n_relevant, dtype=np.float64)
    r = rel.copy()
    r.eliminate_zeros()
    return np.diff(r.indptr).astype(np.float64)


def precision_at_k(ranked: Any, relevant: Any, k: int | None = None, reduce: str = "mean", n_relevant: Any = None) -> Any:
    """Fraction of the top k that is relevant (padding counts as a miss)."""
    ranked, rel, k = _check_ranked(ranked, relevant, k)
    h = hits_matrix(ranked, rel)
    return _reduce(h.sum(1) / k, _n_relevant(rel, n_relevant), reduce)


def recall_at_k(ranked: Any, relevant: Any, k: int | None = None, reduce: str = "mean", n_relevant: Any = None) -> Any:
    """Fraction of the user's relevant items found in the top k."""
    ranked, rel, k = _check_ranked(ranked, relevant, k)
    h = hits_matrix(ranked, rel)
    R = _n_relevant(rel, n_relevant)
    return _reduce(h.sum(1) / np.maximum(R, 1), R, reduce)


def hit_rate_at_k(ranked: Any, relevant: Any, k: int | None = None, reduce: str = "mean", n_relevant: Any = None) -> Any:
    """1 if any of the top k is relevant, else 0."""
    ranked, rel, k = _check_ranked(ranked, relevant, k)
    h = hits_matrix(ranked, rel)
    return _reduce(h.any(1).astype(np.float64), _n_relevant(rel, n_relevant), reduce)


def mrr_at_k(ranked: Any, relevant: Any, k: int | None = None, reduce: str = "mean", n_relevant: Any = None) -> Any:
    """Reciprocal rank of the first relevant item in the top k (0 if none)."""
    ranked, rel, k = _check_ranked(ranked, relevant, k)
    h = hits_matrix(ranked, rel)
    first = np.argmax(h, axis=1)
    rr = np.where(h.any(1), 1.0 / (first + 1), 0.0)
    return _reduce(rr, _n_relevant(rel, n_relevant), reduce)


def ndcg_at_k(ranked: Any, relevant: Any, k: int | None = None, reduce: str = "mean", n_relevant: Any = None) -> Any:
    """Binary-relevance NDCG: DCG / ideal DCG with gains 1/log2(rank + 1)."""
    ranked, rel, k = _check_ranked(ranked, relevant, k)
    h = hits_matrix(ranked, rel)
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = h @ disc
    R = _n_relevant(rel, n_relevant)
    idcg = np.concatenate([[0.0], np.cumsum(disc)])[np.minimum(R, k).astype(np.int64)]
    return _reduce(dcg / np.where(idcg > 0, idcg, 1.0), R, reduce)


def map_at_k(ranked: Any, relevant: Any, k: int | None = None, reduce: str = "mean", n_relevant: Any = None) -> Any:
    """Average precision at k: Σ_j rel_j · precision@j / min(R, k), averaged over users."""
    ranked, rel, k = _check_ranked(ranked, relevant, k)
    h = hits_matrix(ranked, rel).astype(np.float64)
    prec = np.cumsum(h, axis=1) / np.arange(1, k + 1)
    R = _n_relevant(rel, n_relevant)
    ap = (prec * h).sum(1) / np.maximum(np.minimum(R, k), 1)
    return _reduce(ap, R, reduce)


def ranking_metrics(ranked: Any, relevant: Any, ks: dict[str, list[int]], n_relevant: Any = None) -> dict[str, float]:
    """Several metrics at several cut-offs from one hits matrix: ``ks = {"ndcg": [10, 20], ...}``.
    Names: precision, recall, ndcg, map, mrr, hit_rate. Returns ``{"ndcg@10": ..., ...}``."""
    kmax = max(max(v) for v in ks.values())
    ranked, rel, _ = _check_ranked(ranked, relevant, kmax)
    h = hits_matrix(ranked, rel)
    R = _n_relevant(rel, n_relevant)
    out: dict[str, float] = {}
    for name, kk in ks.items():
        fn = _BY_NAME.get(name)
        if fn is None:
            raise ValueError(f"unknown ranking metric {name!r}; known: {sorted(_BY_NAME)}")
        for k in kk:
            out[f"{name}@{k}"] = fn(h[:, :k], R, k)
    return out


def _from_hits_precision(h, R, k):
    return _reduce(h.sum(1) / k, R, "mean")


def _from_hits_recall(h, R, k):
    return _reduce(h.sum(1) / np.maximum(R, 1), R, "mean")


def _from_hits_hit(h, R, k):
    return _reduce(h.any(1).astype(np.float64), R, "mean")


def _from_hits_mrr(h, R, k):
    return _reduce(np.where(h.any(1), 1.0 / (np.argmax(h, axis=1) + 1), 0.0), R, "mean")


def _from_hits_ndcg(h, R, k):
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    idcg = np.concatenate([[0.0], np.cumsum(disc)])[np.minimum(R, k).astype(np.int64)]
    return _reduce((h @ disc) / np.where(idcg > 0, idcg, 1.0), R, "mean")


def _from_hits_map(h, R, k):
    hf = h.astype(np.float64)
    prec = np.cumsum(hf, axis=1) / np.arange(1, k + 1)
    return _reduce((prec * hf).sum(1) / np.maximum(np.minimum(R, k), 1), R, "mean")


_BY_NAME = {"precision": _from_hits_precision, "recall": _from_hits_recall, "hit_rate": _from_hits_hit,
            "mrr": _from_hits_mrr, "ndcg": _from_hits_ndcg, "map": _from_hits_map}


def coverage(ranked: Any, n_items: int) -> float:
    """Catalogue coverage: the fraction of the ``n_items`` items that appear in at least one list."""
    ranked = np.asarray(ranked)
    if not isinstance(n_items, (int, np.integer)) or n_items < 1:
        raise ValueError(f"n_items must be a positive integer, got {n_items!r}")
    v = ranked[ranked >= 0]
    if v.size and v.max() >= n_items:
        raise ValueError(f"ranked holds item index {int(v.max())} >= n_items={n_items}")
    return float(len(np.unique(v)) / n_items)


# ---------------------------------------------------------------------- sampled ranking
def sampled_rank_metrics(pos_scores: Any, neg_scores: Any, k: int = 10, ties: str = "pessimistic") -> dict[str, float]:
    """Metrics for the "true item among n sampled negatives" protocol (e.g. SASRec's 100 negatives).

    ``pos_scores``: (n,) the held-out item's score per test case; ``neg_scores``: (n, m) the scores of
    m sampled negatives. The 0-based rank of the true item is the number of negatives scoring higher
    (``ties="pessimistic"`` also counts equal scores against it, ``"optimistic"`` does not,
    ``"average"`` counts half). Returns mean ``hit_rate@k`` (rank < k), ``ndcg@k`` (1/log2(rank + 2) if
    rank < k), ``mrr@k`` (1/(rank + 1) if rank < k) and ``auc`` (fraction of negatives ranked below).
    Sampled metrics overestimate full-ranking quality (Krichene & Rendle, KDD 2020): report them only
    to compare with papers that used them.
    """
    return {name: float(v.mean()) for name, v in sampled_rank_values(pos_scores, neg_scores, k, ties).items()}


def sampled_rank_values(pos_scores: Any, neg_scores: Any, k: int = 10, ties: str = "pessimistic") -> dict[str, np.ndarray]:
    """The per-case values whose means :func:`sampled_rank_metrics` returns (same arguments)."""
    pos = np.asarray(pos_scores, dtype=np.float64).ravel()
    neg = np.asarray(neg_scores, dtype=np.float64)
    if neg.ndim != 2 or neg.shape[0] != len(pos):
        raise ValueError(f"neg_scores must have shape (len(pos_scores), m) = ({len(pos)}, m), got {neg.shape}")
    if len(pos) == 0 or neg.shape[1] == 0:
        raise ValueError("sampled_rank_metrics needs at least one test case and one negative")
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if np.isnan(pos).any() or np.isnan(neg).any():
        raise ValueError("scores contain NaN")
    above = (neg > pos[:, None]).sum(1).astype(np.float64)
    equal = (neg == pos[:, None]).sum(1).astype(np.float64)
    if ties == "pessimistic":
        rank = above + equal
    elif ties == "optimistic":
        rank = above
    elif ties == "average":
        rank = above + equal / 2
    else:
        raise ValueError(f"ties must be 'pessimistic', 'optimistic' or 'average', got {ties!r}")
    hit = rank < k
    return {
        f"hit_rate@{k}": hit.astype(np.float64),
        f"ndcg@{k}": np.where(hit, 1.0 / np.log2(rank + 2), 0.0),
        f"mrr@{k}": np.where(hit, 1.0 / (rank + 1), 0.0),
        "auc": 1.0 - rank / neg.shape[1],
    }
