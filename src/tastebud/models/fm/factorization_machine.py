"""Factorization machines (Rendle, "Factorization Machines", ICDM 2010).

    ŷ(x) = w₀ + Σᵢ wᵢxᵢ + Σᵢ<ⱼ ⟨vᵢ, vⱼ⟩ xᵢxⱼ
         = w₀ + Σᵢ wᵢxᵢ + ½ Σ_f [(Σᵢ v_{i,f} xᵢ)² − Σᵢ v_{i,f}² xᵢ²]        (O(k·nnz(x)))

Solvers (``solver=``):

* ``"sgd"`` — stochastic gradient descent on ½(ŷ−y)² (regression) or the logistic loss
  (classification), L2 per feature group, optional AdaGrad steps (``adaptive="adagrad"``).
* ``"als"`` — coordinate descent / alternating least squares (Rendle, Gantner, Freudenthaler &
  Schmidt-Thieme, "Fast context-aware recommendations with factorization machines", SIGIR 2011):
  each parameter θ is set to the exact minimiser of Σₙ(yₙ−ŷₙ)² + Σ λ θ² with all others fixed,
  so no update increases the objective (``block=True``, the default, minimises exactly over each
  feature's k+1 parameters at once, which cannot increase it either).
* ``"mcmc"`` (default, libFM's) — Gibbs sampling of the Bayesian FM (Freudenthaler,
  Schmidt-Thieme & Rendle, "Bayesian factorization machines", NIPS WS 2011): Gaussian priors
  wⱼ ~ N(μ_w[g], 1/λ_w[g]), v_{j,f} ~ N(μ_v[g,f], 1/λ_v[g,f]) with Normal–Gamma hyperpriors
  per feature group g, noise precision α ~ Gamma; no regularisation to tune. Predictions are
  averaged over the samples drawn after ``burn_in``. Classification uses the probit link
  P(y=1|x) = Φ(ŷ(x)) with latent targets drawn from truncated normals (ALS uses their
  expectations, an EM for the probit model). ``task="ordinal"`` (MCMC only) is the ordered
  probit of myFM's ``MyFMOrderedProbit``: P(y = c | x) = Φ(γ_c − ŷ(x)) − Φ(γ_{c−1} − ŷ(x)) with
  sampled cutpoints γ (see :mod:`tastebud.models.fm.ordinal`); ``predict_proba`` gives the class
  probabilities, ``predict_expected`` the expected value Σ_c P(c)·class_c, ``predict(users, items)``
  the expected rating.

Two ways to use it (``fit`` dispatches on the type of its first argument):

* **General prediction** — ``fit(X, y, groups=None)`` with ``X`` a scipy sparse (or dense)
  design matrix, ``y`` the targets, ``groups`` one feature-group id per column (e.g. from
  :class:`~tastebud.models.fm.features.FMFeatures`). Then ``predict(X)`` (regression values or
  class labels), ``predict_proba(X)``, ``decision_function(X)``.
* **Recommender** — ``fit(interactions, user_features=None, item_features=None)`` with an
  :class:`~tastebud.data.interactions.Interactions`: each rating (u, i) becomes the row
  x = [one-hot(u), user side features, implicit items of u | one-hot(i), item side features,
  implicit users of i] (``implicit=`` chooses the implicit-feedback groups, normalised by
  1/√|N|: SVD++ as an FM). Then the common protocol: ``predict(users, items)`` (unseen ids drop
  their block: the prediction falls back to w₀ plus the known side), ``recommend(users, k)``,
  ``save``/``load``. Because every column belongs to the user or the item side, an FM score
  splits as ŷ(u,i) = w₀ + b(u) + b(i) + ⟨q(u), q(i)⟩, which ``recommend`` uses to score all items
  with one matrix product.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Literal, Sequence

import numpy as np
import scipy.sparse as sp

from ..._progress import progress
from ...array_specs import ArraySpec, floats, index
from ..._threads import numba_threads, single_threaded_blas
from ...data.interactions import Interactions, as_interactions
from ...exceptions import DataError, FormatError, NotFittedError
from ...kernels import fm as K
from ...kernels import fm_ordinal as KO
from ..base import RatingPredictor
from .design import check_design, check_targets
from .ordinal import CutpointSampler, class_probabilities
from .pairs import build_pair_blocks, check_implicit, check_pair_shapes, pair_arrays, pair_rows, pair_specs, restore_pairs
from .relational import RelationBlock, RelationalDesign

logger = logging.getLogger("tastebud")

Task = Literal["regression", "classification", "ordinal"]
Solver = Literal["mcmc", "als", "sgd"]


class FactorizationMachine(RatingPredictor):
    """Factorization machine for regression and binary classification (see the module docstring).

    Parameters
    ----------
    task : "regression", "classification" (labels {−1, 1} or {0, 1}) or "ordinal" (ordered
        classes: the distinct values of y in increasing order; MCMC only)
    factors : k, the dimension of the factor vectors vᵢ (libFM's ``dim``/rank)
    solver : "mcmc" (libFM's default), "als" or "sgd"
    epochs : sweeps (MCMC/ALS) or epochs (SGD) over the training rows
    init_std : standard deviation of the initial factors (libFM: 0.1)
    lr : SGD step size (the base step for AdaGrad)
    adaptive : "none" or "adagrad" (SGD only)
    reg_w0 : L2 weight on w₀ (ALS and SGD; MCMC learns its priors instead)
    reg_w : L2 weight on the wⱼ (ALS and SGD), a number or one value per feature group
    reg_v : L2 weight on the v_j (ALS and SGD), a number or one value per feature group
    use_bias : include w₀
    use_linear : include the linear terms wⱼxⱼ
    burn_in : MCMC samples dropped before averaging (None: epochs // 10)
    n_kept_samples : MCMC samples kept for prediction (None: all after burn-in; else evenly thinned)
    implicit : recommender mode only: "none", "user" (items the user rated), "item" (users who
        rated the item) or "both"
    block : ALS/MCMC: update each feature's k+1 parameters (wⱼ, v_{j,1..k}) jointly — their joint
        conditional is Gaussian because ŷ is linear in them — instead of one coordinate at a time.
        Same cost order (one (k+1)×(k+1) Cholesky per feature and sweep), better mixing: on
        ML-100K u1 it lowered the test RMSE by 0.001–0.002 at equal sweeps.
    random_state : seed of the initial factors, the SGD order and the MCMC draws
    num_threads : numba threads (None: ``TASTEBUD_NUM_THREADS``, else all cores)
    verbose : progress bar over epochs (None: on a terminal only)
    """

    registry_name = "fm"
    #: ordinal task: prior precision of the cutpoint parameters and degrees of freedom of the
    #: Metropolis–Hastings t proposal (myFM's ``reg_0`` and ``nu_oprobit``)
    _CUTPOINT_REG = 1.0
    _CUTPOINT_DOF = 5.0
    demo_params = {"epochs": 50, "factors": 8}
    renamed_params = {"rank": "factors", "n_iter": "epochs", "learning_rate": "lr", "init_stdev": "init_std"}

    def __init__(
        self,
        task: Task = "regression",
        factors: int = 8,
        solver: Solver = "mcmc",
        epochs: int = 100,
        init_std: float = 0.1,
        lr: float = 0.01,
        adaptive: Literal["none", "adagrad"] = "none",
        reg_w0: float = 0.0,
        reg_w: float | Sequence[float] = 0.1,
        reg_v: float | Sequence[float] = 0.1,
        use_bias: bool = True,
        use_linear: bool = True,
        burn_in: int | None = None,
        n_kept_samples: int | None = None,
        implicit: Literal["none", "user", "item", "both"] = "none",
        block: bool = True,
        random_state: int | None = None,
        num_threads: int | None = None,
        verbose: bool | None = None,
    ):
        self.task = task
        self.factors = factors
        self.solver = solver
        self.epochs = epochs
        self.init_std = init_std
        self.lr = lr
        self.adaptive = adaptive
        self.reg_w0 = reg_w0
        self.reg_w = reg_w
        self.reg_v = reg_v
        self.use_bias = use_bias
        self.use_linear = use_linear
        self.burn_in = burn_in
        self.n_kept_samples = n_kept_samples
        self.implicit = implicit
        self.block = block
        self.random_state = random_state
        self.num_threads = num_threads
        self.verbose = verbose

    # ================================================================== validation
    def _check_params(self) -> None:
        if self.task not in ("regression", "classification", "ordinal"):
            raise ValueError(f"task must be 'regression', 'classification' or 'ordinal', got {self.task!r}")
        if self.solver not in ("mcmc", "als", "sgd"):
            raise ValueError(f"solver must be 'mcmc', 'als' or 'sgd', got {self.solver!r}")
        if self.task == "ordinal" and self.solver != "mcmc":
            raise ValueError(f"task='ordinal' needs solver='mcmc' (the cutpoints are sampled), got solver={self.solver!r}")
        if not isinstance(self.factors, (int, np.integer)) or self.factors < 0:
            raise ValueError(f"factors must be a non-negative integer, got {self.factors!r}")
        if not isinstance(self.epochs, (int, np.integer)) or self.epochs < 1:
            raise ValueError(f"epochs must be a positive integer, got {self.epochs!r}")
        if self.adaptive not in ("none", "adagrad"):
            raise ValueError(f"adaptive must be 'none' or 'adagrad', got {self.adaptive!r}")
        check_implicit(self.implicit)
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if self.init_std < 0:
            raise ValueError(f"init_std must be >= 0, got {self.init_std!r}")
        if self.burn_in is not None and not (0 <= self.burn_in < self.epochs):
            raise ValueError(f"burn_in must be in [0, epochs), got {self.burn_in!r} with epochs={self.epochs}")

    def _check_y(self, y: Any, n: int) -> np.ndarray:
        yy, classes = check_targets(y, n, self.task)
        if classes is not None:
            self.classes_ = classes
        return yy

    def _check_groups(self, groups: Any, p: int) -> tuple[np.ndarray, int]:
        if groups is None:
            return np.zeros(p, dtype=np.int64), 1
        g = np.asarray(groups)
        if g.ndim != 1 or len(g) != p:
            raise DataError(f"groups must have one entry per column of X ({p}), got shape {g.shape}")
        uniq, codes = np.unique(g, return_inverse=True)
        return codes.astype(np.int64), len(uniq)

    def _per_group(self, value: Any, G: int, name: str) -> np.ndarray:
        arr = np.asarray(value, dtype=np.float64)
        if arr.ndim == 0:
            arr = np.full(G, float(arr))
        if arr.shape != (G,):
            raise ValueError(f"{name} must be a number or have one value per feature group ({G}), got {value!r}")
        if (arr < 0).any() or not np.isfinite(arr).all():
            raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
        return arr

    # ================================================================== fit
    def fit(self, data: Any, y: Any = None, groups: Any = None, *, relations: Sequence[RelationBlock] | None = None,
            user_features: Any = None, item_features: Any = None) -> "FactorizationMachine":
        """Fit on a design matrix ``fit(X, y, groups)`` — with ``relations=[RelationBlock(index, B),
        ...]`` for feature blocks whose rows repeat (X may then be None; see
        :mod:`tastebud.models.fm.relational`) — or as a recommender ``fit(interactions,
        user_features=None, item_features=None)`` (see the module docstring)."""
        self._check_params()
        if relations is not None or sp.issparse(data) or isinstance(data, np.ndarray):
            if user_features is not None or item_features is not None:
                raise ValueError("user_features/item_features apply only when fitting on Interactions")
            X = RelationalDesign(data, relations) if relations is not None else check_design(data)
            yy = self._check_y(y, X.shape[0])
            g, G = self._check_groups(groups, X.shape[1])
            self.mode_ = "design"
            self._train(X, yy, g, G)
            self.fitted_ = True
            return self
        if y is not None or groups is not None:
            raise ValueError("y and groups apply only to fit(X, y, groups) on a design matrix; "
                             "for Interactions the ratings are the targets")
        train = as_interactions(data)
        if train.nnz == 0:
            raise DataError("FactorizationMachine.fit: the training data has no interactions")
        self._fit_interactions(train, user_features, item_features)
        self.fitted_ = True
        return self

    # ------------------------------------------------------------------ recommender mode
    def _fit_interactions(self, train: Interactions, user_features: Any, item_features: Any) -> None:
        self._set_interactions(train.users, train.items, train.matrix)
        pb = build_pair_blocks(train, self.seen_, user_features, item_features, self.implicit)
        self.Xu_, self.Xi_ = pb.Xu, pb.Xi
        self.group_names_ = pb.group_names
        groups = pb.groups
        Xu, Xi = pb.user_block(), pb.item_block()
        u, i, r, _ = train.coo()
        X = RelationalDesign(None, [RelationBlock(u, Xu), RelationBlock(i, Xi)])
        if not self._prefer_relational(X):
            X = X.flat()  # = Xu_[u] + Xi_[i]
        self.design_ = "relational" if isinstance(X, RelationalDesign) else "flat"
        yy = self._check_y(r.astype(np.float64), len(r))
        self.mode_ = "interactions"
        self.side_features_ = pb.side_features
        self._train(X, yy, groups, len(self.group_names_))
        self._parts = None

    #: relational sweeps pay when the flat rows hold more than this many non-zeros per block
    _RELATIONAL_MIN_NNZ = 6
    _RELATIONAL_MAX_BYTES = 512 * 2**20

    def _prefer_relational(self, D: RelationalDesign) -> bool:
        """Recommender mode: train on the user and item blocks (same model, see
        :mod:`~tastebud.models.fm.relational`) when that is cheaper — MCMC/ALS, rows with many
        non-zeros (side features, implicit groups) — and its per-row sums fit in memory."""
        k = int(self.factors)
        return (self.solver != "sgd" and D.nnz_flat > self._RELATIONAL_MIN_NNZ * D.n * len(D.blocks)
                and D.cache_bytes(k) <= self._RELATIONAL_MAX_BYTES)

    # ------------------------------------------------------------------ training
    def _train(self, X: sp.csr_matrix, y: np.ndarray, groups: np.ndarray, G: int) -> None:
        n, p = X.shape
        k = int(self.factors)
        self.n_features_ = p
        self.groups_ = groups
        self.n_groups_ = G
        rng = np.random.default_rng(self.random_state)
        seed = int(rng.integers(0, 2**31 - 1))
        w0 = np.zeros(1)
        w = np.zeros(p)
        V = rng.normal(0.0, self.init_std, size=(p, k)) if k else np.zeros((p, 0))
        self.history_: list[float] = []
        t0 = time.perf_counter()
        with numba_threads(self.num_threads), single_threaded_blas():
            if self.solver == "sgd":  # example by example: the flat rows
                self._train_sgd(X.flat() if isinstance(X, RelationalDesign) else X, y, groups, G, w0, w, V, rng)
            else:
                self._train_cd(X, y, groups, G, w0, w, V, rng, seed)
        self.fit_seconds_ = time.perf_counter() - t0
        self.w0_ = float(w0[0])
        self.w_ = w
        self.V_ = V

    def _progress(self, total: int):
        return progress(range(total), verbose=self.verbose, desc=f"FM {self.solver}", unit="epoch")

    def _train_sgd(self, X, y, groups, G, w0, w, V, rng) -> None:
        cls = self.task == "classification"
        lam_w = self._per_group(self.reg_w, G, "reg_w")
        lam_v = self._per_group(self.reg_v, G, "reg_v")
        if not cls and self.use_bias:
            w0[0] = y.mean()
        ada = self.adaptive == "adagrad"
        G0, Gw, GV = np.zeros(1), np.zeros(len(w)), np.zeros_like(V)
        ymin, ymax = (float(y.min()), float(y.max())) if not cls else (-np.inf, np.inf)
        for _ in self._progress(int(self.epochs)):
            order = rng.permutation(X.shape[0]).astype(np.int64)
            loss = K.sgd_epoch(X.indptr, X.indices, X.data, y, order, groups, cls, w0, w, V,
                               float(self.lr), float(self.reg_w0), lam_w, lam_v,
                               bool(self.use_bias), bool(self.use_linear), ada, G0, Gw, GV, ymin, ymax)
            if not np.isfinite(loss):
                raise FloatingPointError("SGD diverged (loss is not finite): lower lr or use adaptive='adagrad'")
            self.history_.append(float(loss))

    @staticmethod
    def _probit_latent(m: np.ndarray, y: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        """Latent z for y ∈ {−1, 1}: a draw from N(m, 1) truncated to sign(z) = y (rng given),
        or its expectation m + y·φ(m)/Φ(y·m)."""
        from scipy.special import log_ndtr, ndtr, ndtri  # classification only: kept off the import path

        ym = np.clip(y * m, -35.0, 35.0)
        if rng is None:
            ratio = np.exp(-0.5 * m * m - 0.5 * np.log(2 * np.pi) - log_ndtr(ym))
            return m + y * ratio
        u = 1.0 - rng.random(len(m))
        return m - y * ndtri(u * ndtr(ym))

    def _train_cd(self, X, y, groups, G, w0, w, V, rng, seed) -> None:
        sample = self.solver == "mcmc"
        cls = self.task == "classification"
        n, p = X.shape
        k = V.shape[1]
        rel = isinstance(X, RelationalDesign)
        if rel:  # the plain part's columns here; the blocks' sums per block row in X.sweep
            cptr, crow, cval = X.plain_csc()
        else:
            C = X.tocsc()
            C.sort_indices()
            cptr = C.indptr.astype(np.int64)
            crow = C.indices.astype(np.int32 if n < 2**31 - 1 else np.int64)
            cval = C.data
        sweep = X.sweep if rel else K.cd_sweep
        K.seed_numba(seed)
        Q = np.zeros((n, k))
        yhat = np.empty(n)

        def refresh():  # Q and ŷ in one pass over the rows
            if rel:
                X.scores(w0[0], w, V, yhat, Q)
                return
            K.fm_parts(X.indptr, X.indices, X.data, w, V, yhat, Q)
            np.add(yhat, w0[0], out=yhat)

        refresh()
        ordinal = self.task == "ordinal"
        if ordinal:  # cutpoints at their mode given the initial scores, then z given them
            latent = CutpointSampler(y.astype(np.int64), len(self.classes_), self._CUTPOINT_REG, self._CUTPOINT_DOF)
            latent.start(yhat)
            target, e = yhat.copy(), np.zeros(n)
            latent.resample(e, target, rng)
            Sc = []
        else:
            target = y.copy() if not cls else self._probit_latent(yhat, y, rng if sample else None)
            e = target - yhat
        cnt = np.bincount(groups, minlength=G).astype(np.float64)
        # group indicator (G × p): per-group sums of the factors as one sparse product
        Gm = sp.csr_matrix((np.ones(p), (groups, np.arange(p))), shape=(G, p))
        if sample:
            lam_w, mu_w = np.ones(G), np.zeros(G)
            lam_v, mu_v = np.ones((G, k)), np.zeros((G, k))
        else:
            lam_w, mu_w = self._per_group(self.reg_w, G, "reg_w"), np.zeros(G)
            lam_v = np.repeat(self._per_group(self.reg_v, G, "reg_v")[:, None], k, axis=1)
            mu_v = np.zeros((G, k))
        alpha = 1.0
        # Gamma(α₀/2, β₀/2) noise prior and Normal–Gamma hyperpriors as in libFM: α₀ = β₀ = 1, γ₀ = 1
        a0 = b0 = 1.0
        al = bl = 1.0
        gamma0 = 1.0
        n_iter = int(self.epochs)
        burn = self.burn_in if self.burn_in is not None else n_iter // 10
        keep_idx = np.arange(burn, n_iter)
        if self.n_kept_samples is not None and sample:
            m = max(1, min(int(self.n_kept_samples), len(keep_idx)))
            keep_idx = keep_idx[np.unique(np.round(np.linspace(0, len(keep_idx) - 1, m)).astype(int))]
        keep = set(keep_idx.tolist()) if sample else set()
        S0, Sw, SV = [], [], []
        use_w0, use_w = bool(self.use_bias), bool(self.use_linear)
        for it in self._progress(n_iter):
            if it and it % 20 == 0:  # wash out floating-point drift of the caches
                refresh()
                e = target - yhat
            if ordinal:  # cutpoints (Metropolis–Hastings, z integrated out), then z given them
                latent.step(target - e, rng)
                latent.resample(e, target, rng)
            elif cls and sample:  # redraw the latent targets; e follows (one fused pass)
                K.probit_resample(e, target, y, 1.0 - rng.random(n))
            elif cls:  # ALS: their expectations (EM for the probit model)
                yhat_now = target - e
                target = self._probit_latent(yhat_now, y, None)
                e = target - yhat_now
            if sample:
                if not cls and not ordinal:  # the probit links fix the noise precision at 1
                    alpha = rng.gamma((a0 + n) / 2.0, 2.0 / (b0 + float(e @ e)))
                sw = np.bincount(groups, weights=w, minlength=G)
                if use_w:
                    mu_w = rng.normal(sw / (cnt + gamma0), 1.0 / np.sqrt((cnt + gamma0) * lam_w))
                    ss = np.bincount(groups, weights=(w - mu_w[groups]) ** 2, minlength=G)
                    lam_w = rng.gamma((al + cnt + 1) / 2.0, 2.0 / (bl + ss + gamma0 * mu_w ** 2))
                if k:
                    sv = Gm @ V
                    mu_v = rng.normal(sv / (cnt + gamma0)[:, None], 1.0 / np.sqrt((cnt + gamma0)[:, None] * lam_v))
                    ssv = Gm @ ((V - mu_v[groups]) ** 2)
                    lam_v = rng.gamma(((al + cnt + 1) / 2.0)[:, None], 2.0 / (bl + ssv + gamma0 * mu_v ** 2))
            sweep(cptr, crow, cval, groups, w0, w, V, Q, e, alpha, float(self.reg_w0),
                       lam_w, lam_v, mu_w, mu_v, use_w0, use_w, sample, 256, bool(self.block))
            if ordinal:  # training accuracy of the class whose interval holds ŷ
                c_hat = np.empty(n, dtype=np.int64)
                KO.latent_class(target - e, latent.gamma, c_hat)
                self.history_.append(float(np.mean(c_hat == latent.cls)))
            elif cls:
                self.history_.append(float(np.mean(np.sign(target - e) == y)))
            else:
                self.history_.append(float(np.sqrt(np.mean((y - (target - e)) ** 2))))
            if it in keep:
                S0.append(w0[0])
                Sw.append(w.astype(np.float32))
                SV.append(V.astype(np.float32))
                if ordinal:
                    Sc.append(latent.gamma.copy())
        if sample:
            self.w0_samples_ = np.asarray(S0, dtype=np.float64)
            self.w_samples_ = np.stack(Sw)
            self.V_samples_ = np.stack(SV)
            self.hyper_ = {"alpha": float(alpha), "lambda_w": lam_w, "mu_w": mu_w, "lambda_v": lam_v, "mu_v": mu_v}
        if ordinal:
            self.cutpoint_samples_ = np.asarray(Sc, dtype=np.float64)
            self.cutpoint_acceptance_ = latent.n_accepted / max(latent.n_steps, 1)

    # ================================================================== prediction
    def _samples(self):
        if self.solver == "mcmc" and getattr(self, "w0_samples_", None) is not None:
            for s in range(len(self.w0_samples_)):
                yield float(self.w0_samples_[s]), self.w_samples_[s].astype(np.float64), self.V_samples_[s].astype(np.float64)
        else:
            yield self.w0_, self.w_, self.V_

    def _design(self, X: Any, relations: Sequence[RelationBlock] | None) -> Any:
        """A validated design for prediction: CSR, or a RelationalDesign when ``relations`` are given."""
        if relations is not None:
            return RelationalDesign(X, relations, n_features=self.n_features_)
        return check_design(X, n_features=self.n_features_)

    def _sample_scores(self, X: Any):
        """ŷ of every row for each sample in turn (a refilled buffer)."""
        if isinstance(X, RelationalDesign):
            yield from X.sample_scores(self._samples())
            return
        out = np.empty(X.shape[0])
        for w0, w, V in self._samples():
            with numba_threads(self.num_threads):
                K.fm_predict(X.indptr, X.indices, X.data, w0, w, V, out)
            yield out

    def _raw(self, X: Any, link: bool) -> np.ndarray:
        """Mean over samples of ŷ (link=False) or of P(y=1|x) (link=True): one kernel pass over
        the rows that loops over the (float32) samples itself."""
        if isinstance(X, RelationalDesign):
            out, S = np.zeros(X.n), 0
            for yhat in self._sample_scores(X):
                if link and self.solver == "sgd":
                    out += 1.0 / (1.0 + np.exp(-yhat))
                elif link:
                    from scipy.special import ndtr

                    out += ndtr(yhat)
                else:
                    out += yhat
                S += 1
            return out / S
        if self.solver == "mcmc" and getattr(self, "w0_samples_", None) is not None:
            w0s, ws, Vs = np.asarray(self.w0_samples_), self.w_samples_, self.V_samples_
        else:
            w0s, ws, Vs = np.array([self.w0_]), np.asarray(self.w_)[None], np.asarray(self.V_)[None]
        code = 0 if not link else (2 if self.solver == "sgd" else 1)
        out = np.empty(X.shape[0])
        with numba_threads(self.num_threads):
            K.fm_predict_mean(X.indptr, X.indices, X.data, w0s, np.ascontiguousarray(ws),
                              np.ascontiguousarray(Vs), code, out)
        return out

    def _ordinal_proba(self, X: Any) -> np.ndarray:
        """Mean over the samples of P(y = c | x) (n, K)."""
        return class_probabilities(self._sample_scores(X), self.cutpoint_samples_, X.shape[0])

    def predict_expected(self, X: Any, relations: Sequence[RelationBlock] | None = None) -> np.ndarray:
        """Ordinal task: the expected value Σ_c P(y = c | x)·classes_[c] of each row."""
        self._check_fitted()
        if self.task != "ordinal":
            raise ValueError("predict_expected needs task='ordinal'")
        return self._ordinal_proba(self._design(X, relations)) @ self.classes_

    def decision_function(self, X: Any, relations: Sequence[RelationBlock] | None = None) -> np.ndarray:
        """ŷ(x) for each row of the design matrix (averaged over MCMC samples)."""
        self._check_fitted()
        return self._raw(self._design(X, relations), link=False)

    def predict_proba(self, X: Any, relations: Sequence[RelationBlock] | None = None) -> np.ndarray:
        """P(y = 1 | x) for each row (classification): Φ(ŷ) for MCMC/ALS (probit, averaged over
        samples), σ(ŷ) for SGD (logistic). Ordinal task: an (n, K) array, P(y = classes_[c] | x)
        averaged over the samples."""
        self._check_fitted()
        if self.task == "ordinal":
            return self._ordinal_proba(self._design(X, relations))
        if self.task != "classification":
            raise ValueError("predict_proba needs task='classification' or 'ordinal'")
        return self._raw(self._design(X, relations), link=True)

    def predict(self, users: Any, items: Any = None, unknown: Literal["fallback", "raise"] = "fallback",
                relations: Sequence[RelationBlock] | None = None) -> np.ndarray:
        """``predict(X)`` (``relations=`` as in ``fit``): predictions for the rows of a design
        matrix (regression values, or class labels in the label set used at fit);
        ``predict(users, items)``: ratings for (user, item) pairs of a model fitted on
        Interactions (see :class:`RatingPredictor`)."""
        self._check_fitted()
        if relations is not None or (items is None and (sp.issparse(users) or (isinstance(users, np.ndarray) and users.ndim == 2))):
            X = self._design(users, relations)
            if self.task == "ordinal":
                return self.classes_[np.argmax(self._ordinal_proba(X), axis=1)]
            if self.task == "classification":
                pr = self._raw(X, link=True)
                return np.where(pr >= 0.5, self.classes_[1], self.classes_[0])
            return self._raw(X, link=False)
        if items is None:
            raise ValueError("predict needs a design matrix X, or users and items")
        self._require_interactions("predict(users, items)")
        return super().predict(users, items, unknown=unknown)

    def _pair_design(self, u: np.ndarray, i: np.ndarray) -> sp.csr_matrix:
        return pair_rows(self.Xu_, self.Xi_, u, i)

    def _predict_indices(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        X = self._pair_design(np.asarray(u), np.asarray(i))
        if self.task == "ordinal":  # the expected rating
            return self._ordinal_proba(X) @ self.classes_
        return self._raw(X, link=self.task == "classification")

    def _split_parts(self):
        """Per-sample user/item parts: score(u, i) = c + bu[u] + bi[i] + Qu[u]·Qi[i] / S."""
        if getattr(self, "_parts", None) is not None:
            return self._parts
        nu, ni = self.Xu_.shape[0], self.Xi_.shape[0]
        k = int(self.factors)
        c, bu, bi, Qu_l, Qi_l, S = 0.0, np.zeros(nu), np.zeros(ni), [], [], 0
        for w0, w, V in self._samples():
            b1, q1 = np.empty(nu), np.empty((nu, k))
            b2, q2 = np.empty(ni), np.empty((ni, k))
            K.fm_parts(self.Xu_.indptr, self.Xu_.indices, self.Xu_.data, w, V, b1, q1)
            K.fm_parts(self.Xi_.indptr, self.Xi_.indices, self.Xi_.data, w, V, b2, q2)
            c += w0; bu += b1; bi += b2
            Qu_l.append(q1); Qi_l.append(q2)
            S += 1
        Qu = np.hstack(Qu_l).astype(np.float32) / np.float32(S)
        Qi = np.hstack(Qi_l).astype(np.float32)
        self._parts = (c / S, (bu / S).astype(np.float32), (bi / S).astype(np.float32), Qu, Qi)
        return self._parts

    def _feature_name(self, j: int) -> str:
        g = int(self.groups_[j])
        off = j - int(np.searchsorted(self.groups_, g))  # columns of a group are contiguous
        name = self.group_names_[g]
        if name in ("user", "implicit:item->user"):
            return f"{'' if name == 'user' else 'rated by '}user={self.users_.ids[off]}"
        if name in ("item", "implicit:user->item"):
            return f"{'' if name == 'item' else 'rated '}item={self.items_.ids[off]}"
        return f"{name}[{off}]"

    def explain_pair(self, user: Any, item: Any, top: int | None = None) -> dict[str, Any]:
        """The terms of ŷ(u, i) = w₀ + Σⱼ wⱼxⱼ + Σⱼ<ₗ ⟨vⱼ, vₗ⟩xⱼxₗ for one (user, item) pair of a
        model fitted on Interactions (averaged over MCMC samples, before any link function):
        ``{"score", "bias", "linear": [{"feature", "value"}], "pairwise": [{"features": [a, b],
        "value"}]}``, both lists largest |value| first. ``bias + Σ linear + Σ pairwise`` equals
        :meth:`predict` for regression (the decision value for classification). ``top`` keeps the
        ``top`` largest terms of each list and adds ``"rest"``, the sum of the terms left out."""
        self._require_interactions("explain_pair")
        u = self.users_.index([user], missing="mask")
        i = self.items_.index([item], missing="mask")
        x = self._pair_design(u, i)
        J, xv = x.indices, x.data
        w0, lin, pair = 0.0, np.zeros(len(J)), np.zeros((len(J), len(J)))
        S = 0
        for b, w, V in self._samples():
            Vj = np.asarray(V, dtype=np.float64)[J] * xv[:, None]
            w0 += float(b)
            lin += np.asarray(w, dtype=np.float64)[J] * xv
            pair += Vj @ Vj.T
            S += 1
        w0, lin, pair = w0 / S, lin / S, np.triu(pair / S, 1)
        a, b = np.nonzero(np.triu(np.ones_like(pair, dtype=bool), 1))
        pv = pair[a, b]
        ol, op = np.argsort(-np.abs(lin), kind="stable"), np.argsort(-np.abs(pv), kind="stable")
        if top is not None:
            ol, op = ol[:int(top)], op[:int(top)]
        names = {int(j): self._feature_name(int(J[j])) for j in set(ol.tolist()) | set(a[op].tolist()) | set(b[op].tolist())}
        out = {"score": float(w0 + lin.sum() + pv.sum()), "bias": float(w0),
               "linear": [{"feature": names[j], "value": float(lin[j])} for j in ol.tolist()],
               "pairwise": [{"features": [names[int(a[m])], names[int(b[m])]], "value": float(pv[m])} for m in op.tolist()]}
        if top is not None:
            out["rest"] = float(lin.sum() + pv.sum() - lin[ol].sum() - pv[op].sum())
        return out

    def _require_interactions(self, what: str) -> None:
        self._check_fitted()
        if getattr(self, "mode_", None) != "interactions":
            raise ValueError(f"{what} needs a model fitted on Interactions; this one was fitted on a design matrix")

    def recommend(self, users: Any, k: int = 10, filter_seen: bool = True, items: Sequence[Any] | None = None,
                  unknown: Literal["raise", "popular"] = "raise", batch_size: int = 2048) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items by predicted score (see :meth:`Recommender.recommend`); needs a model
        fitted on Interactions. Scores come from the user/item split of ŷ, one matrix product."""
        self._require_interactions("recommend")
        return super().recommend(users, k, filter_seen=filter_seen, items=items, unknown=unknown, batch_size=batch_size)

    def similar_items(self, item: Any, k: int = 10, filter_items: Sequence[Any] | None = None,
                      items: Sequence[Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Cosine similarity of the items' (sample-stacked) factor sums q(i) = Σ v_j x_{i,j}."""
        self._require_interactions("similar_items")
        return super().similar_items(item, k, filter_items=filter_items, items=items)

    def _scores(self, user_idx: np.ndarray) -> np.ndarray:
        """Scores for ranking: the (sample-averaged) ŷ(u, i), computed from the user/item split."""
        if getattr(self, "mode_", None) != "interactions":
            raise ValueError("recommend needs a model fitted on Interactions")
        c, bu, bi, Qu, Qi = self._split_parts()
        with single_threaded_blas():
            S = Qu[user_idx] @ Qi.T
        S += bi[None, :]
        S += (bu[user_idx] + np.float32(c))[:, None]
        return S

    def item_vectors(self) -> np.ndarray | None:
        if getattr(self, "mode_", None) != "interactions":
            return None
        return self._split_parts()[4]

    # ================================================================== persistence
    def _get_arrays(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        if self.mode_ == "interactions":
            out.update(super()._get_arrays())
            out.update(pair_arrays(self.Xu_, self.Xi_))
        out.update({"w0": np.asarray(self.w0_), "w": self.w_, "V": self.V_, "groups": self.groups_})
        if getattr(self, "classes_", None) is not None and self.task in ("classification", "ordinal"):
            out["classes"] = self.classes_
        if self.task == "ordinal":
            out["cutpoint_samples"] = self.cutpoint_samples_
        if getattr(self, "w0_samples_", None) is not None:
            out.update({"w0_samples": self.w0_samples_, "w_samples": self.w_samples_, "V_samples": self.V_samples_})
        return out

    def _get_extra(self) -> dict[str, Any]:
        return {"mode": self.mode_, "n_groups": self.n_groups_,
                "group_names": getattr(self, "group_names_", None),
                "side_features": getattr(self, "side_features_", None)}

    @classmethod
    def _extra_spec(cls, params: dict[str, Any]) -> dict[str, Any]:
        return {"mode": ("interactions", "design"), "n_groups": "int", "group_names": "~list?", "side_features": "~dict?"}

    @classmethod
    def _array_specs(cls, params: dict[str, Any], extra: dict[str, Any], shapes: Any) -> dict[str, ArraySpec]:
        rank = params["factors"] if "factors" in params else params["rank"]
        specs = {"w0": floats(), "w": floats("n_features"), "V": floats("n_features", int(rank)),
                 "groups": index("n_features", hi=max(int(extra["n_groups"]), 1)),
                 "classes": floats("n_classes" if params.get("task") == "ordinal" else 2, optional=True),
                 "w0_samples": floats("n_samples", optional=True),
                 "w_samples": floats("n_samples", "n_features", optional=True),
                 "V_samples": floats("n_samples", "n_features", int(rank), optional=True)}
        if params.get("task") == "ordinal":
            specs["cutpoint_samples"] = floats("n_samples", "n_classes-1")
        if extra["mode"] == "interactions":
            specs.update(super()._array_specs(params, extra, shapes))
            specs.update(pair_specs())
        return specs

    @classmethod
    def _check_saved(cls, path: Any, arrays: dict[str, np.ndarray], extra: dict[str, Any],
                     params: dict[str, Any], sizes: dict[str, int]) -> None:
        if extra["n_groups"] < 1:
            raise FormatError(f"{path}: meta.json extra.n_groups must be >= 1, got {extra['n_groups']}")
        have = [k in arrays for k in ("w0_samples", "w_samples", "V_samples")]
        if any(have) and not all(have):
            raise FormatError(f"{path}: arrays 'w0_samples', 'w_samples' and 'V_samples' go together")
        if params.get("task") == "ordinal":
            if not all(have) or "classes" not in arrays:
                raise FormatError(f"{path}: an ordinal model needs 'classes' and the MCMC samples")
            if (np.diff(arrays["classes"]) <= 0).any() or (np.diff(arrays["cutpoint_samples"], axis=1) <= 0).any():
                raise FormatError(f"{path}: arrays 'classes' and 'cutpoint_samples' must increase along each row")
        if extra["mode"] == "interactions":
            check_pair_shapes(path, arrays, sizes)

    def _set_arrays(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        self.mode_ = extra["mode"]
        if self.mode_ == "interactions":
            super()._set_arrays(arrays, extra)
            self.Xu_, self.Xi_ = restore_pairs(arrays)
            self.group_names_ = extra.get("group_names")
            self.side_features_ = extra.get("side_features")
        self._parts = None
        self.w0_ = float(arrays["w0"])
        self.w_ = arrays["w"]
        self.V_ = arrays["V"]
        self.groups_ = arrays["groups"]
        self.n_groups_ = int(extra["n_groups"])
        self.n_features_ = len(self.w_)
        if "classes" in arrays:
            self.classes_ = arrays["classes"]
        if "cutpoint_samples" in arrays:
            self.cutpoint_samples_ = arrays["cutpoint_samples"]
        if "w0_samples" in arrays:
            self.w0_samples_ = arrays["w0_samples"]
            self.w_samples_ = arrays["w_samples"]
            self.V_samples_ = arrays["V_samples"]


__all__ = ["FactorizationMachine", "check_design", "check_targets", "NotFittedError"]
