"""PureSVD (Cremonesi, Koren & Turrin, "Performance of Recommender Algorithms on Top-N
Recommendation Tasks", RecSys 2010)."""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Literal

import numpy as np
import scipy.sparse as sp

from ..._progress import progress
from ...array_specs import ArraySpec, floats
from ..._threads import num_threads
from ...data.interactions import as_interactions
from ...exceptions import DataError
from ..base import Recommender


def randomized_svd(A: sp.spmatrix | np.ndarray, k: int, oversamples: int = 10, n_iter: int = 7,
                   rng: np.random.Generator | None = None,
                   on_step: Callable[[], Any] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Truncated SVD A ≈ U diag(s) Vᵀ by the randomised range finder with ``n_iter`` power
    iterations (QR-normalised) — Halko, Martinsson & Tropp (SIAM Review 2011), Alg. 4.4 + 5.1.
    ``on_step`` is called after the range finder and after each power iteration."""
    rng = rng or np.random.default_rng()
    m, n = A.shape
    ell = min(k + oversamples, min(m, n))
    Q = A @ rng.standard_normal((n, ell))
    Q, _ = np.linalg.qr(Q)
    if on_step is not None:
        on_step()
    for _ in range(n_iter):
        Z, _ = np.linalg.qr(A.T @ Q)
        Q, _ = np.linalg.qr(A @ Z)
        if on_step is not None:
            on_step()
    Bm = np.asarray((A.T @ Q).T)  # ell × n  = Qᵀ A
    Ub, s, Vt = np.linalg.svd(Bm, full_matrices=False)
    U = Q @ Ub
    return U[:, :k], s[:k], Vt[:k]


class PureSVD(Recommender):
    r"""Truncated SVD of the user × item matrix with missing entries as zeros.

        R ≈ U Σ Vᵀ (rank k),   ŝᵤ = rᵤ V Vᵀ = uᵤ Σ Vᵀ

    (Cremonesi, Koren & Turrin 2010). The factor matrices are exposed as ``user_factors_`` = UΣ
    (n_users × k), ``item_factors_`` = V (n_items × k) and ``singular_values_`` = diag(Σ); scores
    are ``user_factors_ @ item_factors_.T``. ``algorithm="randomized"`` (default) uses a seeded
    randomised range finder with power iterations (Halko et al. 2011); ``"arpack"`` uses
    ``scipy.sparse.linalg.svds``. ``binarize=True`` factors the 0/1 interaction indicator instead of
    the values (ratings).

    Parameters
    ----------
    factors : rank k of the truncated SVD.
    binarize : factor the 0/1 interaction indicator instead of the interaction values.
    algorithm : ``"randomized"`` (seeded range finder, Halko et al. 2011) or ``"arpack"`` (``scipy.sparse.linalg.svds``).
    n_iter : power iterations of the randomized range finder (not training epochs; as in scikit-learn).
    oversamples : extra columns of the randomized range finder (k + oversamples in all).
    random_state : seed of the random start.
    num_threads : BLAS threads (None: ``TASTEBUD_NUM_THREADS``, else all cores).
    verbose : progress bar over the power iterations (None: on a terminal only).
    """

    registry_name: ClassVar[str] = "puresvd"
    demo_params: ClassVar[dict[str, Any]] = {"factors": 32}

    def __init__(self, factors: int = 50, binarize: bool = False, algorithm: Literal["randomized", "arpack"] = "randomized",
                 n_iter: int = 7, oversamples: int = 10, random_state: int | None = None, num_threads: int | None = None,
                 verbose: bool | None = None):
        self.factors = factors
        self.binarize = binarize
        self.algorithm = algorithm
        self.n_iter = n_iter
        self.oversamples = oversamples
        self.random_state = random_state
        self.num_threads = num_threads
        self.verbose = verbose

    def fit(self, data: Any) -> "PureSVD":
        """Fit on an :class:`Interactions` (or DataFrame / sparse matrix)."""
        train = as_interactions(data)
        if train.nnz == 0:
            raise DataError("PureSVD.fit: the training data has no interactions")
        k = self.factors
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"factors must be a positive integer, got {k!r}")
        if k >= min(train.shape):
            raise ValueError(f"factors={k} must be smaller than min(n_users, n_items)={min(train.shape)}")
        if self.algorithm not in ("randomized", "arpack"):
            raise ValueError(f"algorithm must be 'randomized' or 'arpack', got {self.algorithm!r}")
        if not isinstance(self.n_iter, (int, np.integer)) or self.n_iter < 0:
            raise ValueError(f"n_iter must be a non-negative integer, got {self.n_iter!r}")
        R = train.matrix.astype(np.float64)
        if self.binarize:
            R.data[:] = 1.0
        self._set_interactions(train.users, train.items, train.matrix)
        rng = np.random.default_rng(self.random_state)
        from threadpoolctl import threadpool_limits

        steps = int(self.n_iter) + 1 if self.algorithm == "randomized" else 1
        with threadpool_limits(limits=num_threads(self.num_threads), user_api="blas"), \
                progress(total=steps, verbose=self.verbose, desc="PureSVD", unit="step") as bar:
            if self.algorithm == "randomized":
                U, s, Vt = randomized_svd(R, int(k), int(self.oversamples), int(self.n_iter), rng, on_step=bar.update)
            else:
                from scipy.sparse.linalg import svds

                v0 = rng.uniform(-1, 1, min(R.shape))
                U, s, Vt = svds(R, k=int(k), v0=v0)
                order = np.argsort(-s)
                U, s, Vt = U[:, order], s[order], Vt[order]
                bar.update()
        # sign convention: the largest-magnitude entry of each right singular vector is positive
        flip = np.sign(Vt[np.arange(len(s)), np.abs(Vt).argmax(axis=1)])
        flip[flip == 0] = 1.0
        U, Vt = U * flip, Vt * flip[:, None]
        self.singular_values_ = s
        self.user_factors_ = (U * s).astype(np.float32)
        self.item_factors_ = np.ascontiguousarray(Vt.T).astype(np.float32)
        self.fitted_ = True
        return self

    def _scores(self, user_idx: np.ndarray) -> np.ndarray:
        return (self.user_factors_[user_idx] @ self.item_factors_.T).astype(np.float32, copy=False)

    def item_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.item_factors_ * self.singular_values_[None, :].astype(np.float32)

    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {**super()._get_arrays(), "user_factors": self.user_factors_, "item_factors": self.item_factors_,
                "singular_values": self.singular_values_}

    @classmethod
    def _array_specs(cls, params: dict[str, Any], extra: dict[str, Any], shapes: Any) -> dict[str, ArraySpec]:
        return {**super()._array_specs(params, extra, shapes), "user_factors": floats("n_users", "factors"),
                "item_factors": floats("n_items", "factors"), "singular_values": floats("factors")}

    def _set_arrays(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        super()._set_arrays(arrays, extra)
        self.user_factors_ = arrays["user_factors"]
        self.item_factors_ = arrays["item_factors"]
        self.singular_values_ = arrays["singular_values"]


__all__ = ["PureSVD", "randomized_svd"]
