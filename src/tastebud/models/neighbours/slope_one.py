"""Slope One (Lemire & Maclachlan, "Slope One predictors for online rating-based collaborative
filtering", SDM 2005), as Surprise's ``SlopeOne``."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ..._threads import numba_threads
from ...array_specs import ArraySpec, csr, floats
from ...data.interactions import as_interactions
from ...exceptions import DataError
from ...kernels import knn as K
from ._similarity import corated_matrix, csr_arrays, load_csr
from .knn_rating import StoredRatings


class SlopeOne(StoredRatings):
    r"""Slope One rating prediction.

        r̂ᵤᵢ = μᵤ + (1/|Rᵢ(u)|) Σ_{j ∈ Rᵢ(u)} dev(i, j),   dev(i, j) = (1/|Uᵢⱼ|) Σ_{v ∈ Uᵢⱼ} (r_vi − r_vj)

    Rᵢ(u): the items u rated that share at least one rater with i; μᵤ: u's mean rating (the
    prediction when Rᵢ(u) is empty). An unknown user or item gets the global mean. The deviations
    of every co-rated item pair are kept in a sparse matrix (memory O(co-rated pairs), built by a
    parallel numba kernel; ``verbose`` shows its progress); predictions are clipped to the
    training rating range with ``clip``.

    Paper: Lemire & Maclachlan, "Slope One Predictors for Online Rating-Based Collaborative
    Filtering", SDM 2005.

    Parameters
    ----------
    clip : clip predictions to the training rating range.
    num_threads : numba threads (None: all cores).
    verbose : progress bar over the deviation computation.
    """

    registry_name: ClassVar[str] = "slope-one"

    def __init__(self, clip: bool = True, num_threads: int | None = None, verbose: bool = False):
        self.clip = clip
        self.num_threads = num_threads
        self.verbose = verbose

    def fit(self, data: Any) -> "SlopeOne":
        """Fit on explicit ratings (an :class:`Interactions` or DataFrame / sparse matrix)."""
        train = as_interactions(data)
        if train.nnz == 0:
            raise DataError("SlopeOne.fit: the training data has no ratings")
        R = sp.csr_matrix(train.matrix, dtype=np.float64)
        R.sort_indices()
        self._set_interactions(train.users, train.items, R)
        self.deviations_ = corated_matrix(R.T.tocsr(), K.CO_SLOPE_ONE, include_self=True, num_threads=self.num_threads,
                                          verbose=self.verbose, desc="SlopeOne deviations")
        cnt = np.diff(R.indptr)
        self.user_means_ = np.add.reduceat(R.data, R.indptr[:-1]) / np.maximum(cnt, 1) if R.nnz else np.zeros(R.shape[0])
        self.user_means_[cnt == 0] = 0.0
        self.global_mean_ = float(R.data.mean())
        self.rating_min_, self.rating_max_ = float(R.data.min()), float(R.data.max())
        self._R = R
        self.fitted_ = True
        return self

    def _predict_indices(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        u = np.asarray(u, dtype=np.int64)
        i = np.asarray(i, dtype=np.int64)
        out = np.full(len(u), self.global_mean_)
        both = np.flatnonzero((u >= 0) & (i >= 0))
        if len(both):
            D, R = self.deviations_, self._R
            order = np.argsort(i[both], kind="stable")
            est = np.empty(len(both))
            with numba_threads(self.num_threads):
                K.slope_one_predict(u[both][order], i[both][order], D.indptr, D.indices, D.data, R.indptr, R.indices,
                                    self.user_means_, est)
            res = np.empty(len(both))
            res[order] = est
            out[both] = res
        if self.clip:
            np.clip(out, self.rating_min_, self.rating_max_, out=out)
        return out

    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {**super()._get_arrays(), **csr_arrays("dev", self.deviations_), "user_means": self.user_means_}

    @classmethod
    def _array_specs(cls, params: dict[str, Any], extra: dict[str, Any], shapes: Any) -> dict[str, ArraySpec]:
        return {**super()._array_specs(params, extra, shapes), **csr("dev", "n_items", "n_items"),
                "user_means": floats("n_users")}

    def _set_arrays(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        super()._set_arrays(arrays, extra)
        self.deviations_ = load_csr(arrays, "dev", len(self.items_), len(self.items_))
        self.user_means_ = np.asarray(arrays["user_means"], dtype=np.float64)


__all__ = ["SlopeOne"]
