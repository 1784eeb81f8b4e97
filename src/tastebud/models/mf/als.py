"""Explicit alternating least squares with weighted-λ regularisation (Zhou et al. 2008)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..._threads import num_threads, numba_threads, single_threaded_blas
from ...kernels import als_explicit as K
from .matrix_factorization import _check_float, _check_positive_int, _ExplicitFactorModel

_CHUNKS = 64  # static row partition (results do not depend on it, nor on the thread count)


class ALS(_ExplicitFactorModel):
    """Matrix factorization of explicit ratings by alternating least squares, ALS-WR.

    Model (Zhou, Wilkinson, Schreiber & Pan, "Large-scale parallel collaborative filtering for
    the Netflix prize", AAIM 2008)::

        r̂ᵤᵢ = pᵤᵀ qᵢ                         (``biased=True``: μ + bᵤ + bᵢ + pᵤᵀ qᵢ)

    minimising Σ₍ᵤ,ᵢ₎∈R (rᵤᵢ − r̂ᵤᵢ)² + λ (Σᵤ nᵤ ‖pᵤ‖² + Σᵢ nᵢ ‖qᵢ‖²), where nᵤ, nᵢ are the
    numbers of ratings of user u / item i ("weighted-λ"; the biases, when present, are regularised
    with the same weights). Each half-step fixes one side and solves every row in closed form,
    pᵤ = (Q_uᵀ Q_u + λ nᵤ I)⁻¹ Q_uᵀ r_u — with biases, the unknown is [pᵤ; bᵤ] against [qᵢ; 1] and the
    target rᵤᵢ − μ − bᵢ. Users (then items) are solved in parallel, independently, so results do
    not depend on the thread count.

    Defaults: 20 factors, 10 epochs, λ = 0.2, with biases — chosen on a validation split of
    ml-latest-small's training ratings (``benchmarks/defaults.py tune-als``: the cheapest setting
    within 0.001 of the best validation RMSE); Spark MLlib's ALS, which implements this method,
    has 10 factors, 10 iterations, λ = 0.1 and no biases (``ALS(factors=10, reg=0.1,
    biased=False)``), which lost to the bias-only baseline there (benchmarks/results/defaults.md).
    Item factors start from N(0, ``init_std``²), by default ``init_std`` = 1/√k so that rows have
    unit expected norm (Spark normalises its random rows to unit norm); each epoch solves users,
    then items. Unseen users/items: μ plus the known bias (without biases, μ). ``fit(data, valid=...)``
    records validation RMSE per epoch and supports early stopping (``patience``).

    Parameters
    ----------
    factors : latent dimension k.
    epochs : ALS sweeps (each solves all users, then all items).
    reg : weighted-λ L2 weight λ (each row's penalty is λ times its number of ratings).
    biased : learn μ, bᵤ, bᵢ as well (Spark's ALS has none; False gives r̂ᵤᵢ = pᵤᵀ qᵢ).
    init_std : standard deviation of the initial item factors (None: 1/√k, rows of unit expected norm).
    patience : with ``fit(..., valid=...)``, stop after this many epochs without a better
        validation RMSE and restore the best epoch (None: train all ``epochs``).
    clip : clip predictions to the training rating range.
    random_state : seed of the initial item factors.
    num_threads : numba threads (None: ``TASTEBUD_NUM_THREADS``, else all cores); results do not depend on it.
    verbose : progress bar over epochs (None: on a terminal only).
    """

    registry_name = "als"
    demo_params = {"factors": 10, "epochs": 10}
    renamed_params = {"n_factors": "factors", "n_epochs": "epochs", "early_stopping_rounds": "patience"}
    lr_schedule = "constant"  # not a parameter: ALS has no learning rate
    lr_decay = 1.0
    lr = None

    def __init__(
        self,
        factors: int = 20,
        epochs: int = 10,
        reg: float = 0.2,
        biased: bool = True,
        init_std: float | None = None,
        patience: int | None = None,
        clip: bool = True,
        random_state: int | None = None,
        num_threads: int | None = None,
        verbose: bool | None = None,
    ):
        self.factors = factors
        self.epochs = epochs
        self.reg = reg
        self.biased = biased
        self.init_std = init_std
        self.patience = patience
        self.clip = clip
        self.random_state = random_state
        self.num_threads = num_threads
        self.verbose = verbose

    dtype = "float64"

    def fit(self, data: Any, valid: Any = None) -> "ALS":
        """Fit on explicit ratings (``Interactions``, DataFrame or sparse matrix)."""
        k = _check_positive_int("factors", self.factors)
        n_epochs = _check_positive_int("epochs", self.epochs)
        reg = _check_float("reg", self.reg, strict=True)
        init_std = 1.0 / np.sqrt(k) if self.init_std is None else _check_float("init_std", self.init_std)
        if self.patience is not None:
            _check_positive_int("patience", self.patience)
        train = self._prepare(data)
        self._init_state(train)
        nu, ni = train.shape
        rng = np.random.default_rng(self.random_state)
        self.user_factors_ = np.zeros((nu, k))
        self.item_factors_ = rng.normal(0.0, init_std, (ni, k))
        self.user_bias_ = np.zeros(nu)
        self.item_bias_ = np.zeros(ni)
        vr = self._valid_arrays(valid)

        R = train.matrix
        Rt = R.T.tocsr()
        Rt.sort_indices()
        ru = (R.indptr.astype(np.int64), R.indices.astype(np.int64), R.data.astype(np.float64))
        ri = (Rt.indptr.astype(np.int64), Rt.indices.astype(np.int64), Rt.data.astype(np.float64))
        mu = self.global_mean_ if self.biased else 0.0
        biased = bool(self.biased)
        P, Q, bu, bi = self.user_factors_, self.item_factors_, self.user_bias_, self.item_bias_
        threads = num_threads(self.num_threads)

        def epoch_fn(epoch: int, mult: float) -> float:
            with numba_threads(threads), single_threaded_blas():
                K.als_half_step(*ru, Q, bi, mu, reg, biased, P, bu, _CHUNKS)
                K.als_half_step(*ri, P, bu, mu, reg, biased, Q, bi, _CHUNKS)
                return float(K.sse_ratings(*ru, P, Q, bu, bi, mu, biased, _CHUNKS))

        self.fitted_ = True
        try:
            self._train_loop(n_epochs, epoch_fn, R.nnz, vr, lambda: {"P": P, "Q": Q, "bu": bu, "bi": bi})
        except BaseException:
            self.fitted_ = False
            raise
        self._zero_untrained()
        return self
