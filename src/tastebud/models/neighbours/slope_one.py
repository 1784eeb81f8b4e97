"""Slope One (Lemire & Maclachlan, "Slope One predictors for online rating-based collaborative
filtering", SDM 2005), as Surprise's ``SlopeOne``."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ..._threads import numba_threads
from ...data.interactions import as_interactions
from ...exceptions import DataError
from ...kernels import knn as K
from ..base import RatingPredictor
from ._similarity import corated_matrix
from .knn_rating import predicted_scores


class SlopeOne(RatingPredictor):
    r"""Slope One rating prediction.

        r̂ᵤᵢ = μᵤ + (1/|Rᵢ(u)|) Σ_{j ∈ Rᵢ(u)} dev(i, j),   dev(i, j) = (1/|Uᵢⱼ|) Σ_{v ∈ Uᵢⱼ} (r_vi − r_vj)

    Rᵢ(u): the items u rated that share at least one rater with i; μᵤ: u's mean rating (the
    prediction when Rᵢ(u) is empty). An unknown user or item gets the global mean. The deviations
    of every co-rated item pair are kept in a sparse matrix (memory O(co-rated pairs), built by a
    parallel numba kernel); predictions are clipped to the training rating range with ``clip``.
    """

    registry_name: ClassVar[str] = "slope-one"

    def __init__(self, clip: bool = True, num_threads: int | None = None):
        self.clip = clip
        self.num_threads = num_threads

    def fit(self, data: Any) -> "SlopeOne":
        """Fit on explicit ratings (an :class:`Interactions` or DataFrame / sparse matrix)."""
        train = as_interactions(data)
        if train.nnz == 0:
            raise DataError("SlopeOne.fit: the training data has no ratings")
        R = sp.csr_matrix(train.matrix, dtype=np.float64)
        R.sort_indices()
        self._set_interactions(train.users, train.items, R)
        self.deviations_ = corated_matrix(R.T.tocsr(), K.CO_SLOPE_ONE, include_self=True, num_threads=self.num_threads)
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

    def _scores(self, user_idx: np.ndarray) -> np.ndarray:
        return predicted_scores(self, user_idx)

    def _get_arrays(self) -> dict[str, np.ndarray]:
        D = self.deviations_
        return {**super()._get_arrays(), "ratings": self._R.data, "dev_indptr": D.indptr.astype(np.int64),
                "dev_indices": D.indices.astype(np.int64), "dev_data": D.data, "user_means": self.user_means_,
                "scalars": np.array([self.global_mean_, self.rating_min_, self.rating_max_])}

    def _set_arrays(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        super()._set_arrays(arrays, extra)
        R = sp.csr_matrix(self.seen_, dtype=np.float64)
        R.data = np.asarray(arrays["ratings"], dtype=np.float64)
        self._R = R
        n = R.shape[1]
        self.deviations_ = sp.csr_matrix((arrays["dev_data"], arrays["dev_indices"].astype(np.int32), arrays["dev_indptr"]),
                                         shape=(n, n))
        self.user_means_ = arrays["user_means"]
        self.global_mean_, self.rating_min_, self.rating_max_ = (float(v) for v in arrays["scalars"])


__all__ = ["SlopeOne"]
