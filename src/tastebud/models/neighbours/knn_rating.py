"""Rating prediction with neighbours, as in Surprise: ``KNNBasic``, ``KNNWithMeans``,
``KNNWithZScore``, ``KNNBaseline`` (same names, same prediction rules, same defaults)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ..._threads import numba_threads
from ...array_specs import ArraySpec, csr, floats
from ...data.interactions import Interactions, as_interactions
from ...exceptions import DataError, FormatError
from ...kernels import knn as K
from ..base import RatingPredictor
from ._similarity import corated_matrix, csr_arrays, load_csr

_SIMS = {"cosine": K.CO_COSINE, "msd": K.CO_MSD, "pearson": K.CO_PEARSON, "pearson_baseline": K.CO_PEARSON_BASELINE}


def baselines(train: Interactions, method: str, reg_u: float, reg_i: float, epochs: int | None, reg: float,
              lr: float) -> tuple[float, np.ndarray, np.ndarray]:
    """(μ, b_u, b_i) as Surprise's ``bsl_options``: ``"als"`` (reg_u, reg_i, 10 sweeps by default; the
    :class:`BaselinePredictor` fit) or ``"sgd"`` (reg, learning rate lr, 20 epochs by default, ratings
    in user order)."""
    if method == "als":
        from ..baselines.baseline import BaselinePredictor

        bp = BaselinePredictor()
        names = bp._param_names()
        bp.set_params(reg_u=reg_u, reg_i=reg_i, **{"epochs" if "epochs" in names else "n_epochs": 10 if epochs is None else epochs})
        bp.fit(train)
        return float(bp.global_mean_), np.asarray(bp.user_bias_, np.float64), np.asarray(bp.item_bias_, np.float64)
    if method == "sgd":
        from ...kernels.sgd import mf_sgd_epoch

        R = train.matrix
        rows = np.repeat(np.arange(R.shape[0]), np.diff(R.indptr)).astype(np.int64)
        cols = R.indices.astype(np.int64)
        r = R.data.astype(np.float64)
        mu = float(r.mean())
        bu, bi = np.zeros(R.shape[0]), np.zeros(R.shape[1])
        P, Q = np.zeros((R.shape[0], 0)), np.zeros((R.shape[1], 0))
        order = np.arange(len(r), dtype=np.int64)
        for _ in range(20 if epochs is None else int(epochs)):
            mf_sgd_epoch(rows, cols, r, order, mu, bu, bi, P, Q, float(lr), 0.0, float(reg), 0.0, True)
        return mu, bu, bi
    raise ValueError(f"bsl_method must be 'als' or 'sgd', got {method!r}")


def predicted_scores(model: RatingPredictor, user_idx: np.ndarray) -> np.ndarray:
    """Predicted ratings of every item for ``user_idx`` (items without training data get the
    model's fallback), as ``recommend`` scores."""
    n_items = len(model.items_)
    uu = np.repeat(np.asarray(user_idx, dtype=np.int64), n_items)
    ii = np.tile(np.arange(n_items), len(user_idx))
    ii = np.where(model.item_counts_[ii] > 0, ii, -1)
    return model._predict_indices(uu, ii).reshape(len(user_idx), n_items).astype(np.float32)


class StoredRatings(RatingPredictor):
    """A rating predictor that keeps its training ratings (``_R``, users × items, float64; the
    structure is ``seen_``), the global mean and the rating range (the k-NN rating models and
    ``SlopeOne``): their saved arrays, and ``recommend`` ranking the predicted ratings."""

    _R: sp.csr_matrix
    global_mean_: float
    rating_min_: float
    rating_max_: float

    def _scores(self, user_idx: np.ndarray) -> np.ndarray:
        return predicted_scores(self, user_idx)

    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {**super()._get_arrays(), "ratings": self._R.data,
                "scalars": np.array([self.global_mean_, self.rating_min_, self.rating_max_])}

    @classmethod
    def _array_specs(cls, params: dict[str, Any], extra: dict[str, Any], shapes: Any) -> dict[str, ArraySpec]:
        return {**super()._array_specs(params, extra, shapes), "ratings": floats("nnz_seen"), "scalars": floats(3)}

    @classmethod
    def _check_saved(cls, path: Any, arrays: dict[str, np.ndarray], extra: dict[str, Any],
                     params: dict[str, Any], sizes: dict[str, int]) -> None:
        lo, hi = (float(v) for v in arrays["scalars"][1:])
        if not lo <= hi:
            raise FormatError(f"{path}: array 'scalars' holds the rating range [{lo}, {hi}]: its minimum exceeds its maximum")

    def _set_arrays(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        super()._set_arrays(arrays, extra)
        R = sp.csr_matrix(self.seen_, dtype=np.float64)
        R.data = np.asarray(arrays["ratings"], dtype=np.float64)
        self._R = R
        self.global_mean_, self.rating_min_, self.rating_max_ = (float(v) for v in arrays["scalars"])


class _KNNRating(StoredRatings):
    """Shared fit/predict of the four k-NN rating predictors (see the subclasses).

    Parameters
    ----------
    k : most similar neighbours (with a positive similarity) used per prediction (Surprise: 40).
    min_k : fewer neighbours than this and the neighbour term is dropped.
    similarity : ``msd`` | ``cosine`` | ``pearson`` | ``pearson_baseline`` over co-rated pairs (None: the class's default).
    user_based : neighbours are users (True) or items (False), Surprise's ``sim_options["user_based"]``.
    min_support : pairs with fewer co-ratings get similarity 0.
    shrinkage : ``pearson_baseline`` only: ρ·(n − 1)/(n − 1 + shrinkage).
    bsl_method : baseline estimation, ``als`` or ``sgd`` (Surprise's ``bsl_options``).
    bsl_reg_u : ALS baseline: regularisation of the user biases.
    bsl_reg_i : ALS baseline: regularisation of the item biases.
    bsl_epochs : baseline epochs (None: 10 for ALS, 20 for SGD).
    bsl_reg : SGD baseline: regularisation.
    bsl_lr : SGD baseline: learning rate.
    clip : clip predictions to the training rating range.
    num_threads : numba threads (None: all cores).
    verbose : progress bar over the similarity computation.
    """

    _rule: ClassVar[int] = K.RULE_BASIC
    _default_similarity: ClassVar[str] = "msd"

    def __init__(self, k: int = 40, min_k: int = 1, similarity: str | None = None, user_based: bool = True,
                 min_support: int = 1, shrinkage: float = 100.0, bsl_method: str = "als", bsl_reg_u: float = 15.0,
                 bsl_reg_i: float = 10.0, bsl_epochs: int | None = None, bsl_reg: float = 0.02, bsl_lr: float = 0.005,
                 clip: bool = True, num_threads: int | None = None, verbose: bool = False):
        self.k = k
        self.min_k = min_k
        self.similarity = similarity
        self.user_based = user_based
        self.min_support = min_support
        self.shrinkage = shrinkage
        self.bsl_method = bsl_method
        self.bsl_reg_u = bsl_reg_u
        self.bsl_reg_i = bsl_reg_i
        self.bsl_epochs = bsl_epochs
        self.bsl_reg = bsl_reg
        self.bsl_lr = bsl_lr
        self.clip = clip
        self.num_threads = num_threads
        self.verbose = verbose

    @property
    def similarity_name(self) -> str:
        return self._default_similarity if self.similarity is None else self.similarity

    def _check_params(self) -> None:
        if self.similarity_name not in _SIMS:
            raise ValueError(f"similarity must be one of {', '.join(_SIMS)}; got {self.similarity!r}")
        for name in ("k", "min_k", "min_support"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < (1 if name == "k" else 0):
                raise ValueError(f"{name} must be a{' positive' if name == 'k' else ' non-negative'} integer, got {v!r}")
        if not np.isfinite(self.shrinkage) or self.shrinkage < 0:
            raise ValueError(f"shrinkage must be >= 0, got {self.shrinkage!r}")
        if self.bsl_method not in ("als", "sgd"):
            raise ValueError(f"bsl_method must be 'als' or 'sgd', got {self.bsl_method!r}")

    def fit(self, data: Any) -> "_KNNRating":
        """Fit on explicit ratings (an :class:`Interactions` or DataFrame / sparse matrix)."""
        self._check_params()
        train = as_interactions(data)
        if train.nnz == 0:
            raise DataError(f"{type(self).__name__}.fit: the training data has no ratings")
        R = sp.csr_matrix(train.matrix, dtype=np.float64)
        R.sort_indices()
        self._set_interactions(train.users, train.items, R)
        sim = self.similarity_name
        need_bsl = self._rule == K.RULE_BASELINE or sim == "pearson_baseline"
        mu = float(R.data.mean())
        bu, bi = np.zeros(R.shape[0]), np.zeros(R.shape[1])
        if need_bsl:
            mu, bu, bi = baselines(train, self.bsl_method, self.bsl_reg_u, self.bsl_reg_i, self.bsl_epochs,
                                   self.bsl_reg, self.bsl_lr)
        E = R if self.user_based else R.T.tocsr()  # entities (who get neighbours) × features
        E.sort_indices()
        bx, by = (bu, bi) if self.user_based else (bi, bu)
        if sim == "pearson_baseline":
            x = np.repeat(np.arange(E.shape[0]), np.diff(E.indptr))
            resid = sp.csr_matrix((E.data - (mu + bx[x] + by[E.indices]), E.indices, E.indptr), shape=E.shape)
            S = corated_matrix(resid, K.CO_PEARSON_BASELINE, shrinkage=self.shrinkage,
                               min_support=max(2, int(self.min_support)), num_threads=self.num_threads,
                               verbose=self.verbose, desc=f"{type(self).__name__} similarities")
        else:
            S = corated_matrix(E, _SIMS[sim], min_support=int(self.min_support), num_threads=self.num_threads,
                               verbose=self.verbose, desc=f"{type(self).__name__} similarities")
        cnt = np.diff(E.indptr)
        x = np.repeat(np.arange(E.shape[0]), cnt)
        means = np.bincount(x, E.data, minlength=E.shape[0]) / np.maximum(cnt, 1)
        var = np.bincount(x, (E.data - means[x]) ** 2, minlength=E.shape[0]) / np.maximum(cnt, 1)
        sig = np.sqrt(var)
        self.global_mean_ = mu
        self.similarity_ = S
        self.means_ = means
        # σ = 0 (one rating, or all equal) → the standard deviation of all ratings (Surprise), or 1 if that is 0 too
        self.sigmas_ = np.where(sig == 0.0, float(np.std(R.data)) or 1.0, sig)
        self.user_bias_, self.item_bias_ = bu, bi
        self.rating_min_, self.rating_max_ = float(R.data.min()), float(R.data.max())
        self._R = R
        self._F = E.T.tocsr()  # features × entities: who rated what, with the ratings
        self._F.sort_indices()
        self.fitted_ = True
        return self

    def _predict_indices(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        u = np.asarray(u, dtype=np.int64)
        i = np.asarray(i, dtype=np.int64)
        mu = self.global_mean_
        out = np.full(len(u), mu)
        if self._rule == K.RULE_BASELINE:  # unknown user/item: μ + the known bias
            out += np.where(u >= 0, self.user_bias_[np.maximum(u, 0)], 0.0)
            out += np.where(i >= 0, self.item_bias_[np.maximum(i, 0)], 0.0)
        both = np.flatnonzero((u >= 0) & (i >= 0))
        if len(both):
            x, y = (u[both], i[both]) if self.user_based else (i[both], u[both])
            order = np.argsort(x, kind="stable")
            qx, qy = x[order], y[order]
            est = np.empty(len(qx))
            used = np.empty(len(qx), dtype=np.int64)
            bx, by = (self.user_bias_, self.item_bias_) if self.user_based else (self.item_bias_, self.user_bias_)
            S, F = self.similarity_, self._F
            with numba_threads(self.num_threads):
                K.knn_predict(qx, qy, S.indptr, S.indices, S.data, F.indptr, F.indices, F.data, S.shape[0],
                              int(self.k), int(self.min_k), self._rule, mu, self.means_, self.sigmas_, bx, by, est, used)
            est = np.where(np.isnan(est), mu, est)  # KNNBasic without enough neighbours: the global mean
            res = np.empty(len(qx))
            res[order] = est
            out[both] = res
            self.actual_k_ = np.zeros(len(u), dtype=np.int64)
            self.actual_k_[both[order]] = used
        if self.clip:
            np.clip(out, self.rating_min_, self.rating_max_, out=out)
        return out

    def _similar_scores(self, i: int) -> np.ndarray:
        if self.user_based:
            raise NotImplementedError(f"{type(self).__name__}(user_based=True) holds user-user similarities; "
                                      "similar_items needs user_based=False")
        row = self.similarity_[i]
        s = np.zeros(len(self.items_))
        s[row.indices] = row.data
        return s

    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {**super()._get_arrays(), **csr_arrays("sim", self.similarity_), "means": self.means_,
                "sigmas": self.sigmas_, "user_bias": self.user_bias_, "item_bias": self.item_bias_}

    @classmethod
    def _array_specs(cls, params: dict[str, Any], extra: dict[str, Any], shapes: Any) -> dict[str, ArraySpec]:
        n = "n_users" if params["user_based"] else "n_items"  # who gets neighbours
        return {**super()._array_specs(params, extra, shapes), **csr("sim", n, n), "means": floats(n),
                "sigmas": floats(n), "user_bias": floats("n_users"), "item_bias": floats("n_items")}

    @classmethod
    def _check_saved(cls, path: Any, arrays: dict[str, np.ndarray], extra: dict[str, Any],
                     params: dict[str, Any], sizes: dict[str, int]) -> None:
        super()._check_saved(path, arrays, extra, params, sizes)
        sig = arrays["sigmas"]
        if len(sig) and not (sig > 0).all():
            raise FormatError(f"{path}: array 'sigmas' holds {float(sig.min())!r}; standard deviations of a z-score must be > 0")

    def _set_arrays(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        super()._set_arrays(arrays, extra)
        E = self._R if self.user_based else self._R.T.tocsr()
        self._F = E.T.tocsr()
        self._F.sort_indices()
        self.similarity_ = load_csr(arrays, "sim", E.shape[0], E.shape[0])
        self.means_, self.sigmas_ = (np.asarray(arrays[k], dtype=np.float64) for k in ("means", "sigmas"))
        self.user_bias_, self.item_bias_ = (np.asarray(arrays[k], dtype=np.float64) for k in ("user_bias", "item_bias"))


_PARAMS_DOC = """
    Parameters (Surprise's names and defaults; ``sim_options``/``bsl_options`` flattened):
    ``k`` (40) most similar neighbours with a positive similarity among those who rated the item
    (user-based) or among the items the user rated (item-based); ``min_k`` (1): fewer neighbours
    than this and the neighbour term is dropped; ``similarity`` (``msd`` | ``cosine`` |
    ``pearson`` | ``pearson_baseline``, computed over co-rated items/users only); ``user_based``;
    ``min_support``: pairs with fewer co-ratings get similarity 0; ``shrinkage`` (100, for
    ``pearson_baseline`` only: ρ·(n − 1)/(n − 1 + shrinkage)); ``bsl_method`` (``als`` with
    ``bsl_reg_u``=15, ``bsl_reg_i``=10, ``bsl_epochs``=10, or ``sgd`` with ``bsl_reg``=0.02,
    ``bsl_lr``=0.005, ``bsl_epochs``=20) for the baselines; ``clip`` predictions to the training
    rating range. Ties between equally similar neighbours go to the lower index (Surprise: the
    earlier rating in its training order). An unknown user or item gets the global mean
    (``KNNBaseline``: μ plus the known bias).

    The similarities of every co-rated pair with a positive value are kept in a sparse matrix
    (memory O(co-rated pairs), computed by a parallel numba kernel; ``verbose`` shows its
    progress); predictions run in parallel.
"""


class KNNBasic(_KNNRating):
    __doc__ = r"""Basic k-NN rating prediction (Surprise ``KNNBasic``).

        r̂ᵤᵢ = Σ_{v ∈ Nᵏᵢ(u)} sim(u, v)·r_vi / Σ_{v ∈ Nᵏᵢ(u)} sim(u, v)      (user-based; item-based: swap roles)

    Fewer than ``min_k`` neighbours: the global mean.

    Paper: Resnick et al., "GroupLens", CSCW 1994; Herlocker et al., SIGIR 1999.
    """ + _PARAMS_DOC
    registry_name: ClassVar[str] = "knn-basic"
    _rule = K.RULE_BASIC


class KNNWithMeans(_KNNRating):
    __doc__ = r"""k-NN on mean-centred ratings (Surprise ``KNNWithMeans``).

        r̂ᵤᵢ = μᵤ + Σ_{v ∈ Nᵏᵢ(u)} sim(u, v)·(r_vi − μ_v) / Σ_{v ∈ Nᵏᵢ(u)} sim(u, v)

    Paper: Resnick et al., CSCW 1994.
    """ + _PARAMS_DOC
    registry_name: ClassVar[str] = "knn-means"
    _rule = K.RULE_MEANS


class KNNWithZScore(_KNNRating):
    __doc__ = r"""k-NN on z-scores (Surprise ``KNNWithZScore``).

        r̂ᵤᵢ = μᵤ + σᵤ Σ_{v ∈ Nᵏᵢ(u)} sim(u, v)·(r_vi − μ_v)/σ_v / Σ_{v ∈ Nᵏᵢ(u)} sim(u, v)

    (σ = 0 is replaced by the standard deviation of all ratings.)

    Paper: Herlocker, Konstan, Borchers & Riedl, SIGIR 1999.
    """ + _PARAMS_DOC
    registry_name: ClassVar[str] = "knn-zscore"
    _rule = K.RULE_ZSCORE


class KNNBaseline(_KNNRating):
    __doc__ = r"""k-NN on baseline residuals (Surprise ``KNNBaseline``; Koren, "Factor in the
    neighbors", TKDD 2010, eq. 3).

        r̂ᵤᵢ = bᵤᵢ + Σ_{v ∈ Nᵏᵢ(u)} sim(u, v)·(r_vi − b_vi) / Σ_{v ∈ Nᵏᵢ(u)} sim(u, v),   bᵤᵢ = μ + bᵤ + bᵢ

    The default similarity here is ``pearson_baseline`` (Koren's shrunk Pearson correlation of
    baseline residuals), which Surprise recommends for this model; Surprise's own default is
    ``msd`` — pass ``similarity="msd"`` for the same model as ``KNNBaseline()`` there.
    """ + _PARAMS_DOC
    registry_name: ClassVar[str] = "knn-baseline"
    _rule = K.RULE_BASELINE
    _default_similarity = "pearson_baseline"


__all__ = ["KNNBasic", "KNNWithMeans", "KNNWithZScore", "KNNBaseline", "StoredRatings", "baselines"]
