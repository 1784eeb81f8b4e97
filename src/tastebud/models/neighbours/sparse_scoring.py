"""``SparseScorer``: the ranking half of the protocol for models that score sᵤ = qᵤ·S with a
sparse query row qᵤ and a sparse matrix S whose columns are items (item-item neighbours, SAR,
user-user neighbours over the training matrix).

``recommend`` and ``recommend_for_history`` run the parallel sparse kernel
(``tastebud.kernels.knn.score_topk``): float64 scores accumulated over the query's non-zeros only,
seen items excluded, ties to the lower item index, items no neighbour reaches scoring 0 — never
a dense users × items block. ``_scores`` (dense float32) serves generic callers such as sampled
metrics.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from ...array_specs import ArraySpec
from ..base import Recommender
from ..history import HistoryRecommender
from ._similarity import score_rows


class SparseScorer(HistoryRecommender):
    """Subclasses implement ``_query(user_idx)``, ``_history_query(indptr, indices)`` (CSR rows
    over S's rows) and ``_score_matrix()`` (S, CSR with item columns), and set
    ``num_threads``."""

    num_threads: int | None = None

    def _query(self, user_idx: np.ndarray) -> sp.csr_matrix:
        raise NotImplementedError

    def _history_query(self, indptr: np.ndarray, indices: np.ndarray) -> sp.csr_matrix:
        raise NotImplementedError

    def _score_matrix(self) -> sp.csr_matrix:
        raise NotImplementedError

    # training histories are the rows of ``seen_``: nothing extra to store
    def _get_arrays(self) -> dict[str, np.ndarray]:
        return Recommender._get_arrays(self)

    @classmethod
    def _array_specs(cls, params: dict[str, Any], extra: dict[str, Any], shapes: Any) -> dict[str, ArraySpec]:
        return super(HistoryRecommender, cls)._array_specs(params, extra, shapes)  # Recommender's: no hist_* arrays

    def _set_arrays(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        Recommender._set_arrays(self, arrays, extra)

    # ------------------------------------------------------------------ dense (generic callers)
    def _scores(self, user_idx: np.ndarray) -> np.ndarray:
        Q = self._query(np.asarray(user_idx, dtype=np.int64))
        return np.asarray((Q @ self._score_matrix()).toarray(), dtype=np.float32)

    def _history_scores(self, indptr: np.ndarray, indices: np.ndarray) -> np.ndarray:
        S = np.asarray((self._history_query(indptr, indices) @ self._score_matrix()).toarray(), dtype=np.float32)
        empty = np.diff(indptr) == 0
        if empty.any():
            S[empty] = self._popularity_scores(int(empty.sum()))
        return S

    # ------------------------------------------------------------------ sparse ranking
    def _rank(self, Q: sp.csr_matrix, exclude: sp.csr_matrix | None, cand: np.ndarray | None, k: int,
              popular: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (indices, float32 scores) per row of Q; rows flagged in ``popular`` by popularity."""
        n = Q.shape[0]
        idx = np.empty((n, k), dtype=np.int64)
        sc = np.empty((n, k), dtype=np.float32)
        rows = np.flatnonzero(~popular)
        if len(rows):
            ex = exclude[rows] if exclude is not None else None
            i, s = score_rows(Q[rows], self._score_matrix(), k, ex, cand, self.num_threads)
            idx[rows], sc[rows] = i, s.astype(np.float32)
        prow = np.flatnonzero(popular)
        if len(prow):
            P = np.array(self._popularity_scores(len(prow)), dtype=np.float32)
            if exclude is not None:
                ex = exclude[prow]
                P[np.repeat(np.arange(len(prow)), np.diff(ex.indptr)), ex.indices] = -np.inf
            idx[prow], sc[prow] = self._select(P, cand, k)
        return idx, sc

    def _topk(self, u: np.ndarray, k: int, filter_seen: bool, items: Any, batch_size: int,
              score_fn: Any = None) -> tuple[np.ndarray, np.ndarray]:
        if score_fn is not None:
            return super()._topk(u, k, filter_seen, items, batch_size, score_fn)
        cand = self._candidates(items)
        k = self._check_k(k, len(self.items_) if cand is None else len(cand))
        u = np.asarray(u, dtype=np.int64)
        known = u >= 0
        Q = self._query(np.where(known, u, 0))
        exclude = self.seen_[np.where(known, u, 0)] if filter_seen else None
        if exclude is not None and (~known).any():
            exclude = sp.csr_matrix(exclude.multiply(known[:, None].astype(np.float32)))
            exclude.eliminate_zeros()
        idx, sc = self._rank(Q, exclude, cand, k, ~known)
        return self._to_external(idx, sc)

    def _rank_histories(self, indptr: np.ndarray, indices: np.ndarray, cand: np.ndarray | None, k: int,
                        filter_seen: bool, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """``recommend_for_history``'s ranking, sparse: each history (a repeated item counts once)
        becomes a query row, scored by the kernel in one call; a history without a known item is
        ranked by popularity."""
        H = sp.csr_matrix((np.ones(len(indices), np.float32), indices, indptr), shape=(len(indptr) - 1, len(self.items_)))
        H.sum_duplicates()
        H.data[:] = 1.0
        Q = self._history_query(H.indptr.astype(np.int64), H.indices.astype(np.int64))
        return self._rank(Q, H if filter_seen else None, cand, k, np.diff(H.indptr) == 0)
