"""SVD++ (Koren, "Factorization meets the neighborhood", KDD 2008), trained by SGD in O(nnz·k)
per epoch."""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp

from ...array_specs import ArraySpec, counts, floats, index, indptr
from ..._threads import num_threads, numba_threads
from ...data.idmap import IdMap
from ...data.interactions import Interactions, as_interactions
from ...kernels import sgd as K
from ..base import topk_rows
from .matrix_factorization import _check_float, _check_positive_int, _ExplicitFactorModel, _init_factors


class SVDpp(_ExplicitFactorModel):
    """SVD++: biased MF whose user vector also sums the factors of the items the user rated.

    Prediction rule (Koren 2008, eq. 15)::

        r̂ᵤᵢ = μ + bᵤ + bᵢ + qᵢᵀ (pᵤ + |N(u)|^-½ Σⱼ∈N(u) yⱼ)

    N(u) is the set of items with implicit feedback from u: the items u rated in training, plus
    those in ``fit(..., implicit=...)`` (e.g. which movies a user rated, without the rating, as
    Koren did with the Netflix qualifying set). Loss: squared error over the observed ratings
    plus λ_b(bᵤ² + bᵢ²) + λ(‖pᵤ‖² + ‖qᵢ‖²) + λ_y Σⱼ∈N(u) ‖yⱼ‖²; SGD updates per rating, with
    zᵤ = |N(u)|^-½ Σⱼ yⱼ and err = rᵤᵢ − r̂ᵤᵢ::

        bᵤ ← bᵤ + η_b (err − λ_b bᵤ)           bᵢ ← bᵢ + η_b (err − λ_b bᵢ)
        pᵤ ← pᵤ + η (err qᵢ − λ pᵤ)            qᵢ ← qᵢ + η (err (pᵤ + zᵤ) − λ qᵢ)
        yⱼ ← yⱼ + η_y (err |N(u)|^-½ qᵢ − λ_y yⱼ)    for all j ∈ N(u)

    These are exactly Surprise's ``SVDpp`` updates, but the kernel processes each user's ratings
    together and keeps the implicit term lazily: zᵤ is summed once per user and then updated in
    O(k) per rating, and the (identical) change of every yⱼ is accumulated and written once per
    user (see :mod:`tastebud.kernels.sgd`). An epoch costs O(nnz·k) instead of Surprise's
    O(Σᵤ |R(u)|·|N(u)|·k), with the same result up to floating-point rounding.

    Defaults are Surprise's ``SVDpp`` defaults (20 factors, 20 epochs, η = 0.007, λ = 0.02,
    init N(0, 0.1²), users in data order). A user who has implicit feedback but no ratings is
    predicted from zᵤ alone (pᵤ = 0, bᵤ = 0); :meth:`recommend_for_history` does the same for a user
    the model never saw. Other parameters as in :class:`~tastebud.models.mf.matrix_factorization.MatrixFactorization`
    (``parallel``: Hogwild over users — user rows are private to a thread, item rows may race).

    Parameters
    ----------
    factors : latent dimension k (length of pᵤ, qᵢ and yⱼ).
    epochs : passes over the training ratings.
    lr : learning rate η of pᵤ and qᵢ.
    reg : L2 weight λ of pᵤ and qᵢ.
    lr_bias : learning rate η_b of the biases (``None``: same as ``lr``).
    reg_bias : L2 weight λ_b of the biases (``None``: same as ``reg``).
    lr_implicit : learning rate η_y of the implicit factors yⱼ (``None``: same as ``lr``).
    reg_implicit : L2 weight λ_y of the implicit factors yⱼ (``None``: same as ``reg``).
    init_mean : mean of the normal initialisation of the factors.
    init_std : standard deviation of the normal initialisation of the factors.
    lr_schedule : ``"constant"``, ``"exponential"``, ``"inverse"`` or ``"bold-driver"`` (as in MatrixFactorization).
    lr_decay : the decay of the ``exponential``/``inverse`` schedules.
    shuffle : visit ratings in a fresh random order each epoch (seeded) instead of data order.
    parallel : ``True``: Hogwild over users (not bit-reproducible); ``False`` (default): one thread.
    patience : with ``fit(..., valid=...)``, stop after this many epochs without a better
        validation RMSE and restore the best epoch (None: train all ``epochs``).
    clip : clip predictions to the training rating range.
    dtype : ``"float32"`` (default) or ``"float64"`` factor arrays.
    random_state : seed of the initial factors and of ``shuffle``.
    num_threads : threads for ``parallel`` training and for predict (None: ``TASTEBUD_NUM_THREADS``, else all cores).
    verbose : progress bar over epochs (None: on a terminal only).
    """

    registry_name = "svdpp"
    demo_params = {"factors": 20, "epochs": 20}
    renamed_params = {"n_factors": "factors", "n_epochs": "epochs", "early_stopping_rounds": "patience"}

    def __init__(
        self,
        factors: int = 20,
        epochs: int = 20,
        lr: float = 0.007,
        reg: float = 0.02,
        lr_bias: float | None = None,
        reg_bias: float | None = None,
        lr_implicit: float | None = None,
        reg_implicit: float | None = None,
        init_mean: float = 0.0,
        init_std: float = 0.1,
        lr_schedule: str = "constant",
        lr_decay: float = 0.9,
        shuffle: bool = False,
        parallel: bool = False,
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
        self.lr_implicit = lr_implicit
        self.reg_implicit = reg_implicit
        self.init_mean = init_mean
        self.init_std = init_std
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

    biased = True  # SVD++ always has biases (not a parameter)

    def _check_params(self) -> tuple[float, ...]:
        _check_positive_int("factors", self.factors)
        _check_positive_int("epochs", self.epochs)
        lr = _check_float("lr", self.lr, strict=True)
        reg = _check_float("reg", self.reg)
        lr_b = lr if self.lr_bias is None else _check_float("lr_bias", self.lr_bias, strict=True)
        reg_b = reg if self.reg_bias is None else _check_float("reg_bias", self.reg_bias)
        lr_y = lr if self.lr_implicit is None else _check_float("lr_implicit", self.lr_implicit, strict=True)
        reg_y = reg if self.reg_implicit is None else _check_float("reg_implicit", self.reg_implicit)
        _check_float("init_std", self.init_std)
        self._check_schedule()
        return lr, reg, lr_b, reg_b, lr_y, reg_y

    # ------------------------------------------------------------------ fit
    def _implicit_matrix(self, train: Interactions, implicit: Any) -> tuple[Interactions, sp.csr_matrix]:
        """Training ratings (with the user map extended by implicit-only users) and N as CSR."""
        R = train.matrix
        if implicit is None:
            N = R.copy()
            N.data[:] = 1.0
            return train, N
        imp = as_interactions(implicit)
        u, i, _, _ = imp.coo()
        uext, iext = imp.users.ids[u], imp.items.ids[i]
        ii = train.items.index(iext, missing="mask")
        if (ii < 0).any():
            warnings.warn(f"SVDpp.fit: {int((ii < 0).sum())} implicit interaction(s) with items absent from the "
                          "training ratings were ignored", stacklevel=3)
        keep = ii >= 0
        uext, ii = uext[keep], ii[keep]
        uu = train.users.index(uext, missing="mask")
        new = np.unique(uext[uu < 0])
        users = train.users
        if len(new):
            users = IdMap(np.concatenate([train.users.ids, new.astype(train.users.ids.dtype)]), "user")
            R = sp.csr_matrix((R.data, R.indices, np.concatenate([R.indptr, np.full(len(new), R.indptr[-1])])),
                              shape=(len(users), R.shape[1]))
            uu = users.index(uext)
        nu = len(users)
        N = sp.csr_matrix((np.ones(len(uu) + R.nnz, np.float32),
                           (np.concatenate([uu, np.repeat(np.arange(R.shape[0]), np.diff(R.indptr))]),
                            np.concatenate([ii, R.indices]))), shape=(nu, R.shape[1]))
        N.sum_duplicates()
        N.data[:] = 1.0
        N.sort_indices()
        return Interactions(R, users, train.items), N

    def fit(self, data: Any, valid: Any = None, implicit: Any = None) -> "SVDpp":
        """Fit on explicit ratings. ``implicit`` (Interactions / DataFrame with user, item) adds
        implicit feedback to N(u): users found only there are predicted from it; items must occur in
        the ratings. ``valid`` is scored every epoch (``history_``) and drives early stopping."""
        lr, reg, lr_b, reg_b, lr_y, reg_y = self._check_params()
        train = self._prepare(data)
        train, N = self._implicit_matrix(train, implicit)
        self._init_state(train)
        # users with only implicit feedback are "seen" (their items are filtered by recommend) and
        # count as known users in predict
        self._set_interactions(train.users, train.items, train.matrix + N)
        self.user_counts_ = np.diff(self.seen_.indptr).astype(np.int64)
        self.rated_counts_ = np.diff(train.matrix.indptr).astype(np.int64)
        self.implicit_indptr_ = N.indptr.astype(np.int64)
        self.implicit_indices_ = N.indices.astype(np.int64)

        k = int(self.factors)
        nu, ni = train.shape
        dt = np.dtype(self.dtype)
        rng = np.random.default_rng(self.random_state)
        self.user_factors_ = _init_factors(rng, nu, k, self.init_mean, self.init_std, dt)
        self.item_factors_ = _init_factors(rng, ni, k, self.init_mean, self.init_std, dt)
        self.implicit_factors_ = _init_factors(rng, ni, k, self.init_mean, self.init_std, dt)
        self.user_bias_ = np.zeros(nu)
        self.item_bias_ = np.zeros(ni)
        vr = self._valid_arrays(valid)

        R = train.matrix
        r_indptr = R.indptr.astype(np.int64)
        r_indices = R.indices.astype(np.int64)
        r_data = R.data.astype(np.float64)
        lens = np.diff(r_indptr)
        base_within = (np.arange(R.nnz) - np.repeat(r_indptr[:-1], lens)).astype(np.int64)
        base_users = np.arange(nu, dtype=np.int64)
        n_indptr, n_indices = self.implicit_indptr_, self.implicit_indices_
        P, Q, Y, bu, bi = self.user_factors_, self.item_factors_, self.implicit_factors_, self.user_bias_, self.item_bias_
        mu = self.global_mean_
        threads = num_threads(self.num_threads)

        def epoch_fn(epoch: int, mult: float) -> float:
            if self.shuffle:
                users = rng.permutation(nu).astype(np.int64)
                # a random order inside each user's block: sort by (user, random key)
                key = rng.random(R.nnz)
                within = (np.lexsort((key, np.repeat(base_users, lens))) - np.repeat(r_indptr[:-1], lens)).astype(np.int64)
            else:
                users, within = base_users, base_within
            args = (users, r_indptr, r_indices, r_data, within, n_indptr, n_indices, mu, bu, bi, P, Q, Y,
                    lr_b * mult, lr * mult, lr_y * mult, reg_b, reg, reg_y)
            if self.parallel:
                with numba_threads(threads) as nt:
                    return float(K.svdpp_epoch_hogwild(*args, nt))
            return float(K.svdpp_epoch(*args))

        self.fitted_ = True
        try:
            self._train_loop(int(self.epochs), epoch_fn, R.nnz, vr,
                             lambda: {"P": P, "Q": Q, "Y": Y, "bu": bu, "bi": bi})
        except BaseException:
            self.fitted_ = False
            raise
        rated = self.rated_counts_
        P[rated == 0] = 0
        bu[rated == 0] = 0
        rated_items = np.bincount(R.indices, minlength=ni)
        Q[rated_items == 0] = 0
        bi[rated_items == 0] = 0
        self._finish_epoch()
        return self

    def _finish_epoch(self) -> None:
        Z = np.empty_like(self.user_factors_)
        with numba_threads(self.num_threads):
            K.implicit_sums(self.implicit_indptr_, self.implicit_indices_, self.implicit_factors_, Z)
        self._user_vec_ = self.user_factors_ + Z

    def _user_vectors(self) -> np.ndarray:
        return self._user_vec_

    # ------------------------------------------------------------------ new users
    def _history_vector(self, history: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted()
        idx = np.unique(self.items_.index(list(history)))
        if len(idx) == 0:
            raise ValueError("history is empty: SVDpp needs at least one item to fold in a new user")
        z = self.implicit_factors_[idx].astype(np.float64).sum(axis=0) / np.sqrt(len(idx))
        return z, idx

    def predict_for_history(self, history: Sequence[Any], items: Sequence[Any]) -> np.ndarray:
        """Ratings of ``items`` for a user the model never saw, known only by the items in
        ``history`` (implicit feedback): r̂ = μ + bᵢ + qᵢᵀ |N|^-½ Σⱼ∈N yⱼ (pᵤ = bᵤ = 0)."""
        z, _ = self._history_vector(history)
        i = self.items_.index(list(items), missing="mask")
        known = (i >= 0) & (self.item_counts_[np.maximum(i, 0)] > 0)
        ii = np.maximum(i, 0)
        out = self.global_mean_ + np.where(known, self.item_bias_[ii] + self.item_factors_[ii] @ z, 0.0)
        if self.clip:
            np.clip(out, self.rating_min_, self.rating_max_, out=out)
        return out

    def recommend_for_history(self, history: Sequence[Any], k: int = 10, filter_seen: bool = True,
                              items: Sequence[Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items for a new user given only the items in ``history`` (no refit); the
        history items themselves are excluded when ``filter_seen``. An empty history is ranked by
        training popularity (with a warning)."""
        self._check_fitted()
        if len(list(history)) == 0:
            s, hist = self._empty_history_scores(), np.zeros(0, dtype=np.int64)
        else:
            z, hist = self._history_vector(history)
            s = (self.global_mean_ + self.item_bias_ + self.item_factors_ @ z).astype(np.float32)
        if filter_seen:
            s[hist] = -np.inf
        cand = self._candidates(items)
        if cand is not None:
            s = s[cand]
        k = self._check_k(k, len(s))
        idx, sc = topk_rows(s[None, :], k)
        if cand is not None:
            idx = cand[idx]
        ids, sc = self._to_external(idx, sc)
        return ids[0], sc[0]

    # ------------------------------------------------------------------ persistence
    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {**super()._get_arrays(), "implicit_factors": self.implicit_factors_,
                "implicit_indptr": self.implicit_indptr_, "implicit_indices": self.implicit_indices_,
                "rated_counts": self.rated_counts_}

    @classmethod
    def _array_specs(cls, params: dict[str, Any], extra: dict[str, Any], shapes: Any) -> dict[str, ArraySpec]:
        return {**super()._array_specs(params, extra, shapes), "implicit_factors": floats("n_items", "factors"),
                "implicit_indptr": indptr("n_users", of="implicit_indices"),
                "implicit_indices": index(None, hi="n_items"), "rated_counts": counts("n_users")}

    def _set_arrays(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        super()._set_arrays(arrays, extra)
        self.implicit_factors_ = arrays["implicit_factors"]
        self.implicit_indptr_ = arrays["implicit_indptr"]
        self.implicit_indices_ = arrays["implicit_indices"]
        self.rated_counts_ = arrays["rated_counts"]
        self._finish_epoch()
