"""Implicit-feedback ALS (Hu, Koren & Volinsky, "Collaborative Filtering for Implicit Feedback
Datasets", ICDM 2008), with the conjugate-gradient solver of Takács, Pilászy & Tikk
("Applications of the conjugate gradient method for implicit feedback collaborative filtering",
RecSys 2011)."""

from __future__ import annotations

import logging
import warnings
from typing import Any, ClassVar, Literal, Sequence

import numpy as np
import scipy.sparse as sp

from ..._progress import progress
from ...array_specs import ArraySpec, floats
from ..._threads import numba_threads, single_threaded_blas
from ...data.interactions import as_interactions
from ...exceptions import DataError
from ...kernels import als_implicit as K
from ..base import Recommender, topk_rows

logger = logging.getLogger("tastebud")


def _confidence_matrix(m: sp.csr_matrix, alpha: float, dtype: Any) -> sp.csr_matrix:
    """CSR of confidences c = 1 + α·r for the entries with r > 0 (preference p = 1); r = 0 entries
    are dropped (p = 0, c = 1 — the same as unobserved); negative values are refused."""
    m = sp.csr_matrix(m)
    if m.nnz and not np.isfinite(m.data).all():
        raise DataError("interaction values contain NaN or infinity")
    if m.nnz and (m.data < 0).any():
        raise DataError(
            f"ImplicitALS needs non-negative interaction values (counts/weights); got {float(m.data.min())!r}"
        )
    c = m.astype(dtype, copy=True)
    c.data = (1.0 + alpha * c.data).astype(dtype)
    c.data[m.data == 0] = 0.0
    c.eliminate_zeros()
    c.sort_indices()
    c.indptr = c.indptr.astype(np.int64)
    c.indices = c.indices.astype(np.int32)
    return c


class ImplicitALS(Recommender):
    r"""Implicit-feedback matrix factorization by alternating least squares.

    For interaction values rᵤᵢ ≥ 0 (counts, ratings, watch time), preferences and confidences are

        pᵤᵢ = 1 if rᵤᵢ > 0 else 0,      cᵤᵢ = 1 + α·rᵤᵢ   (cᵤᵢ = 1 for unobserved pairs)

    and the model minimises, over **all** user–item pairs,

        Σᵤᵢ cᵤᵢ (pᵤᵢ − xᵤᵀyᵢ)² + λ (Σᵤ ‖xᵤ‖² + Σᵢ ‖yᵢ‖²)

    by alternating exact or approximate solves of each half:

        xᵤ = (YᵀY + λI + Yᵀ(Cᵤ − I)Y)⁻¹ YᵀCᵤ p(u)

    YᵀY is computed once per half-step, so the cost is O(nnz·k²) (``solver="cholesky"``, exact)
    or O(cg_steps·(nnz·k + n·k²)) (``solver="cg"``, conjugate gradient warm-started from the
    previous factors, Takács et al. 2011). Score: ŝᵤᵢ = xᵤᵀyᵢ.

    **Confidence convention.** This class uses the paper's cᵤᵢ = 1 + α·rᵤᵢ (as rusket does). The
    ``implicit`` library weights a positive by α·rᵤᵢ instead (its Cᵤ − I term is α·r − 1), so for
    the same data ``ImplicitALS(alpha=a)`` corresponds to implicit's ``alpha`` giving
    α_implicit·r = 1 + a·r; with binary data, implicit's α equals ours + 1. Defaults follow implicit
    (factors=100, regularization=0.01, iterations=15, cg_steps=3; here ``reg`` and ``epochs``);
    ``alpha=1.0`` here means positive
    confidence 2 on binary data (implicit's alpha=1.0 on binary data makes positives and negatives
    equally weighted).

    Parameters
    ----------
    factors : latent dimension k.
    reg : L2 weight λ.
    alpha : confidence scale α in c = 1 + α·r.
    epochs : number of (user half, item half) sweeps.
    solver : ``"cg"`` (default, fast) or ``"cholesky"`` (exact).
    cg_steps : CG iterations per row and half-step (``solver="cg"``).
    dtype : factor precision, ``"float32"`` (default) or ``"float64"``.
    random_state : seed of the initial factors (uniform in [0, 0.01), as implicit).
    num_threads : numba threads (None → ``TASTEBUD_NUM_THREADS`` → all cores). Results do not
        depend on it: each row is solved independently.
    verbose : progress bar over epochs (None: on a terminal only).

    New users without a refit: :meth:`fold_in` / :meth:`recommend_for_history` solve the user half
    exactly for one interaction history (one ALS half-step).
    """

    registry_name: ClassVar[str] = "implicit-als"
    demo_params: ClassVar[dict[str, Any]] = {"factors": 32, "epochs": 10, "alpha": 1.0}
    renamed_params: ClassVar[dict[str, str]] = {"regularization": "reg", "iterations": "epochs"}

    def __init__(
        self,
        factors: int = 100,
        reg: float = 0.01,
        alpha: float = 1.0,
        epochs: int = 15,
        solver: Literal["cg", "cholesky"] = "cg",
        cg_steps: int = 3,
        dtype: str = "float32",
        random_state: int | None = None,
        num_threads: int | None = None,
        verbose: bool | None = None,
    ):
        self.factors = factors
        self.reg = reg
        self.alpha = alpha
        self.epochs = epochs
        self.solver = solver
        self.cg_steps = cg_steps
        self.dtype = dtype
        self.random_state = random_state
        self.num_threads = num_threads
        self.verbose = verbose

    # ------------------------------------------------------------------ validation
    def _check_params(self) -> np.dtype:
        if not isinstance(self.factors, (int, np.integer)) or self.factors < 1:
            raise ValueError(f"factors must be a positive integer, got {self.factors!r}")
        if not np.isfinite(self.reg) or self.reg < 0:
            raise ValueError(f"reg must be >= 0, got {self.reg!r}")
        if not np.isfinite(self.alpha) or self.alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha!r}")
        if not isinstance(self.epochs, (int, np.integer)) or self.epochs < 0:
            raise ValueError(f"epochs must be a non-negative integer, got {self.epochs!r}")
        if self.solver not in ("cg", "cholesky"):
            raise ValueError(f"solver must be 'cg' or 'cholesky', got {self.solver!r}")
        if not isinstance(self.cg_steps, (int, np.integer)) or self.cg_steps < 1:
            raise ValueError(f"cg_steps must be a positive integer, got {self.cg_steps!r}")
        if str(self.dtype) not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        return np.dtype(str(self.dtype))

    # ------------------------------------------------------------------ fitting
    def fit(self, data: Any) -> "ImplicitALS":
        """Fit on an :class:`Interactions` (or DataFrame / sparse matrix) of non-negative values."""
        dtype = self._check_params()
        train = as_interactions(data)
        if train.nnz == 0:
            raise DataError("ImplicitALS.fit: the training data has no interactions")
        Cui = _confidence_matrix(train.matrix, float(self.alpha), dtype)
        if Cui.nnz == 0:
            raise DataError("ImplicitALS.fit: every interaction value is 0 (no positive preferences)")
        self._set_interactions(train.users, train.items, Cui)
        Ciu = Cui.T.tocsr()
        Ciu.sort_indices()
        Ciu.indptr = Ciu.indptr.astype(np.int64)
        Ciu.indices = Ciu.indices.astype(np.int32)
        rng = np.random.default_rng(self.random_state)
        k = int(self.factors)
        X = rng.random((Cui.shape[0], k), dtype=dtype)  # drawn in the factors' dtype: no float64 temporaries
        X *= 0.01
        Y = rng.random((Cui.shape[1], k), dtype=dtype)
        Y *= 0.01
        with numba_threads(self.num_threads), progress(range(int(self.epochs)), verbose=self.verbose,
                                                       desc="ImplicitALS", unit="epoch") as it:
            for _ in it:
                self._half_step(Cui, X, Y)
                self._half_step(Ciu, Y, X)
        self.user_factors_ = X
        self.item_factors_ = Y
        self._gram = None
        self.fitted_ = True
        return self

    def _half_step(self, C: sp.csr_matrix, X: np.ndarray, Y: np.ndarray) -> None:
        """Solve every row of X given Y (one ALS half), in place."""
        G = K.gramian(Y, float(self.reg))
        with single_threaded_blas():
            if self.solver == "cholesky":
                bad = K.solve_cholesky(C.indptr, C.indices, C.data, X, Y, G)
                if bad:
                    warnings.warn(f"ImplicitALS: {bad} singular system(s) left unchanged; raise reg",
                                  RuntimeWarning, stacklevel=3)
            else:
                K.solve_cg(C.indptr, C.indices, C.data, X, Y, G.astype(X.dtype), int(self.cg_steps))

    def loss(self, data: Any) -> float:
        """The objective Σᵤᵢ c(p − xᵀy)² + λ(‖X‖² + ‖Y‖²) over all pairs, for interaction values ``data``
        (pass the training Interactions: the model stores only their structure, not their values)."""
        self._check_fitted()
        train = as_interactions(data)
        if train.shape != (len(self.users_), len(self.items_)):
            raise ValueError(f"data has shape {train.shape}, the model {len(self.users_)} users × {len(self.items_)} items")
        C = _confidence_matrix(train.matrix, float(self.alpha), np.float64)
        X, Y = self.user_factors_, self.item_factors_
        G = (Y.T.astype(np.float64) @ Y.astype(np.float64))
        with numba_threads(self.num_threads), single_threaded_blas():
            return float(K.implicit_loss(C.indptr, C.indices, C.data, X, Y, G, float(self.reg)))

    # ------------------------------------------------------------------ scoring
    def _scores(self, user_idx: np.ndarray) -> np.ndarray:
        return (self.user_factors_[user_idx] @ self.item_factors_.T).astype(np.float32, copy=False)

    def item_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.item_factors_

    # ------------------------------------------------------------------ fold-in (new users)
    def _history(self, items: Sequence[Any], weights: Sequence[float] | None,
                 unknown: str) -> tuple[np.ndarray, np.ndarray]:
        if unknown not in ("raise", "ignore"):
            raise ValueError(f"unknown must be 'raise' or 'ignore', got {unknown!r}")
        items = list(items) if not isinstance(items, np.ndarray) else items
        idx = self.items_.index(items, missing="raise" if unknown == "raise" else "mask")
        if weights is None:
            w = np.ones(len(idx), dtype=np.float64)
        else:
            w = np.asarray(weights, dtype=np.float64).ravel()
            if w.shape != idx.shape:
                raise ValueError(f"weights must have one value per item ({len(idx)}), got shape {w.shape}")
            if not np.isfinite(w).all() or (w < 0).any():
                raise DataError(f"weights must be finite and >= 0, got {w[~np.isfinite(w) | (w < 0)][:5].tolist()}")
        keep = idx >= 0
        idx, w = idx[keep], w[keep]
        # duplicate items: weights add up, as Interactions does with duplicates="sum"
        uniq, inv = np.unique(idx, return_inverse=True)
        ws = np.bincount(inv, weights=w, minlength=len(uniq)) if len(uniq) else np.zeros(0)
        return uniq.astype(np.int64), ws

    def fold_in(self, items: Sequence[Any], weights: Sequence[float] | None = None,
                unknown: Literal["raise", "ignore"] = "raise") -> np.ndarray:
        """Latent vector of a user known only by ``items`` (external ids, optional interaction
        values ``weights``, default 1): the exact user half-step
        x = (YᵀY + λI + Yᵀ(C − I)Y)⁻¹ YᵀC p with c = 1 + α·w — what the user's row would be after
        one more ALS user half-step (no refit). ``unknown="ignore"`` drops items not in the model."""
        self._check_fitted()
        idx, w = self._history(items, weights, unknown)
        Y = self.item_factors_
        k = Y.shape[1]
        pos = w > 0
        idx, w = idx[pos], w[pos]
        x = np.zeros(k, dtype=np.float64)
        if len(idx) == 0:
            return x.astype(Y.dtype)
        if getattr(self, "_gram", None) is None:
            self._gram = K.gramian(Y, float(self.reg))
        conf = (1.0 + float(self.alpha) * w).astype(Y.dtype)
        ok = K.solve_row_cholesky(self._gram, Y, idx, conf, x)
        if not ok:
            raise DataError("fold_in: the user system is singular; the model needs reg > 0")
        return x.astype(Y.dtype)

    def recommend_for_history(
        self,
        items: Sequence[Any],
        k: int = 10,
        weights: Sequence[float] | None = None,
        filter_seen: bool = True,
        unknown: Literal["raise", "ignore"] = "raise",
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (ids, scores) for a user given only their interacted ``items`` (external ids):
        scores x·yᵢ with x = :meth:`fold_in`; the history items are excluded when ``filter_seen``.
        A history without any known item (with a positive weight) is ranked by training popularity
        (with a warning) instead of giving every item the score 0."""
        self._check_fitted()
        idx, w = self._history(items, weights, unknown)
        k = self._check_k(k, len(self.items_))
        if (w > 0).any():
            s = (self.item_factors_ @ self.fold_in(items, weights, unknown)).astype(np.float32)
        else:
            s = self._empty_history_scores()
        if filter_seen:
            s[idx] = -np.inf
        i, sc = topk_rows(s[None, :], k)
        ids, sc = self._to_external(i, sc)
        return ids[0], sc[0]

    def explain_history(self, items: Sequence[Any], targets: Sequence[Any], weights: Sequence[float] | None = None,
                        unknown: Literal["raise", "ignore"] = "raise") -> list[dict[str, Any]]:
        """Why each of ``targets`` scores as it does for the history ``items`` (Hu et al. 2008, §5).

        The fold-in solution is linear in the history: with A = YᵀY + λI + Σⱼ (cⱼ − 1) yⱼyⱼᵀ,
        x = A⁻¹ Σⱼ cⱼ yⱼ, so the score of item i splits into one term per history item,

            ŝᵢ = xᵀyᵢ = Σⱼ cⱼ · yᵢᵀ A⁻¹ yⱼ,

        which add up to the :meth:`recommend_for_history` score exactly. Returns one dict per target:
        ``{"item", "score", "contributions": [{"item", "value"}, ...]}`` (largest value first)."""
        self._check_fitted()
        idx, w = self._history(items, weights, unknown)
        pos = w > 0
        idx, w = idx[pos], w[pos]
        t = self.items_.index(list(targets))
        Y = self.item_factors_.astype(np.float64)
        if getattr(self, "_gram", None) is None:
            self._gram = K.gramian(self.item_factors_, float(self.reg))
        conf = 1.0 + float(self.alpha) * w
        Yh = Y[idx]
        A = self._gram + (Yh.T * (conf - 1.0)) @ Yh
        W = np.linalg.solve(A, Yh.T) * conf  # (k, n_hist): column j is cⱼ A⁻¹ yⱼ
        C = Y[t] @ W  # (n_targets, n_hist)
        hist, tids = self.items_.ids[idx].tolist(), self.items_.ids[t].tolist()
        out = []
        for row, ti in enumerate(tids):
            o = np.argsort(-C[row], kind="stable")
            out.append({"item": ti, "score": float(C[row].sum()),
                        "contributions": [{"item": hist[j], "value": float(C[row, j])} for j in o]})
        return out

    # ------------------------------------------------------------------ persistence
    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {**super()._get_arrays(), "user_factors": self.user_factors_, "item_factors": self.item_factors_}

    @classmethod
    def _array_specs(cls, params: dict[str, Any], extra: dict[str, Any], shapes: Any) -> dict[str, ArraySpec]:
        return {**super()._array_specs(params, extra, shapes),
                "user_factors": floats("n_users", "factors"), "item_factors": floats("n_items", "factors")}

    def _set_arrays(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        super()._set_arrays(arrays, extra)
        self.user_factors_ = np.ascontiguousarray(arrays["user_factors"])
        self.item_factors_ = np.ascontiguousarray(arrays["item_factors"])
        self._gram = None


__all__ = ["ImplicitALS"]
