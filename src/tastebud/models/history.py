"""``HistoryRecommender``: the part of the protocol shared by models that rank items for an
arbitrary ordered history of external item ids (``recommend_for_history``) — the path for users
never seen in training. Used by ``ItemTransitions``, ``Item2Vec`` and the sparse neighbourhood
models (``ItemKNN``, ``UserKNN``, ``SAR``: they override the ranking step, ``_rank_histories``).
"""

from __future__ import annotations

import warnings
from typing import Any, Literal, Sequence

import numpy as np

from ..array_specs import ArraySpec, index, indptr
from ..exceptions import UnknownIdError
from .base import Recommender

UnknownItems = Literal["skip", "raise"]


class HistoryRecommender(Recommender):
    """A recommender that scores items for an ordered item history (most recent last).

    Subclasses implement ``_history_scores(indptr, indices) -> (n, n_items) float32`` for
    histories given as ragged arrays of item indices (an empty history must be answered, e.g. by
    popularity) and store each training user's ordered history in ``hist_indptr_`` /
    ``hist_indices_`` so that ``recommend`` for known users uses it.
    """

    hist_indptr_: np.ndarray
    hist_indices_: np.ndarray

    def _history_scores(self, indptr: np.ndarray, indices: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _scores(self, user_idx: np.ndarray) -> np.ndarray:
        user_idx = np.asarray(user_idx, dtype=np.int64)
        lens = self.hist_indptr_[user_idx + 1] - self.hist_indptr_[user_idx]
        indptr = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        parts = [self.hist_indices_[self.hist_indptr_[u]:self.hist_indptr_[u + 1]] for u in user_idx]
        indices = np.concatenate(parts).astype(np.int64) if parts else np.empty(0, dtype=np.int64)
        return self._history_scores(indptr, indices)

    def _set_histories(self, indptr: np.ndarray, indices: np.ndarray) -> None:
        self.hist_indptr_ = np.asarray(indptr, dtype=np.int64)
        self.hist_indices_ = np.asarray(indices, dtype=np.int64)

    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {**super()._get_arrays(), "hist_indptr": self.hist_indptr_, "hist_indices": self.hist_indices_}

    @classmethod
    def _array_specs(cls, params: dict[str, Any], extra: dict[str, Any], shapes: Any) -> dict[str, ArraySpec]:
        return {**super()._array_specs(params, extra, shapes),
                "hist_indptr": indptr("n_users", of="hist_indices"), "hist_indices": index(None, hi="n_items")}

    def _set_arrays(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        super()._set_arrays(arrays, extra)
        self._set_histories(arrays["hist_indptr"], arrays["hist_indices"])

    # ------------------------------------------------------------------ public
    def _map_histories(self, histories: list, unknown: UnknownItems) -> tuple[np.ndarray, np.ndarray]:
        if unknown not in ("skip", "raise"):
            raise ValueError(f"unknown must be 'skip' or 'raise', got {unknown!r}")
        lens, parts, bad = [], [], []
        for h in histories:
            if isinstance(h, (str, bytes)) or not hasattr(h, "__iter__"):
                raise ValueError(f"each history must be a list of item ids, got {h!r}")
            h = list(h)
            idx = self.items_.index(h, missing="mask") if h else np.empty(0, dtype=np.int64)
            if (idx < 0).any():
                bad.extend(np.asarray(h, dtype=object)[idx < 0].tolist())
                idx = idx[idx >= 0]
            lens.append(len(idx))
            parts.append(idx)
        if bad:
            if unknown == "raise":
                raise UnknownIdError("item", bad)
            shown = ", ".join(repr(b) for b in bad[:5]) + (f" (and {len(bad) - 5} more)" if len(bad) > 5 else "")
            warnings.warn(f"{type(self).__name__}.recommend_for_history: skipped {len(bad)} item id(s) "
                          f"unknown to the model: {shown}", UserWarning, stacklevel=3)
        n_empty = sum(1 for n in lens if n == 0)
        if n_empty:
            warnings.warn(f"{type(self).__name__}.recommend_for_history: {n_empty} history(ies) without any known "
                          "item; ranked by popularity", UserWarning, stacklevel=3)
        indptr = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        indices = np.concatenate(parts).astype(np.int64) if parts else np.empty(0, dtype=np.int64)
        return indptr, indices

    def recommend_for_history(
        self,
        items: Sequence[Any],
        k: int = 10,
        filter_seen: bool = True,
        unknown: UnknownItems = "skip",
        candidates: Sequence[Any] | None = None,
        batch_size: int = 1024,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items after the history ``items`` (external ids, oldest first), for any user,
        including one never seen in training.

        ``items`` may also be a list of histories (a list of lists): the result is then 2-D, one row
        per history. The history's items are excluded when ``filter_seen``; ``candidates``
        restricts the ranked items. Item ids the model does not know are skipped with a warning
        (``unknown="raise"`` raises :class:`UnknownIdError`); a history without any known item is
        ranked by popularity (with a warning). Returns ``(ids, scores)`` best first, padded with
        ``None``/``nan`` when fewer than ``k`` candidates are left.
        """
        self._check_fitted()
        if isinstance(items, (str, bytes)) or not hasattr(items, "__iter__"):
            raise ValueError(f"items must be a list of item ids (or a list of such lists), got {items!r}")
        items = list(items)
        batch = len(items) > 0 and all(isinstance(h, (list, tuple, np.ndarray)) for h in items)
        indptr, indices = self._map_histories(items if batch else [items], unknown)
        cand = self._candidates(candidates)
        k = self._check_k(k, len(self.items_) if cand is None else len(cand))
        ids, sc = self._to_external(*self._rank_histories(indptr, indices, cand, k, filter_seen, batch_size))
        return (ids, sc) if batch else (ids[0], sc[0])

    def _rank_histories(self, indptr: np.ndarray, indices: np.ndarray, cand: np.ndarray | None, k: int,
                        filter_seen: bool, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (item indices, float32 scores) for the histories given as ragged item indices,
        among ``cand`` (None: all items), each history's items excluded when ``filter_seen``:
        dense :meth:`_history_scores` in batches of ``batch_size`` histories."""
        n = len(indptr) - 1
        out_idx = np.empty((n, k), dtype=np.int64)
        out_sc = np.empty((n, k), dtype=np.float32)
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            ip = indptr[start:stop + 1] - indptr[start]
            ind = indices[indptr[start]:indptr[stop]]
            S = np.array(self._history_scores(ip, ind), dtype=np.float32, copy=True)
            if filter_seen and len(ind):
                rows = np.repeat(np.arange(stop - start), np.diff(ip))
                S[rows, ind] = -np.inf
            idx, sc = self._select(S, cand, k)
            out_idx[start:stop] = idx
            out_sc[start:stop] = sc
        return out_idx, out_sc
