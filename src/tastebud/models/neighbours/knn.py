"""Top-N neighbourhood models: ``ItemKNN`` (item-based, Sarwar et al. 2001; Deshpande & Karypis
2004) and ``UserKNN`` (user-based, Herlocker et al. 1999), with sparse top-k neighbour lists."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ...array_specs import ArraySpec, csr, floats
from ...data.interactions import as_interactions
from ...exceptions import DataError, FormatError
from ...kernels import knn as K
from ._similarity import SIMILARITIES, check_similarity, csr_arrays, load_csr, similarity_matrix, weight_entities
from .sparse_scoring import SparseScorer


def _weights(model: Any, E: sp.csr_matrix, stats: dict | None = None):
    return weight_entities(E, model.similarity, model.shrinkage, model.bm25_k1, model.bm25_b,
                           model.asymmetric_alpha, stats)


def _values(model: Any, train: Any) -> sp.csr_matrix:
    X = sp.csr_matrix(train.matrix, dtype=np.float32, copy=True)
    X.sort_indices()
    if model.binarize:
        X.data[:] = 1.0
    return X


def _csr_from(model: Any, data: np.ndarray) -> sp.csr_matrix:
    X = model.seen_.copy()
    X.data = np.asarray(data)
    return X


class _KNNTopN(SparseScorer):
    """Hyperparameters (with ItemKNN's defaults) and their checks, shared by ItemKNN and UserKNN.

    Parameters
    ----------
    similarity : ``cosine`` | ``adjusted_cosine`` | ``pearson`` | ``jaccard`` | ``bm25`` | ``tfidf`` | ``asymmetric``.
    k : neighbours kept per item (ItemKNN) or per user (UserKNN).
    shrinkage : h in xᵢ·xⱼ / (‖xᵢ‖‖xⱼ‖ + h); damps pairs with little support (0: none).
    binarize : treat every interaction as 1 instead of its value.
    include_self : keep the item (user) itself among its k neighbours, as implicit does.
    bm25_k1 : BM25 term-frequency saturation (``similarity="bm25"``).
    bm25_b : BM25 length normalisation in [0, 1] (``similarity="bm25"``).
    asymmetric_alpha : α of the asymmetric cosine, in [0, 1] (0.5 is the cosine).
    num_threads : numba threads for the similarity kernels (None: all cores).
    verbose : progress bar over the similarity computation.
    """

    demo_params: ClassVar[dict[str, Any]] = {"similarity": "cosine", "k": 50, "binarize": True}
    similarities: ClassVar[tuple[str, ...]] = SIMILARITIES

    def __init__(self, similarity: str = "cosine", k: int = 20, shrinkage: float = 0.0, binarize: bool = False,
                 include_self: bool = True, bm25_k1: float = 1.2, bm25_b: float = 0.75,
                 asymmetric_alpha: float = 0.5, num_threads: int | None = None, verbose: bool = False):
        self.similarity = similarity
        self.k = k
        self.shrinkage = shrinkage
        self.binarize = binarize
        self.include_self = include_self
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b
        self.asymmetric_alpha = asymmetric_alpha
        self.num_threads = num_threads
        self.verbose = verbose

    def _check_params(self) -> None:
        check_similarity(self.similarity)
        if not isinstance(self.k, (int, np.integer)) or isinstance(self.k, bool) or self.k < 1:
            raise ValueError(f"k (neighbours kept per {'item' if isinstance(self, ItemKNN) else 'user'}) must be a "
                             f"positive integer, got {self.k!r}")
        for name in ("shrinkage", "bm25_k1"):
            v = getattr(self, name)
            if not np.isfinite(v) or v < 0:
                raise ValueError(f"{name} must be >= 0, got {v!r}")
        if not 0.0 <= self.bm25_b <= 1.0:
            raise ValueError(f"bm25_b must be in [0, 1], got {self.bm25_b!r}")
        if not 0.0 <= self.asymmetric_alpha <= 1.0:
            raise ValueError(f"asymmetric_alpha must be in [0, 1], got {self.asymmetric_alpha!r}")


class ItemKNN(_KNNTopN):
    r"""Item-based k-nearest-neighbours top-N recommender.

    For each item i the ``k`` most similar items j are kept (a sparse CSR row of sᵢⱼ; the item
    itself is one of them when ``include_self``, as in implicit). A user's scores are

        ŝᵤⱼ = Σ_{i ∈ I(u)} xᵤᵢ · sᵢⱼ        (sᵢⱼ = 0 unless j is among i's k neighbours)

    with xᵤᵢ the interaction value (1 with ``binarize``). Similarities (see
    ``tastebud.models.neighbours._similarity``): ``cosine``, ``tfidf``, ``bm25`` — implicit's
    ``CosineRecommender``/``TFIDFRecommender``/``BM25Recommender`` reproduced exactly (same
    weighting arithmetic, same K, self-similarity kept, same tie rule when pruning: candidates in
    reverse first-co-occurrence order, a full list admits only a strictly larger score and drops
    its smallest (score, index) pair) — and ``adjusted_cosine`` (user-mean centred, Sarwar et al.
    2001), ``pearson`` (item-mean centred), ``jaccard``, ``asymmetric`` cosine
    sᵢⱼ = xᵢ·xⱼ / (‖xᵢ‖^{2α}‖xⱼ‖^{2(1−α)}) (Aiolli 2013). ``shrinkage`` h damps pairs with little
    support: xᵢ·xⱼ / (‖xᵢ‖‖xⱼ‖ + h) (Jaccard: |∩| / (|∪| + h)).

    The neighbour lists come from a parallel sparse-sparse product (numba; memory O(k·items),
    never an items × items matrix; ``verbose`` shows its progress). ``similar_items(i)`` ranks
    i's neighbours by sᵢⱼ; ``recommend_for_history`` scores a new user's history the same way,
    no refit.

    Papers: Sarwar, Karypis, Konstan & Riedl, "Item-based collaborative filtering recommendation
    algorithms", WWW 2001; Deshpande & Karypis, "Item-based top-N recommendation algorithms",
    TOIS 2004.
    """

    registry_name: ClassVar[str] = "itemknn"

    def fit(self, data: Any) -> "ItemKNN":
        """Fit on an :class:`Interactions` (or DataFrame / sparse matrix)."""
        self._check_params()
        train = as_interactions(data)
        if train.nnz == 0:
            raise DataError("ItemKNN.fit: the training data has no interactions")
        X = _values(self, train)
        W, finish, _ = _weights(self, X.T.tocsr())
        self.similarity_ = similarity_matrix(W, finish, min(int(self.k), train.n_items), shrinkage=self.shrinkage,
                                             include_self=self.include_self, num_threads=self.num_threads,
                                             verbose=self.verbose, desc="ItemKNN similarities")
        self._set_interactions(train.users, train.items, train.matrix)
        self._X = X
        self.fitted_ = True
        return self

    def _query(self, user_idx: np.ndarray) -> sp.csr_matrix:
        return self._X[user_idx]

    def _history_query(self, indptr: np.ndarray, indices: np.ndarray) -> sp.csr_matrix:
        return sp.csr_matrix((np.ones(len(indices), np.float32), indices, indptr), shape=(len(indptr) - 1, len(self.items_)))

    def _score_matrix(self) -> sp.csr_matrix:
        return self.similarity_

    def _similar_scores(self, i: int) -> np.ndarray:
        row = self.similarity_[i]
        s = np.zeros(len(self.items_), dtype=np.float64)
        s[row.indices] = row.data
        return s

    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {**super()._get_arrays(), "X_data": self._X.data.astype(np.float32), **csr_arrays("sim", self.similarity_)}

    @classmethod
    def _array_specs(cls, params: dict[str, Any], extra: dict[str, Any], shapes: Any) -> dict[str, ArraySpec]:
        return {**super()._array_specs(params, extra, shapes), "X_data": floats("nnz_seen"),
                **csr("sim", "n_items", "n_items")}

    def _set_arrays(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        super()._set_arrays(arrays, extra)
        self._X = _csr_from(self, np.asarray(arrays["X_data"], dtype=np.float32))
        self.similarity_ = load_csr(arrays, "sim", len(self.items_), len(self.items_))


class UserKNN(_KNNTopN):
    r"""User-based k-nearest-neighbours top-N recommender.

    Each training user u keeps the ``k`` most similar users N_k(u) (sparse, same similarities as
    :class:`ItemKNN` with the roles of users and items swapped: ``pearson`` centres each user's
    values by the user's mean, ``adjusted_cosine`` by each item's mean, ``tfidf``/``bm25`` weight
    items by their rarity among users). Scores:

        ŝᵤⱼ = Σ_{v ∈ N_k(u)} s_uv · x_vj

    ``recommend_for_history`` folds a new user in without a refit: its history is weighted with
    the training statistics (idf, item means, average length), compared with every training
    user, and its own k neighbours are kept (ties: lower user index first). The user is not its
    own neighbour unless ``include_self``. ``similar_items`` ranks items by the cosine of their
    training columns (the model keeps no item-item matrix). ``verbose``: a progress bar over the
    neighbour search.

    Paper: Herlocker, Konstan, Borchers & Riedl, "An algorithmic framework for performing
    collaborative filtering", SIGIR 1999.
    """

    registry_name: ClassVar[str] = "userknn"

    def __init__(self, similarity: str = "cosine", k: int = 50, shrinkage: float = 0.0, binarize: bool = False,
                 include_self: bool = False, bm25_k1: float = 1.2, bm25_b: float = 0.75,
                 asymmetric_alpha: float = 0.5, num_threads: int | None = None, verbose: bool = False):
        super().__init__(similarity, k, shrinkage, binarize, include_self, bm25_k1, bm25_b, asymmetric_alpha,
                         num_threads, verbose)

    def fit(self, data: Any) -> "UserKNN":
        """Fit on an :class:`Interactions` (or DataFrame / sparse matrix)."""
        self._check_params()
        train = as_interactions(data)
        if train.nnz == 0:
            raise DataError("UserKNN.fit: the training data has no interactions")
        X = _values(self, train)
        W, finish, stats = _weights(self, X)
        self.neighbours_ = similarity_matrix(W, finish, min(int(self.k), train.n_users), shrinkage=self.shrinkage,
                                             include_self=self.include_self, num_threads=self.num_threads,
                                             verbose=self.verbose, desc="UserKNN similarities")
        self._set_interactions(train.users, train.items, train.matrix)
        self._X = X.astype(np.float64)  # S of the sparse scoring kernel (float64, like every S)
        self._W = W
        self._pb = np.asarray(finish["pb"], dtype=np.float64)
        self._sb = np.asarray(finish["sb"], dtype=np.float64)
        self._stats = stats
        self.fitted_ = True
        return self

    def _query(self, user_idx: np.ndarray) -> sp.csr_matrix:
        return self.neighbours_[user_idx]

    def _score_matrix(self) -> sp.csr_matrix:
        return self._X

    def _history_query(self, indptr: np.ndarray, indices: np.ndarray) -> sp.csr_matrix:
        """Each history's k nearest training users (fold-in)."""
        n = len(indptr) - 1
        H = sp.csr_matrix((np.ones(len(indices), np.float32), indices, indptr), shape=(n, len(self.items_)))
        Wh, fin, _ = _weights(self, H, self._stats)
        A = (Wh @ self._W.T).tocsr()  # co-occurrence products with every training user
        A.sort_indices()
        r = np.repeat(np.arange(n), np.diff(A.indptr))
        v = A.indices
        a = A.data
        h = float(self.shrinkage)
        if fin["mode"] == K.MODE_JACCARD:
            s = a / (fin["pa"][r] + self._pb[v] - a + h)
        else:
            s = a * fin["pa"][r] * self._pb[v]
            if h > 0:
                s = s / (1.0 + h * fin["sa"][r] * self._sb[v])
        kk = min(int(self.k), len(self.users_))
        cols, vals, ptr = [], [], [0]
        for t in range(n):  # each row's k best (higher similarity, then lower user index)
            lo, hi = A.indptr[t], A.indptr[t + 1]
            vt, st = v[lo:hi], s[lo:hi]
            if len(st) > kk:
                o = np.lexsort((vt, -st))[:kk]
                vt, st = vt[o], st[o]
            cols.append(vt)
            vals.append(st)
            ptr.append(ptr[-1] + len(st))
        Q = sp.csr_matrix((np.concatenate(vals) if vals else np.empty(0), np.concatenate(cols) if cols else np.empty(0, np.int64),
                           np.asarray(ptr)), shape=(n, len(self.users_)))
        Q.sort_indices()
        return Q

    def _similar_scores(self, i: int) -> np.ndarray:
        X = self._X.tocsc()
        col = X[:, i]
        dots = np.asarray((X.T @ col).toarray()).ravel()
        norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=0)).ravel())
        with np.errstate(divide="ignore", invalid="ignore"):
            s = dots / (norms * norms[i])
        return np.where(np.isfinite(s), s, 0.0)

    def _get_arrays(self) -> dict[str, np.ndarray]:
        out = {**super()._get_arrays(), "X_data": self._X.data.astype(np.float32), "W_data": self._W.data,
               **csr_arrays("nb", self.neighbours_), "pb": self._pb, "sb": self._sb}
        out.update({f"stat_{k}": np.asarray(v) for k, v in self._stats.items()})
        return out

    #: training statistics the fold-in needs, per similarity (saved as ``stat_<name>``; shape () or (n_items,))
    _STATS: ClassVar[dict[str, tuple[str, ...]]] = {"tfidf": ("idf",), "bm25": ("idf", "avg_length"),
                                                    "adjusted_cosine": ("feature_mean",)}

    @classmethod
    def _array_specs(cls, params: dict[str, Any], extra: dict[str, Any], shapes: Any) -> dict[str, ArraySpec]:
        stats = {f"stat_{k}": floats() if k == "avg_length" else floats("n_items")
                 for k in cls._STATS.get(params["similarity"], ())}
        return {**super()._array_specs(params, extra, shapes), "X_data": floats("nnz_seen"),
                "W_data": floats("nnz_seen"), **csr("nb", "n_users", "n_users"),
                "pb": floats("n_users"), "sb": floats("n_users"), **stats}

    @classmethod
    def _check_saved(cls, path: Any, arrays: dict[str, np.ndarray], extra: dict[str, Any],
                     params: dict[str, Any], sizes: dict[str, int]) -> None:
        if "stat_avg_length" in arrays and not arrays["stat_avg_length"] > 0:
            raise FormatError(f"{path}: array 'stat_avg_length' must be > 0 (BM25's average row length), "
                              f"got {float(arrays['stat_avg_length'])!r}")

    def _set_arrays(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        super()._set_arrays(arrays, extra)
        self._X = _csr_from(self, np.asarray(arrays["X_data"], dtype=np.float64))
        self._W = _csr_from(self, np.asarray(arrays["W_data"], dtype=np.float64))
        self.neighbours_ = load_csr(arrays, "nb", len(self.users_), len(self.users_))
        self._pb = np.asarray(arrays["pb"], dtype=np.float64)
        self._sb = np.asarray(arrays["sb"], dtype=np.float64)
        self._stats = {k[5:]: np.asarray(v, dtype=np.float64) for k, v in arrays.items() if k.startswith("stat_")}


__all__ = ["ItemKNN", "UserKNN"]
