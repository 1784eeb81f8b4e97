"""``ItemTransitions``: first-order item-to-item transition counts, a next-item baseline."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from ...array_specs import ArraySpec, floats, index, indptr
from ...data.sequences import Sequences, as_sequences
from ...exceptions import DataError
from ..history import HistoryRecommender


def _transition_matrix(indptr: np.ndarray, indices: np.ndarray, n_items: int) -> sp.csr_matrix:
    """T[a, b] = number of times b immediately follows a within a sequence."""
    if len(indices) < 2:
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    src, dst = indices[:-1], indices[1:]
    # position p -> p+1 is a transition unless p+1 starts a new sequence
    starts = np.zeros(len(indices), dtype=bool)
    starts[indptr[:-1][indptr[:-1] < len(indices)]] = True
    ok = ~starts[1:]
    T = sp.csr_matrix((np.ones(int(ok.sum()), dtype=np.float32), (src[ok], dst[ok])), shape=(n_items, n_items))
    T.sum_duplicates()
    T.sort_indices()
    return T


class ItemTransitions(HistoryRecommender):
    """First-order Markov chain over items: score(j | history) = T[last, j], the number of times
    item j directly followed the history's last item in training, ties (and items never seen
    after it) ordered by popularity:

        score(j) = T[i_last, j] + pop(j) / (max pop + 1)

    where pop(j) counts the users whose training history contains j. When the last item is
    unknown or has no recorded successor the ranking is pure popularity. Repeated items are
    counted as transitions (a → a) like any other.
    """

    registry_name = "transitions"
    demo_params: dict[str, Any] = {}

    def __init__(self) -> None:
        pass

    def fit(self, data: Any) -> "ItemTransitions":
        seqs = as_sequences(data)
        if not isinstance(seqs, Sequences) or seqs.n_interactions == 0:
            raise DataError("ItemTransitions.fit: the sequences are empty")
        indptr, indices = seqs.indptr, seqs.indices
        rows = np.repeat(np.arange(seqs.n_users), seqs.lengths())
        seen = sp.csr_matrix((np.ones(len(indices), dtype=np.float32), (rows, indices)), shape=(seqs.n_users, seqs.n_items))
        seen.sum_duplicates()
        self._set_interactions(seqs.users, seqs.items, seen)
        self._set_histories(indptr, indices)
        self.transitions_ = _transition_matrix(indptr, indices, seqs.n_items)
        self.fitted_ = True
        return self

    def _history_scores(self, indptr: np.ndarray, indices: np.ndarray) -> np.ndarray:
        n = len(indptr) - 1
        pop = self.item_counts_.astype(np.float64)
        tie = (pop / (pop.max() + 1.0)).astype(np.float32) if len(pop) else pop.astype(np.float32)
        S = np.empty((n, len(tie)), dtype=np.float32)
        S[:] = tie
        has = np.diff(indptr) > 0
        if has.any():
            last = indices[indptr[1:][has] - 1]
            S[has] += self.transitions_[last].toarray()
        return S

    def _popularity_scores(self, n: int) -> np.ndarray:
        return self._history_scores(np.zeros(n + 1, dtype=np.int64), np.empty(0, dtype=np.int64))

    def _get_arrays(self) -> dict[str, np.ndarray]:
        T = self.transitions_
        return {**super()._get_arrays(), "T_indptr": T.indptr.astype(np.int64), "T_indices": T.indices.astype(np.int64),
                "T_data": T.data.astype(np.float32)}

    @classmethod
    def _array_specs(cls, params: dict[str, Any], extra: dict[str, Any], shapes: Any) -> dict[str, ArraySpec]:
        return {**super()._array_specs(params, extra, shapes), "T_indptr": indptr("n_items", of="T_indices"),
                "T_indices": index("nnz_T", hi="n_items"), "T_data": floats("nnz_T")}

    def _set_arrays(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        super()._set_arrays(arrays, extra)
        n = len(self.items_)
        self.transitions_ = sp.csr_matrix((arrays["T_data"], arrays["T_indices"], arrays["T_indptr"]), shape=(n, n))
