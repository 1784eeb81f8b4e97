"""EASE: embarrassingly shallow autoencoder (Steck, "Embarrassingly Shallow Autoencoders for
Sparse Data", WWW 2019)."""

from __future__ import annotations

import logging
import time
import warnings
from typing import Any, ClassVar, Sequence

import numpy as np
import scipy.linalg

from ..._progress import progress
from ...array_specs import ArraySpec, floats
from ..._threads import num_threads
from ...data.interactions import as_interactions
from ...exceptions import DataError
from ..base import Recommender, topk_rows

logger = logging.getLogger("tastebud")


class EASE(Recommender):
    r"""Closed-form linear item-item model.

    With X the user × item training matrix (binary by default), EASE solves

        min_B ‖X − XB‖²_F + λ‖B‖²_F   subject to   diag(B) = 0

    in closed form (Steck 2019, eq. 8):

        P = (XᵀX + λI)⁻¹,    B = I − P · diagMat(1 / diag(P))     (Bᵢⱼ = −Pᵢⱼ / Pⱼⱼ, Bⱼⱼ = 0)

    Scores ŝᵤ = xᵤB. ``similar_items(i)`` ranks items j by Bᵢⱼ — the score item j gets from a
    history holding only i. Memory and time are O(n_items²) and O(n_items³): fine up to a few
    tens of thousands of items. ``binarize=False`` uses the interaction values as X.

    ``reg`` (λ): Steck used 200–1000 on the large MovieLens/Netflix/MSD sets; the default 500
    is his ML-20M value, and on MovieLens-100K values of a few hundred work best.

    Parameters
    ----------
    reg : L2 weight λ on B (called ``lambda_`` before; Steck's λ).
    binarize : use the 0/1 interaction indicator as X (False: the interaction values).
    num_threads : BLAS threads for the Gram matrix and its inverse (None: ``TASTEBUD_NUM_THREADS``, else all cores).
    verbose : progress over the fit's stages — Gram matrix, inverse, weights (None: on a terminal only).
    """

    registry_name: ClassVar[str] = "ease"
    demo_params: ClassVar[dict[str, Any]] = {"reg": 300.0}
    renamed_params: ClassVar[dict[str, str]] = {"lambda_": "reg"}

    def __init__(self, reg: float = 500.0, binarize: bool = True, num_threads: int | None = None,
                 verbose: bool | None = None):
        self.reg = reg
        self.binarize = binarize
        self.num_threads = num_threads
        self.verbose = verbose

    def fit(self, data: Any) -> "EASE":
        """Fit on an :class:`Interactions` (or DataFrame / sparse matrix)."""
        if not np.isfinite(self.reg) or self.reg <= 0:
            raise ValueError(f"reg must be > 0, got {self.reg!r}")
        train = as_interactions(data)
        if train.nnz == 0:
            raise DataError("EASE.fit: the training data has no interactions")
        ni = train.n_items
        if ni > 60_000:
            warnings.warn(f"EASE builds a dense {ni} × {ni} matrix ({ni * ni * 8 / 1e9:.1f} GB in float64)",
                          RuntimeWarning, stacklevel=2)
        X = train.matrix.astype(np.float64)
        if self.binarize:
            X.data[:] = 1.0
        self._set_interactions(train.users, train.items, train.matrix)
        from threadpoolctl import threadpool_limits

        t0 = time.perf_counter()
        with threadpool_limits(limits=num_threads(self.num_threads), user_api="blas"), \
                progress(total=3, verbose=self.verbose, desc="EASE", unit="step") as bar:
            bar.set_postfix_str(f"Gram matrix {ni}×{ni}")
            G = (X.T @ X).toarray()
            G[np.diag_indices(ni)] += float(self.reg)
            bar.update()
            logger.info("EASE: Gram matrix %d × %d in %.1f s; inverting it", ni, ni, time.perf_counter() - t0)
            bar.set_postfix_str(f"inverse of {ni}×{ni}")
            P = scipy.linalg.inv(G, overwrite_a=True, check_finite=False)
            bar.update()
            logger.info("EASE: inverse after %.1f s", time.perf_counter() - t0)
            bar.set_postfix_str("weights")
            B = -P / np.diag(P)[None, :]
            B[np.diag_indices(ni)] = 0.0
            self.B_ = B.astype(np.float32)
            bar.update()
        self._X = X.astype(np.float32).tocsr()
        self.fitted_ = True
        return self

    def _user_rows(self, user_idx: np.ndarray):
        return self._X[user_idx]

    def _scores(self, user_idx: np.ndarray) -> np.ndarray:
        return np.asarray(self._user_rows(user_idx) @ self.B_, dtype=np.float32)

    def _similar_scores(self, i: int) -> np.ndarray:
        return self.B_[i]

    def recommend_for_history(self, items: Sequence[Any], k: int = 10, weights: Sequence[float] | None = None,
                              filter_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (ids, scores) for a user known only by ``items`` (external ids): ŝ = xB with x the
        history's indicator (or ``weights`` when ``binarize=False``) — EASE needs no refit for new users.
        An empty history is ranked by training popularity (with a warning)."""
        self._check_fitted()
        idx = self.items_.index(list(items) if not isinstance(items, np.ndarray) else items)
        w = np.ones(len(idx)) if (weights is None or self.binarize) else np.asarray(weights, dtype=np.float64)
        if w.shape != idx.shape:
            raise ValueError(f"weights must have one value per item ({len(idx)}), got shape {w.shape}")
        x = np.zeros(len(self.items_), dtype=np.float64)
        np.add.at(x, idx, w)
        if self.binarize:
            x = (x > 0).astype(np.float64)
        s = (x @ self.B_).astype(np.float32) if len(idx) else self._empty_history_scores()
        k = self._check_k(k, len(self.items_))
        if filter_seen:
            s[idx] = -np.inf
        i, sc = topk_rows(s[None, :], k)
        ids, sc = self._to_external(i, sc)
        return ids[0], sc[0]

    def explain_history(self, items: Sequence[Any], targets: Sequence[Any],
                        weights: Sequence[float] | None = None) -> list[dict[str, Any]]:
        """Why each of ``targets`` scores as it does for the history ``items``: EASE's score is a
        sum over the history, ŝᵢ = Σⱼ xⱼ Bⱼᵢ, so history item j contributes xⱼBⱼᵢ and the
        contributions add up to the :meth:`recommend_for_history` score. One dict per target:
        ``{"item", "score", "contributions": [{"item", "value"}, ...]}`` (largest value first)."""
        self._check_fitted()
        idx = self.items_.index(list(items) if not isinstance(items, np.ndarray) else items)
        w = np.ones(len(idx)) if (weights is None or self.binarize) else np.asarray(weights, dtype=np.float64)
        uniq, inv = np.unique(idx, return_inverse=True)
        x = np.bincount(inv, weights=w, minlength=len(uniq)) if len(uniq) else np.zeros(0)
        if self.binarize:
            x = (x > 0).astype(np.float64)
        t = self.items_.index(list(targets))
        C = (self.B_[uniq][:, t].astype(np.float64) * x[:, None]).T  # (n_targets, n_hist)
        hist, tids = self.items_.ids[uniq].tolist(), self.items_.ids[t].tolist()
        return [{"item": ti, "score": float(C[r].sum()),
                 "contributions": [{"item": hist[j], "value": float(C[r, j])} for j in np.argsort(-C[r], kind="stable")]}
                for r, ti in enumerate(tids)]

    def _get_arrays(self) -> dict[str, np.ndarray]:
        X = self._X
        return {**super()._get_arrays(), "B": self.B_, "X_data": X.data}

    @classmethod
    def _array_specs(cls, params: dict[str, Any], extra: dict[str, Any], shapes: Any) -> dict[str, ArraySpec]:
        return {**super()._array_specs(params, extra, shapes), "B": floats("n_items", "n_items"),
                "X_data": floats("nnz_seen")}

    def _set_arrays(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        super()._set_arrays(arrays, extra)
        self.B_ = arrays["B"]
        X = self.seen_.copy()
        X.data = np.asarray(arrays["X_data"], dtype=np.float32)
        self._X = X


__all__ = ["EASE"]
