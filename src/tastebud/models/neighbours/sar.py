"""SAR, Smart Adaptive Recommendations (Microsoft Recommenders' ``SARSingleNode``)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ...array_specs import ArraySpec, csr, floats
from ...data.interactions import as_interactions
from ...exceptions import DataError
from ...kernels import knn as K
from ._similarity import csr_arrays, load_csr, similarity_matrix
from .sparse_scoring import SparseScorer

_TYPES = {"jaccard": K.MODE_JACCARD, "lift": K.MODE_LIFT, "counts": K.MODE_COUNTS, "cooccurrence": K.MODE_COUNTS,
          "cosine": K.MODE_COSINE_COUNTS, "inclusion_index": K.MODE_INCLUSION, "inclusion index": K.MODE_INCLUSION}


class SAR(SparseScorer):
    r"""Smart Adaptive Recommendations: item co-occurrence similarity × time-decayed user affinity.

    With H the binary user × item matrix, the co-occurrence C = HᵀH (cᵢⱼ users who have both;
    cᵢᵢ = item i's count) keeps the entries with cᵢⱼ ≥ ``threshold``, and the item similarity is

        jaccard   sᵢⱼ = cᵢⱼ / (cᵢᵢ + cⱼⱼ − cᵢⱼ)      lift        sᵢⱼ = cᵢⱼ / (cᵢᵢ cⱼⱼ)
        counts    sᵢⱼ = cᵢⱼ                          cosine      sᵢⱼ = cᵢⱼ / √(cᵢᵢ cⱼⱼ)
        inclusion_index  sᵢⱼ = cᵢⱼ / min(cᵢᵢ, cⱼⱼ)

    The affinity of user u to item i is its rating (or weight) r, decayed by age when
    ``time_decay``: aᵤᵢ = r · min(1, 2^{−(t₀ − t)/T}) with T = ``half_life_days`` and t₀ =
    ``time_now`` (default: the latest training timestamp; timestamps in seconds). Scores
    ŝᵤ = aᵤ S, seen items removed; ``recommend_for_history`` scores a new user's items with
    affinity 1 (Recommenders' ``get_item_based_topk``); ``similar_items(i)`` ranks row i of S.

    The same scores as ``SARSingleNode`` (same similarity formulas, threshold and decay), but S
    is sparse — only co-occurring pairs (memory O(co-occurring pairs), not items²) — built and
    applied by parallel numba kernels. Interactions merges duplicate (user, item) rows before
    fitting, and the decay uses the merged row's (latest) timestamp, whereas SARSingleNode sums
    the decayed duplicates; the two agree on data without duplicates. Recommenders' ``normalize``
    option (rescaling scores to the rating range) changes no ranking and is not offered.
    ``verbose``: a progress bar over the similarity computation.

    Reference: Microsoft Recommenders, "SAR: Smart Adaptive Recommendations" (algorithm deep
    dive, github.com/recommenders-team/recommenders).

    Parameters
    ----------
    similarity_type : ``jaccard`` | ``lift`` | ``counts`` (alias ``cooccurrence``) | ``cosine`` | ``inclusion_index``.
    threshold : co-occurrence counts below this are dropped before the similarity.
    time_decay : decay each affinity by its age (half-life ``half_life_days``).
    half_life_days : T of the decay 2^{−age/T}, in days.
    time_now : t₀ of the decay, in seconds (None: the latest training timestamp).
    num_threads : numba threads (None: all cores).
    verbose : progress bar over the similarity computation.
    """

    registry_name: ClassVar[str] = "sar"
    similarity_types: ClassVar[tuple[str, ...]] = tuple(_TYPES)

    def __init__(self, similarity_type: str = "jaccard", threshold: int = 1, time_decay: bool = False,
                 half_life_days: float = 30.0, time_now: float | None = None, num_threads: int | None = None,
                 verbose: bool = False):
        self.similarity_type = similarity_type
        self.threshold = threshold
        self.time_decay = time_decay
        self.half_life_days = half_life_days
        self.time_now = time_now
        self.num_threads = num_threads
        self.verbose = verbose

    def _check_params(self) -> None:
        if self.similarity_type not in _TYPES:
            raise ValueError(f"similarity_type must be one of {', '.join(_TYPES)}; got {self.similarity_type!r}")
        if not isinstance(self.threshold, (int, np.integer)) or isinstance(self.threshold, bool) or self.threshold < 1:
            raise ValueError(f"threshold must be an integer >= 1, got {self.threshold!r}")
        if self.time_decay and not (np.isfinite(self.half_life_days) and self.half_life_days > 0):
            raise ValueError(f"half_life_days must be > 0, got {self.half_life_days!r}")

    def fit(self, data: Any) -> "SAR":
        """Fit on an :class:`Interactions` (ratings or weights; timestamps needed for ``time_decay``)."""
        self._check_params()
        train = as_interactions(data)
        if train.nnz == 0:
            raise DataError("SAR.fit: the training data has no interactions")
        X = sp.csr_matrix(train.matrix, dtype=np.float64, copy=True)
        X.sort_indices()
        self.time_now_: float | None = None  # the decay's reference time (seconds)
        if self.time_decay:
            if train.timestamps is None:
                raise DataError("SAR(time_decay=True).fit: the interactions have no timestamps")
            T = train.timestamps.tocsr()
            T.sort_indices()
            t0 = float(T.data.max()) if self.time_now is None else float(self.time_now)
            half_life = float(self.half_life_days) * 24 * 60 * 60
            X.data = X.data * np.minimum(1.0, np.power(0.5, (t0 - T.data) / half_life))
            self.time_now_ = t0
        H = X.T.tocsr()  # items × users, binary
        H.data = np.ones(len(H.data))
        counts = np.diff(H.indptr).astype(np.float64)
        ones = np.ones(H.shape[0])
        finish = {"mode": _TYPES[self.similarity_type], "pa": counts, "pb": counts, "sa": ones, "sb": ones}
        self.similarity_ = similarity_matrix(H, finish, None, min_count=int(self.threshold), include_self=True,
                                             num_threads=self.num_threads, verbose=self.verbose, desc="SAR similarities")
        self.item_frequencies_ = counts
        self._set_interactions(train.users, train.items, train.matrix)
        self._A = X
        self.fitted_ = True
        return self

    def _query(self, user_idx: np.ndarray) -> sp.csr_matrix:
        return self._A[user_idx]

    def _history_query(self, indptr: np.ndarray, indices: np.ndarray) -> sp.csr_matrix:
        return sp.csr_matrix((np.ones(len(indices)), indices, indptr), shape=(len(indptr) - 1, len(self.items_)))

    def _score_matrix(self) -> sp.csr_matrix:
        return self.similarity_

    def _popularity_scores(self, n: int) -> np.ndarray:
        return np.broadcast_to(self.item_counts_.astype(np.float32), (n, len(self.item_counts_)))

    def _similar_scores(self, i: int) -> np.ndarray:
        row = self.similarity_[i]
        s = np.zeros(len(self.items_))
        s[row.indices] = row.data
        return s

    @property
    def user_affinity_(self) -> sp.csr_matrix:
        """The (time-decayed) user × item affinity matrix."""
        return self._A

    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {**super()._get_arrays(), "affinity": self._A.data, **csr_arrays("sim", self.similarity_)}

    def _get_extra(self) -> dict[str, Any]:
        return {"time_now": self.time_now_}

    @classmethod
    def _extra_spec(cls, params: dict[str, Any]) -> dict[str, Any]:
        return {"time_now": "~number?"}

    @classmethod
    def _array_specs(cls, params: dict[str, Any], extra: dict[str, Any], shapes: Any) -> dict[str, ArraySpec]:
        return {**super()._array_specs(params, extra, shapes), "affinity": floats("nnz_seen"),
                **csr("sim", "n_items", "n_items")}

    def _set_arrays(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        super()._set_arrays(arrays, extra)
        A = sp.csr_matrix(self.seen_, dtype=np.float64)
        A.data = np.asarray(arrays["affinity"], dtype=np.float64)
        self._A = A
        self.similarity_ = load_csr(arrays, "sim", len(self.items_), len(self.items_))
        self.time_now_ = extra.get("time_now")
        self.item_frequencies_ = np.diff(self.seen_.tocsc().indptr).astype(np.float64)


__all__ = ["SAR"]
