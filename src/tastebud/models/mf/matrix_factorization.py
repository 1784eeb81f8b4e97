"""Biased matrix factorization trained by SGD (Funk 2006; Koren, Bell & Volinsky 2009).

Also holds ``_ExplicitFactorModel``, the shared machinery of the explicit-rating factor models
(``MatrixFactorization``, :class:`~tastebud.models.mf.svdpp.SVDpp`, :class:`~tastebud.models.mf.als.ALS`):
input validation, learning-rate schedules, early stopping, prediction with the μ + known-bias
fallback, clipping, ``recommend`` scores and save/load.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any, Callable

import numpy as np

from ..._progress import progress
from ...array_specs import ArraySpec, floats
from ..._threads import num_threads, numba_thread_count, numba_threads
from ...data.interactions import Interactions, as_interactions
from ...exceptions import DataError
from ...kernels import sgd as K
from ..base import RatingPredictor

logger = logging.getLogger("tastebud")

LR_SCHEDULES = ("constant", "exponential", "inverse", "bold-driver")


def _check_positive_int(name: str, v: Any, minimum: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {v!r}")
    return int(v)


def _check_float(name: str, v: Any, minimum: float = 0.0, strict: bool = False) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {v!r}") from None
    if not math.isfinite(f) or f < minimum or (strict and f == minimum):
        op = ">" if strict else ">="
        raise ValueError(f"{name} must be a finite number {op} {minimum}, got {v!r}")
    return f


def _init_factors(rng: np.random.Generator, n: int, k: int, mean: float, std: float, dtype: np.dtype) -> np.ndarray:
    """N(mean, std²) factors drawn directly in ``dtype``."""
    out = rng.standard_normal((n, k), dtype=dtype)
    out *= dtype.type(std)
    out += dtype.type(mean)
    return out


def _rmse(y: np.ndarray, yhat: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(y, np.float64) - yhat) ** 2))) if len(y) else float("nan")


class _ExplicitFactorModel(RatingPredictor):
    """Shared base: r̂ᵤᵢ = μ + bᵤ + bᵢ + qᵢᵀ·vᵤ, with vᵤ = pᵤ (MF, ALS) or pᵤ + zᵤ (SVD++).

    Learned state: ``global_mean_`` μ, ``user_bias_``, ``item_bias_``, ``user_factors_`` P,
    ``item_factors_`` Q, ``rating_min_``/``rating_max_`` (the training range, used by ``clip``),
    ``history_`` (per-epoch ``train_rmse`` and, with a validation set, ``valid_rmse``).
    """

    biased: bool = True
    clip: bool = True
    dtype: str = "float32"

    # ------------------------------------------------------------------ input
    def _prepare(self, data: Any) -> Interactions:
        name = type(self).__name__
        train = as_interactions(data)
        if train.nnz == 0:
            raise DataError(f"{name}.fit: the training data has no ratings (empty matrix)")
        if not np.isfinite(train.matrix.data).all():  # Interactions already refuses NaN; be explicit
            raise DataError(f"{name}.fit: ratings contain NaN or infinity")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        return train

    def _valid_arrays(self, valid: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Validation set → (user idx, item idx, rating) against the training maps (-1 = unseen)."""
        if valid is None:
            return None
        if isinstance(valid, Interactions):
            u, i, r, _ = valid.coo()
            uext, iext = valid.users.ids[u], valid.items.ids[i]
        else:
            vi = as_interactions(valid)
            u, i, r, _ = vi.coo()
            uext, iext = vi.users.ids[u], vi.items.ids[i]
        if len(r) == 0:
            raise DataError(f"{type(self).__name__}.fit: the validation set is empty")
        uu = self.users_.index(uext, missing="mask")
        ii = self.items_.index(iext, missing="mask")
        uu = np.where((uu >= 0) & (self.user_counts_[np.maximum(uu, 0)] > 0), uu, -1)
        ii = np.where((ii >= 0) & (self.item_counts_[np.maximum(ii, 0)] > 0), ii, -1)
        return uu.astype(np.int64), ii.astype(np.int64), np.asarray(r, np.float64)

    def _init_state(self, train: Interactions) -> None:
        R = train.matrix
        self._set_interactions(train.users, train.items, R)
        self.global_mean_ = float(R.data.astype(np.float64).mean())
        self.rating_min_ = float(R.data.min())
        self.rating_max_ = float(R.data.max())

    def _lr_at(self, epoch: int, lr: float, state: dict) -> float:
        """Learning-rate multiplier schedule (applied to every learning rate)."""
        sched = self.lr_schedule
        if sched == "constant":
            return lr
        if sched == "exponential":
            return lr * self.lr_decay ** epoch
        if sched == "inverse":
            return lr / (1.0 + self.lr_decay * epoch)
        # bold driver (Battiti 1989; Gemulla et al. 2011): grow 5% after an epoch that lowered the
        # training loss, halve after one that raised it
        return lr * state.get("bold", 1.0)

    def _check_schedule(self) -> None:
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        _check_float("lr_decay", self.lr_decay)
        if self.patience is not None:
            _check_positive_int("patience", self.patience)

    def _train_loop(self, n_epochs: int, epoch_fn: Callable[[int, float], float], nnz: int,
                    valid: tuple | None, state_arrays: Callable[[], dict]) -> None:
        """Run ``epoch_fn(epoch, lr_multiplier) -> SSE`` with schedule, history and early stopping."""
        if valid is None and self.patience is not None:
            warnings.warn(f"{type(self).__name__}: patience={self.patience} has no effect "
                          "without fit(..., valid=...)", stacklevel=3)
        hist: dict[str, list[float]] = {"train_rmse": []}
        if valid is not None:
            hist["valid_rmse"] = []
        sched: dict[str, float] = {}
        best, best_epoch, best_state, bad = np.inf, -1, None, 0
        bar = progress(range(n_epochs), verbose=self.verbose, desc=type(self).__name__, unit="epoch")
        for epoch in bar:
            mult = self._lr_at(epoch, 1.0, sched)
            sse = epoch_fn(epoch, mult)
            tr = math.sqrt(sse / nnz)
            if not math.isfinite(tr):
                raise FloatingPointError(f"{type(self).__name__}: training diverged at epoch {epoch} (RMSE {tr}); "
                                         + self._divergence_hint(mult))
            if self.lr_schedule == "bold-driver" and hist["train_rmse"]:
                sched["bold"] = sched.get("bold", 1.0) * (1.05 if tr < hist["train_rmse"][-1] else 0.5)
            hist["train_rmse"].append(tr)
            if valid is not None:
                self._finish_epoch()
                vr = _rmse(valid[2], self._predict_indices(valid[0], valid[1]))
                hist["valid_rmse"].append(vr)
                if vr < best - 1e-12:
                    best, best_epoch, bad = vr, epoch, 0
                    if self.patience is not None:
                        best_state = {k: v.copy() for k, v in state_arrays().items()}
                else:
                    bad += 1
                    if self.patience is not None and bad >= self.patience:
                        logger.info("%s: early stopping at epoch %d (best valid RMSE %.5f at epoch %d)",
                                    type(self).__name__, epoch, best, best_epoch)
                        break
            if not bar.disable:
                bar.set_postfix(train_rmse=f"{tr:.4f}", **({"valid_rmse": f"{hist['valid_rmse'][-1]:.4f}"} if valid else {}))
        bar.close()
        if best_state is not None and best_epoch < len(hist["train_rmse"]) - 1:
            for k, v in state_arrays().items():
                v[...] = best_state[k]
        self.history_ = hist
        self.best_epoch_ = best_epoch if valid is not None else len(hist["train_rmse"]) - 1
        self.n_epochs_ = len(hist["train_rmse"])

    def _divergence_hint(self, mult: float) -> str:
        """Which learning rate to lower after a diverged epoch, named by the rate that broke.

        One SGD step on a rating moves both biases by η_b(e − λ_b·b); since e falls by the sum of the
        two moves, the pair (b_u, b_i) follows the matrix I − η_b [[1+λ_b, 1], [1, 1+λ_b]], whose
        eigenvalues 1 − η_b·λ_b and 1 − η_b(2 + λ_b) stay inside (−1, 1) only while
        η_b < 2/(2 + λ_b). Above that limit the biases diverge whatever the factors do (checked on
        ML-100K: lr_bias 0.98 trains, 1.0 diverges at reg_bias 0.02); below it the factors' rate
        ``lr`` is the one to lower.
        """
        lr = getattr(self, "lr", None)
        if lr is None:  # ALS: no learning rate
            return "check the ratings for extreme values or raise reg"
        sched = f" × {mult:.3g} from lr_schedule" if mult != 1.0 else ""
        lr_bias = getattr(self, "lr_bias", None)
        reg_bias = getattr(self, "reg_bias", None)
        lam_b = float(self.reg if reg_bias is None else reg_bias)
        eta_b = float(lr if lr_bias is None else lr_bias) * mult
        limit = 2.0 / (2.0 + lam_b)
        if self.biased and eta_b >= limit:
            if lr_bias is None:
                return (f"the bias updates diverged: lr={lr}{sched} (also the bias rate, as lr_bias is None) is at or "
                        f"above their stability limit 2/(2 + reg_bias) = {limit:.4g}; lower lr or set lr_bias below it")
            return (f"the bias updates diverged: lr_bias={lr_bias}{sched} is at or above their stability limit "
                    f"2/(2 + reg_bias) = {limit:.4g}; lower lr_bias (lr={lr} is not the cause)")
        if self.biased and lr_bias is not None and eta_b > limit / 2:
            return (f"lower lr_bias (now {lr_bias}{sched}, over half the bias stability limit {limit:.4g}) "
                    f"or lr (now {lr})")
        return f"the factor updates diverged; lower lr (now {lr}{sched})"

    def _finish_epoch(self) -> None:
        """Hook run before predictions (SVD++ refreshes its implicit sums)."""

    def _zero_untrained(self) -> None:
        """Users/items without training ratings get zero factors and biases (not random noise)."""
        for arr, counts in ((self.user_factors_, self.user_counts_), (self.item_factors_, self.item_counts_)):
            arr[counts == 0] = 0
        self.user_bias_[self.user_counts_ == 0] = 0
        self.item_bias_[self.item_counts_ == 0] = 0

    # ------------------------------------------------------------------ prediction
    def _user_vectors(self) -> np.ndarray:
        return self.user_factors_

    def _predict_indices(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        u = np.ascontiguousarray(u, dtype=np.int64)
        i = np.ascontiguousarray(i, dtype=np.int64)
        with numba_threads(getattr(self, "num_threads", None)):
            out = K.mf_predict(u, i, self.global_mean_, self.user_bias_, self.item_bias_,
                               self._user_vectors(), self.item_factors_, True)
        if not self.biased:
            # no biases: r̂ = qᵢᵀpᵤ; a pair with an unseen side falls back to the global mean
            known = (u >= 0) & (i >= 0)
            out = np.where(known, out - self.global_mean_, self.global_mean_)
        if self.clip:
            np.clip(out, self.rating_min_, self.rating_max_, out=out)
        return out

    def _scores(self, user_idx: np.ndarray) -> np.ndarray:
        V = self._user_vectors()[user_idx]
        S = V @ self.item_factors_.T
        S = S.astype(np.float32, copy=False)
        if self.biased:
            S += (self.global_mean_ + self.user_bias_[user_idx])[:, None].astype(np.float32)
            S += self.item_bias_.astype(np.float32)[None, :]
        return S

    def item_vectors(self) -> np.ndarray:
        """Item factors Q (n_items, factors); ``similar_items`` ranks by their cosine."""
        self._check_fitted()
        return self.item_factors_

    def user_vectors(self) -> np.ndarray:
        """User factors (n_users, factors) as used in predictions (pᵤ, or pᵤ + zᵤ for SVD++)."""
        self._check_fitted()
        return self._user_vectors()

    # ------------------------------------------------------------------ persistence
    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {**super()._get_arrays(),
                "global_mean": np.array(self.global_mean_), "user_bias": self.user_bias_,
                "item_bias": self.item_bias_, "user_factors": self.user_factors_,
                "item_factors": self.item_factors_,
                "rating_range": np.array([self.rating_min_, self.rating_max_])}

    def _get_extra(self) -> dict[str, Any]:
        return {"history": getattr(self, "history_", {}), "best_epoch": getattr(self, "best_epoch_", -1),
                "n_epochs_trained": getattr(self, "n_epochs_", 0)}

    @classmethod
    def _extra_spec(cls, params: dict[str, Any]) -> dict[str, Any]:
        return {"history": "~dict", "best_epoch": "~int", "n_epochs_trained": "~int"}

    @classmethod
    def _array_specs(cls, params: dict[str, Any], extra: dict[str, Any], shapes: Any) -> dict[str, ArraySpec]:
        return {**super()._array_specs(params, extra, shapes), "global_mean": floats(),
                "user_bias": floats("n_users"), "item_bias": floats("n_items"),
                "user_factors": floats("n_users", "factors"), "item_factors": floats("n_items", "factors"),
                "rating_range": floats(2)}

    def _set_arrays(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        super()._set_arrays(arrays, extra)
        self.global_mean_ = float(arrays["global_mean"])
        self.user_bias_ = arrays["user_bias"]
        self.item_bias_ = arrays["item_bias"]
        self.user_factors_ = arrays["user_factors"]
        self.item_factors_ = arrays["item_factors"]
        self.rating_min_, self.rating_max_ = (float(x) for x in arrays["rating_range"])
        self.history_ = extra.get("history", {})
        self.best_epoch_ = extra.get("best_epoch", -1)
        self.n_epochs_ = extra.get("n_epochs_trained", 0)


class MatrixFactorization(_ExplicitFactorModel):
    """Biased matrix factorization by stochastic gradient descent ("Funk SVD").

    Prediction rule (Koren, Bell & Volinsky, "Matrix factorization techniques for recommender
    systems", IEEE Computer 2009; S. Funk, "Netflix update: try this at home", 2006)::

        r̂ᵤᵢ = μ + bᵤ + bᵢ + qᵢᵀ pᵤ            (``biased=False``: r̂ᵤᵢ = qᵢᵀ pᵤ)

    minimising Σ₍ᵤ,ᵢ₎∈R (rᵤᵢ − r̂ᵤᵢ)² + λ_b (bᵤ² + bᵢ²) + λ (‖pᵤ‖² + ‖qᵢ‖²) over the observed
    ratings R by SGD, one rating at a time, with err = rᵤᵢ − r̂ᵤᵢ::

        bᵤ ← bᵤ + η_b (err − λ_b bᵤ)      bᵢ ← bᵢ + η_b (err − λ_b bᵢ)
        pᵤ ← pᵤ + η (err qᵢ − λ pᵤ)       qᵢ ← qᵢ + η (err pᵤ − λ qᵢ)

    Defaults (100 factors, 40 epochs, η = 0.01, λ = 0.05, factors drawn from N(0, 0.01²), biases
    from 0, a fresh seeded order of the ratings every epoch) were chosen on a validation split of
    ml-latest-small's training ratings (``benchmarks/defaults.py tune-mf``; Surprise's ``SVD``
    defaults lost to the bias-only baseline there) and beat ``BaselinePredictor`` on its test
    split and on the MovieLens-100K folds (benchmarks/results/defaults.md). Surprise's ``SVD``
    is ``MatrixFactorization(epochs=20, lr=0.005, reg=0.02, init_std=0.1, shuffle=False)``
    (ratings visited user by user in data order). A user or item without training ratings is
    predicted by μ plus the bias that is known; predictions are clipped to the training rating
    range (``clip=True``, as Surprise does).

    Parameters
    ----------
    factors : latent dimension k (length of pᵤ and qᵢ).
    epochs : passes over the training ratings.
    lr : learning rate η of the factors.
    reg : L2 weight λ of the factors.
    lr_bias : learning rate η_b of the biases (``None``: same as ``lr``).
    reg_bias : L2 weight λ_b of the biases (``None``: same as ``reg``).
    init_mean : mean of the normal initialisation of the factors.
    init_std : standard deviation of the normal initialisation of the factors.
    biased : include μ, bᵤ, bᵢ.
    lr_schedule : ``"constant"`` (default), ``"exponential"`` (η·decayᵗ), ``"inverse"``
        (η / (1 + decay·t)) or ``"bold-driver"`` (×1.05 after an epoch that lowered the training
        loss, ×0.5 after one that raised it).
    lr_decay : the decay of the ``exponential``/``inverse`` schedules.
    shuffle : visit ratings in a fresh random order each epoch (seeded) instead of data order.
    parallel : how SGD runs on several threads (default ``False``: one thread, deterministic).
        ``True`` or ``"dsgd"``: stratified
        SGD (DSGD, Gemulla et al. 2011): users and items are cut into d = ``num_threads`` ranges
        of equal rating counts, and each epoch runs d sub-epochs in which d blocks sharing no user
        and no item are processed concurrently; no write conflicts, and the result depends on d
        but not on thread timing. ``"hogwild"``: Hogwild! (Recht et al. 2011): the epoch's ratings
        are cut into one chunk per thread and processed concurrently without locks; threads race on
        shared rows, so results depend on thread timing (not bit-reproducible).
    patience : with ``fit(..., valid=...)``, stop when the validation RMSE has not improved for
        this many epochs and restore the best epoch's parameters (None: train all ``epochs``).
    clip : clip predictions to the training rating range.
    dtype : ``"float32"`` (default; twice the SIMD width) or ``"float64"`` factor arrays.
    random_state : seed of the initial factors and of ``shuffle``.
    num_threads : threads for ``parallel`` training and for predict (None: ``TASTEBUD_NUM_THREADS``, else all cores).
    verbose : progress bar over epochs (None: on a terminal only).
    """

    registry_name = "mf"
    demo_params = {"factors": 50, "epochs": 20}
    renamed_params = {"n_factors": "factors", "n_epochs": "epochs", "early_stopping_rounds": "patience"}

    def __init__(
        self,
        factors: int = 100,
        epochs: int = 40,
        lr: float = 0.01,
        reg: float = 0.05,
        lr_bias: float | None = None,
        reg_bias: float | None = None,
        init_mean: float = 0.0,
        init_std: float = 0.01,
        biased: bool = True,
        lr_schedule: str = "constant",
        lr_decay: float = 0.9,
        shuffle: bool = True,
        parallel: bool | str = False,
        patience: int | None = None,
        clip: bool = True,
        dtype: str = "float32",
        random_state: int | None = None,
        num_threads: int | None = None,
        verbose: bool | None = None,
    ):
        self.factors = factors
        self.epochs = epochs
        self.lr = lr
        self.reg = reg
        self.lr_bias = lr_bias
        self.reg_bias = reg_bias
        self.init_mean = init_mean
        self.init_std = init_std
        self.biased = biased
        self.lr_schedule = lr_schedule
        self.lr_decay = lr_decay
        self.shuffle = shuffle
        self.parallel = parallel
        self.patience = patience
        self.clip = clip
        self.dtype = dtype
        self.random_state = random_state
        self.num_threads = num_threads
        self.verbose = verbose

    def _check_params(self) -> tuple[float, float, float, float]:
        _check_positive_int("factors", self.factors)
        _check_positive_int("epochs", self.epochs)
        lr = _check_float("lr", self.lr, strict=True)
        reg = _check_float("reg", self.reg)
        lr_b = lr if self.lr_bias is None else _check_float("lr_bias", self.lr_bias, strict=True)
        reg_b = reg if self.reg_bias is None else _check_float("reg_bias", self.reg_bias)
        _check_float("init_std", self.init_std)
        self._check_schedule()
        return lr, reg, lr_b, reg_b

    def _parallel_mode(self) -> str:
        p = self.parallel
        if p is False or p is None:
            return "sequential"
        if p is True or p == "dsgd":
            return "dsgd"
        if p == "hogwild":
            return "hogwild"
        raise ValueError(f"parallel must be False, True, 'dsgd' or 'hogwild', got {p!r}")

    def fit(self, data: Any, valid: Any = None) -> "MatrixFactorization":
        """Fit on explicit ratings (``Interactions``, a DataFrame with user/item/rating columns, or
        a sparse matrix). ``valid`` (same forms) is scored every epoch into ``history_`` and drives
        ``patience`` (early stopping)."""
        lr, reg, lr_b, reg_b = self._check_params()
        mode = self._parallel_mode()
        train = self._prepare(data)
        self._init_state(train)
        k = int(self.factors)
        nu, ni = train.shape
        dt = np.dtype(self.dtype)
        rng = np.random.default_rng(self.random_state)
        self.user_factors_ = _init_factors(rng, nu, k, self.init_mean, self.init_std, dt)
        self.item_factors_ = _init_factors(rng, ni, k, self.init_mean, self.init_std, dt)
        self.user_bias_ = np.zeros(nu)
        self.item_bias_ = np.zeros(ni)
        vr = self._valid_arrays(valid)

        u, i, r, _ = train.coo()
        u = u.astype(np.int64)
        i = i.astype(np.int64)
        r = r.astype(np.float64)
        nnz = len(r)
        base_order = np.arange(nnz, dtype=np.int64)
        shuffled = np.empty(nnz, dtype=np.int64) if self.shuffle and mode != "dsgd" else base_order
        threads = num_threads(self.num_threads)
        mu = self.global_mean_ if self.biased else 0.0
        P, Q, bu, bi = self.user_factors_, self.item_factors_, self.user_bias_, self.item_bias_
        if mode == "dsgd":
            d = numba_thread_count(threads)  # blocks per side = threads used
            block_order, block_ptr = K.dsgd_blocks(u, i, nu, ni, d)

        def epoch_fn(epoch: int, mult: float) -> float:
            # one seeded stream per epoch, drawn from the model's generator (deterministic)
            seed = int(rng.integers(0, 2**63 - 1)) if self.shuffle else 0
            if mode == "dsgd":
                order = K.shuffle_segments(block_order, block_ptr, seed) if self.shuffle else block_order
                shift = seed % d
                with numba_threads(d):
                    return float(K.mf_sgd_epoch_dsgd(u, i, r, order, block_ptr, d, shift, mu, bu, bi, P, Q,
                                                     lr_b * mult, lr * mult, reg_b, reg, bool(self.biased)))
            order = K.seeded_permutation(shuffled, seed) if self.shuffle else base_order
            args = (u, i, r, order, mu, bu, bi, P, Q, lr_b * mult, lr * mult, reg_b, reg, bool(self.biased))
            if mode == "hogwild":
                with numba_threads(threads) as nt:
                    return float(K.mf_sgd_epoch_hogwild(*args, nt))
            return float(K.mf_sgd_epoch(*args))

        self.fitted_ = True  # predictions are needed for validation inside the loop
        try:
            self._train_loop(int(self.epochs), epoch_fn, nnz, vr,
                             lambda: {"P": P, "Q": Q, "bu": bu, "bi": bi})
        except BaseException:
            self.fitted_ = False
            raise
        self._zero_untrained()
        return self
