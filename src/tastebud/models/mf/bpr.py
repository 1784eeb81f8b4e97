"""Bayesian personalised ranking with matrix factorization (Rendle et al., UAI 2009)."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np

from ..._progress import progress
from ...array_specs import ArraySpec, floats
from ..._threads import numba_threads
from ...data.interactions import as_interactions
from ...exceptions import DataError
from ...kernels import bpr as K
from ..base import Recommender

logger = logging.getLogger("tastebud")


class BPR(Recommender):
    r"""BPR-MF: pairwise ranking of positives above uniformly sampled negatives.

    Score ŝᵤᵢ = pᵤ·qᵢ + bᵢ. For triples (u, i, j) with i a positive of u and j an item u did not
    interact with (drawn uniformly), maximise ln σ(ŝᵤᵢ − ŝᵤⱼ) − ½λ(‖pᵤ‖² + ‖qᵢ‖² + ‖qⱼ‖² + bᵢ² + bⱼ²)
    by stochastic gradient ascent (Rendle, Freudenthaler, Gantner & Schmidt-Thieme, "BPR: Bayesian
    Personalized Ranking from Implicit Feedback", UAI 2009). Each epoch draws as many triples as
    there are interactions; positives are drawn uniformly over interactions (as implicit does),
    negatives uniformly over items, redrawn while they hit a positive of u
    (``verify_negative_samples``).

    Training is lock-free parallel SGD (Hogwild) over blocks of samples; each block has its own
    seeded random stream, so the samples drawn never depend on the thread count and
    ``num_threads=1`` is exactly reproducible. Interaction values are ignored (any stored entry
    is a positive).

    Defaults follow implicit's ``BayesianPersonalizedRanking`` (factors=100, learning_rate=0.01,
    regularization=0.01, iterations=100; here ``lr``, ``reg``, ``epochs``).

    Parameters
    ----------
    factors : latent dimension k.
    lr : SGD learning rate.
    reg : L2 weight λ of the factors and item biases.
    epochs : passes, each drawing as many (u, i, j) triples as there are interactions.
    verify_negative_samples : redraw a negative that is a positive of the user.
    random_state : seed of the initial factors and of the sampling (per-block streams).
    num_threads : numba threads (None: ``TASTEBUD_NUM_THREADS``, else all cores); 1 is exactly reproducible.
    verbose : progress bar over epochs (None: on a terminal only).
    """

    registry_name: ClassVar[str] = "bpr"
    demo_params: ClassVar[dict[str, Any]] = {"factors": 32, "epochs": 30, "lr": 0.05}
    renamed_params: ClassVar[dict[str, str]] = {"learning_rate": "lr", "regularization": "reg", "iterations": "epochs"}

    def __init__(
        self,
        factors: int = 100,
        lr: float = 0.01,
        reg: float = 0.01,
        epochs: int = 100,
        verify_negative_samples: bool = True,
        random_state: int | None = None,
        num_threads: int | None = None,
        verbose: bool | None = None,
    ):
        self.factors = factors
        self.lr = lr
        self.reg = reg
        self.epochs = epochs
        self.verify_negative_samples = verify_negative_samples
        self.random_state = random_state
        self.num_threads = num_threads
        self.verbose = verbose

    def _check_params(self) -> None:
        if not isinstance(self.factors, (int, np.integer)) or self.factors < 1:
            raise ValueError(f"factors must be a positive integer, got {self.factors!r}")
        if not np.isfinite(self.lr) or self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if not np.isfinite(self.reg) or self.reg < 0:
            raise ValueError(f"reg must be >= 0, got {self.reg!r}")
        if not isinstance(self.epochs, (int, np.integer)) or self.epochs < 0:
            raise ValueError(f"epochs must be a non-negative integer, got {self.epochs!r}")

    def fit(self, data: Any) -> "BPR":
        """Fit on an :class:`Interactions` (or DataFrame / sparse matrix); every stored entry is a positive."""
        self._check_params()
        train = as_interactions(data)
        if train.nnz == 0:
            raise DataError("BPR.fit: the training data has no interactions")
        if train.n_items < 2:
            raise DataError("BPR.fit: needs at least 2 items to sample negatives")
        self._set_interactions(train.users, train.items, train.matrix)
        S = self.seen_
        indptr = S.indptr.astype(np.int64)
        indices = S.indices.astype(np.int32)
        rows = np.repeat(np.arange(S.shape[0], dtype=np.int32), np.diff(indptr))
        seed = int(np.random.SeedSequence(self.random_state).generate_state(1, np.uint64)[0])
        rng = np.random.default_rng(seed)
        k = int(self.factors)
        P = ((rng.random((S.shape[0], k)) - 0.5) / k).astype(np.float32)
        Q = ((rng.random((S.shape[1], k)) - 0.5) / k).astype(np.float32)
        b = np.zeros(S.shape[1], dtype=np.float32)
        n_blocks = int(max(1, min(256, S.nnz // 256)))
        self.train_accuracy_ = float("nan")
        with numba_threads(self.num_threads), progress(range(int(self.epochs)), verbose=self.verbose,
                                                       desc="BPR", unit="epoch") as it:
            for epoch in it:
                correct, skipped = K.bpr_epoch(indptr, indices, rows, P, Q, b, float(self.lr),
                                               float(self.reg), np.uint64(seed), epoch, n_blocks,
                                               bool(self.verify_negative_samples))
                used = S.nnz - skipped
                self.train_accuracy_ = correct / used if used else float("nan")
                if not it.disable:
                    it.set_postfix(correct=f"{self.train_accuracy_:.3f}")
        if not np.isfinite(P).all() or not np.isfinite(Q).all():
            raise FloatingPointError("BPR diverged (non-finite factors); lower lr")
        self.user_factors_ = P
        self.item_factors_ = Q
        self.item_bias_ = b
        self.fitted_ = True
        return self

    def _scores(self, user_idx: np.ndarray) -> np.ndarray:
        return (self.user_factors_[user_idx] @ self.item_factors_.T + self.item_bias_[None, :]).astype(np.float32, copy=False)

    def item_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.item_factors_

    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {**super()._get_arrays(), "user_factors": self.user_factors_, "item_factors": self.item_factors_,
                "item_bias": self.item_bias_}

    @classmethod
    def _array_specs(cls, params: dict[str, Any], extra: dict[str, Any], shapes: Any) -> dict[str, ArraySpec]:
        return {**super()._array_specs(params, extra, shapes), "user_factors": floats("n_users", "factors"),
                "item_factors": floats("n_items", "factors"), "item_bias": floats("n_items")}

    def _set_arrays(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        super()._set_arrays(arrays, extra)
        self.user_factors_ = arrays["user_factors"]
        self.item_factors_ = arrays["item_factors"]
        self.item_bias_ = arrays["item_bias"]


__all__ = ["BPR"]
