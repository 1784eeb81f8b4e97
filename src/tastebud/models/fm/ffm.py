"""Field-aware factorization machines (Juan, Zhuang, Chin & Lin, "Field-aware factorization machines
for CTR prediction", RecSys 2016; libffm).

Each feature j belongs to a field f(j) and keeps one latent vector per field; a pair of features
interacts through the vectors each keeps for the other's field:

    ŷ(x) = w₀ + Σ_j w_j x_j + Σ_{a<b} ⟨v_{j_a, f(j_b)}, v_{j_b, f(j_a)}⟩ x_a x_b

An FM is the special case of one vector per feature (or of a single field). Training is SGD with
AdaGrad steps (libffm's defaults: k = 4, lr = 0.2, λ = 2·10⁻⁵, 15 epochs) on the squared loss
(regression) or the logistic loss (classification, labels {−1, 1} or {0, 1}).

Two ways to use it, as :class:`~tastebud.models.fm.factorization_machine.FactorizationMachine`:

* ``fit(X, y, fields)`` on a design matrix, ``fields`` one field id per column (e.g. the ``groups``
  of :class:`~tastebud.models.fm.features.FMFeatures`; None: one field, i.e. an FM), then
  ``predict(X)``, ``predict_proba(X)``, ``decision_function(X)``;
* ``fit(interactions, user_features=None, item_features=None)``: fields are the feature groups
  (user id, item id, each side feature, implicit groups); then ``predict(users, items)``,
  ``recommend``, ``similar_items``, ``save``/``load``. The score splits as
  ŷ(u, i) = w₀ + b_u + b_i + ⟨P_u, P_i⟩ (P blocks per pair of a user field and an item field), so
  ``recommend`` scores all items with one matrix product.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar, Literal, Sequence

import numpy as np
import scipy.sparse as sp

from ...array_specs import ArraySpec, floats, index
from ..._threads import numba_threads, single_threaded_blas
from ...data.interactions import as_interactions
from ...exceptions import DataError, FormatError
from ...kernels import ffm as K
from ..base import RatingPredictor
from .design import check_design, check_targets
from .pairs import build_pair_blocks, check_implicit, check_pair_shapes, pair_arrays, pair_rows, pair_specs, restore_pairs


class FieldAwareFM(RatingPredictor):
    """Field-aware factorization machine (see the module docstring).

    Parameters
    ----------
    task : "regression" or "classification"
    factors : k, the dimension of each per-field vector
    epochs : passes of SGD over the rows
    lr : step size (the base step of AdaGrad)
    reg : L2 on the latent vectors a row touches (libffm's λ)
    reg_linear : L2 on w₀ and the linear weights
    adaptive : "adagrad" (libffm) or "none"
    init_std : the vectors start uniform on [0, init_std·√3) … scaled like libffm's U[0, 1/√k)
        when None
    use_bias, use_linear : include w₀ / the linear terms
    implicit : recommender mode only: "none", "user", "item" or "both" (as in FactorizationMachine)
    random_state, num_threads, verbose : as everywhere in tastebud
    """

    registry_name: ClassVar[str] = "ffm"
    demo_params: ClassVar[dict[str, Any]] = {"epochs": 10, "factors": 4}

    def __init__(
        self,
        task: Literal["regression", "classification"] = "regression",
        factors: int = 4,
        epochs: int = 15,
        lr: float = 0.2,
        reg: float = 2e-5,
        reg_linear: float = 2e-5,
        adaptive: Literal["adagrad", "none"] = "adagrad",
        init_std: float | None = None,
        use_bias: bool = True,
        use_linear: bool = True,
        implicit: Literal["none", "user", "item", "both"] = "none",
        random_state: int | None = None,
        num_threads: int | None = None,
        verbose: bool = False,
    ):
        self.task = task
        self.factors = factors
        self.epochs = epochs
        self.lr = lr
        self.reg = reg
        self.reg_linear = reg_linear
        self.adaptive = adaptive
        self.init_std = init_std
        self.use_bias = use_bias
        self.use_linear = use_linear
        self.implicit = implicit
        self.random_state = random_state
        self.num_threads = num_threads
        self.verbose = verbose

    # ------------------------------------------------------------------ validation
    def _check_params(self) -> None:
        if self.task not in ("regression", "classification"):
            raise ValueError(f"task must be 'regression' or 'classification', got {self.task!r}")
        if not isinstance(self.factors, (int, np.integer)) or isinstance(self.factors, bool) or self.factors < 1:
            raise ValueError(f"factors must be a positive integer, got {self.factors!r}")
        if not isinstance(self.epochs, (int, np.integer)) or isinstance(self.epochs, bool) or self.epochs < 1:
            raise ValueError(f"epochs must be a positive integer, got {self.epochs!r}")
        if not (np.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        for name in ("reg", "reg_linear"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {v!r}")
        if self.adaptive not in ("adagrad", "none"):
            raise ValueError(f"adaptive must be 'adagrad' or 'none', got {self.adaptive!r}")
        if self.init_std is not None and not (np.isfinite(self.init_std) and self.init_std >= 0):
            raise ValueError(f"init_std must be None or >= 0, got {self.init_std!r}")
        check_implicit(self.implicit)

    def _check_y(self, y: Any, n: int) -> np.ndarray:
        yy, classes = check_targets(y, n, self.task)
        if classes is not None:
            self.classes_ = classes
        return yy

    @staticmethod
    def _check_fields(fields: Any, p: int) -> tuple[np.ndarray, int]:
        if fields is None:
            return np.zeros(p, dtype=np.int64), 1
        f = np.asarray(fields)
        if f.ndim != 1 or len(f) != p:
            raise DataError(f"fields must have one entry per column of X ({p}), got shape {f.shape}")
        uniq, codes = np.unique(f, return_inverse=True)
        return codes.astype(np.int64), len(uniq)

    # ------------------------------------------------------------------ fit
    def fit(self, data: Any, y: Any = None, fields: Any = None, *, user_features: Any = None,
            item_features: Any = None) -> "FieldAwareFM":
        """``fit(X, y, fields)`` on a design matrix or ``fit(interactions, user_features=None,
        item_features=None)`` as a recommender (see the module docstring)."""
        self._check_params()
        if sp.issparse(data) or isinstance(data, np.ndarray):
            if user_features is not None or item_features is not None:
                raise ValueError("user_features/item_features apply only when fitting on Interactions")
            X = check_design(data)
            yy = self._check_y(y, X.shape[0])
            self.fields_, self.n_fields_ = self._check_fields(fields, X.shape[1])
            self.mode_ = "design"
            self._train(X, yy)
            self.fitted_ = True
            return self
        if y is not None or fields is not None:
            raise ValueError("y and fields apply only to fit(X, y, fields) on a design matrix")
        train = as_interactions(data)
        if train.nnz == 0:
            raise DataError("FieldAwareFM.fit: the training data has no interactions")
        self._set_interactions(train.users, train.items, train.matrix)
        pb = build_pair_blocks(train, self.seen_, user_features, item_features, self.implicit)
        self.Xu_, self.Xi_ = pb.Xu, pb.Xi
        self.group_names_ = pb.group_names
        self.side_features_ = pb.side_features
        self.fields_, self.n_fields_ = pb.groups.astype(np.int64), len(pb.group_names)
        self.user_fields_ = np.unique(self.fields_[:pb.p_user])
        u, i, r, _ = train.coo()
        X = pair_rows(self.Xu_, self.Xi_, u, i)
        self.mode_ = "interactions"
        self._train(X, self._check_y(r.astype(np.float64), len(r)))
        self._parts = None
        self.fitted_ = True
        return self

    def _train(self, X: sp.csr_matrix, y: np.ndarray) -> None:
        n, p = X.shape
        k, F = int(self.factors), int(self.n_fields_)
        self.n_features_ = p
        rng = np.random.default_rng(self.random_state)
        scale = np.sqrt(3.0) * self.init_std if self.init_std is not None else 1.0 / np.sqrt(k)
        V = rng.random((p, F, k)) * scale
        w0, w = np.zeros(1), np.zeros(p)
        cls = self.task == "classification"
        if not cls and self.use_bias:
            w0[0] = y.mean()
        ada = self.adaptive == "adagrad"
        G0, Gw, GV = np.ones(1), np.ones(p), np.ones_like(V)  # libffm starts the AdaGrad sums at 1
        ymin, ymax = (float(y.min()), float(y.max())) if not cls else (-np.inf, np.inf)
        self.history_: list[float] = []
        epochs = range(int(self.epochs))
        if self.verbose:
            from tqdm.auto import tqdm

            epochs = tqdm(epochs, desc="FFM", unit="epoch", leave=False)
        t0 = time.perf_counter()
        for _ in epochs:
            order = rng.permutation(n).astype(np.int64)
            loss = K.ffm_sgd_epoch(X.indptr, X.indices, X.data, y, order, self.fields_, cls, w0, w, V,
                                   float(self.lr), float(self.reg_linear), float(self.reg_linear), float(self.reg),
                                   bool(self.use_bias), bool(self.use_linear), ada, G0, Gw, GV, ymin, ymax)
            if not np.isfinite(loss):
                raise FloatingPointError("FFM diverged (loss is not finite): lower lr")
            self.history_.append(float(loss))
        self.fit_seconds_ = time.perf_counter() - t0
        self.w0_, self.w_, self.V_ = float(w0[0]), w, V

    # ------------------------------------------------------------------ prediction
    def _raw(self, X: sp.csr_matrix) -> np.ndarray:
        out = np.empty(X.shape[0])
        with numba_threads(self.num_threads):
            K.ffm_predict(X.indptr, X.indices, X.data, self.fields_, self.w0_, self.w_, self.V_, out)
        return out

    def decision_function(self, X: Any) -> np.ndarray:
        """ŷ(x) for each row of a design matrix."""
        self._check_fitted()
        return self._raw(check_design(X, n_features=self.n_features_))

    def predict_proba(self, X: Any) -> np.ndarray:
        """P(y = 1 | x) = σ(ŷ(x)) (classification)."""
        self._check_fitted()
        if self.task != "classification":
            raise ValueError("predict_proba needs task='classification'")
        return 1.0 / (1.0 + np.exp(-self.decision_function(X)))

    def predict(self, users: Any, items: Any = None, unknown: Literal["fallback", "raise"] = "fallback") -> np.ndarray:
        """``predict(X)``: values (regression) or labels (classification) for the rows of a design
        matrix; ``predict(users, items)``: ratings of (user, item) pairs (recommender mode)."""
        self._check_fitted()
        if items is None and (sp.issparse(users) or (isinstance(users, np.ndarray) and users.ndim == 2)):
            s = self.decision_function(users)
            if self.task == "classification":
                return np.where(s >= 0, self.classes_[1], self.classes_[0])
            return s
        if items is None:
            raise ValueError("predict needs a design matrix X, or users and items")
        self._require_interactions("predict(users, items)")
        return super().predict(users, items, unknown=unknown)

    def _predict_indices(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        s = self._raw(pair_rows(self.Xu_, self.Xi_, u, i))
        return 1.0 / (1.0 + np.exp(-s)) if self.task == "classification" else s

    def _require_interactions(self, what: str) -> None:
        self._check_fitted()
        if getattr(self, "mode_", None) != "interactions":
            raise ValueError(f"{what} needs a model fitted on Interactions; this one was fitted on a design matrix")

    def _split_parts(self) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(w₀, b_u, b_i, P_u, P_i) with ŷ(u, i) = w₀ + b_u + b_i + ⟨P_u, P_i⟩."""
        if getattr(self, "_parts", None) is not None:
            return self._parts
        uf = np.asarray(self.user_fields_, dtype=np.int64)
        itf = np.setdiff1d(np.arange(self.n_fields_), uf).astype(np.int64)
        k = int(self.factors)
        out = []
        for M, side, other, item_side in ((self.Xu_, uf, itf, False), (self.Xi_, itf, uf, True)):
            pos = np.full(self.n_fields_, -1, dtype=np.int64)
            pos[side] = np.arange(len(side))
            bias, P = np.empty(M.shape[0]), np.empty((M.shape[0], len(uf) * len(itf) * k))
            with numba_threads(self.num_threads):
                K.ffm_side_parts(M.indptr, M.indices, M.data, self.fields_, self.w_, self.V_, pos, other, item_side,
                                 bias, P)
            out += [bias.astype(np.float32), P.astype(np.float32)]
        self._parts = (self.w0_, out[0], out[2], out[1], out[3])
        return self._parts

    def _scores(self, user_idx: np.ndarray) -> np.ndarray:
        self._require_interactions("recommend")
        c, bu, bi, Pu, Pi = self._split_parts()
        with single_threaded_blas():
            S = Pu[user_idx] @ Pi.T
        S += bi[None, :]
        S += (bu[user_idx] + np.float32(c))[:, None]
        return S

    def recommend(self, users: Any, k: int = 10, filter_seen: bool = True, items: Sequence[Any] | None = None,
                  unknown: Literal["raise", "popular"] = "raise", batch_size: int = 2048) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items by ŷ(u, i) (recommender mode; see :meth:`Recommender.recommend`)."""
        self._require_interactions("recommend")
        return super().recommend(users, k, filter_seen=filter_seen, items=items, unknown=unknown, batch_size=batch_size)

    def item_vectors(self) -> np.ndarray | None:
        if getattr(self, "mode_", None) != "interactions":
            return None
        return self._split_parts()[4]

    def similar_items(self, item: Any, k: int = 10, filter_items: Sequence[Any] | None = None,
                      items: Sequence[Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Cosine similarity of the items' field-pair vectors P_i."""
        self._require_interactions("similar_items")
        return super().similar_items(item, k, filter_items=filter_items, items=items)

    # ------------------------------------------------------------------ persistence
    def _get_arrays(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        if self.mode_ == "interactions":
            out.update(super()._get_arrays())
            out.update(pair_arrays(self.Xu_, self.Xi_))
            out["user_fields"] = np.asarray(self.user_fields_, dtype=np.int64)
        out.update({"w0": np.asarray(self.w0_), "w": self.w_, "V": self.V_, "fields": self.fields_})
        if self.task == "classification":
            out["classes"] = self.classes_
        return out

    def _get_extra(self) -> dict[str, Any]:
        return {"mode": self.mode_, "n_fields": int(self.n_fields_), "group_names": getattr(self, "group_names_", None),
                "side_features": getattr(self, "side_features_", None)}

    @classmethod
    def _extra_spec(cls, params: dict[str, Any]) -> dict[str, Any]:
        return {"mode": ("interactions", "design"), "n_fields": "int", "group_names": "~list?", "side_features": "~dict?"}

    @classmethod
    def _array_specs(cls, params: dict[str, Any], extra: dict[str, Any], shapes: Any) -> dict[str, ArraySpec]:
        F = int(extra["n_fields"])
        specs = {"w0": floats(), "w": floats("n_features"), "V": floats("n_features", F, int(params["factors"])),
                 "fields": index("n_features", hi=max(F, 1)),
                 "classes": floats(2, optional=params.get("task") != "classification")}
        if extra["mode"] == "interactions":
            specs.update(super()._array_specs(params, extra, shapes))
            specs.update(pair_specs())
            specs["user_fields"] = index(None, hi=max(F, 1))
        return specs

    @classmethod
    def _check_saved(cls, path: Any, arrays: dict[str, np.ndarray], extra: dict[str, Any],
                     params: dict[str, Any], sizes: dict[str, int]) -> None:
        if extra["n_fields"] < 1:
            raise FormatError(f"{path}: meta.json extra.n_fields must be >= 1, got {extra['n_fields']}")
        if extra["mode"] == "interactions":
            check_pair_shapes(path, arrays, sizes)

    def _set_arrays(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        self.mode_ = extra["mode"]
        if self.mode_ == "interactions":
            super()._set_arrays(arrays, extra)
            self.Xu_, self.Xi_ = restore_pairs(arrays)
            self.user_fields_ = arrays["user_fields"]
            self.group_names_ = extra.get("group_names")
            self.side_features_ = extra.get("side_features")
        self._parts = None
        self.w0_ = float(arrays["w0"])
        self.w_, self.V_ = arrays["w"], arrays["V"]
        self.fields_ = arrays["fields"].astype(np.int64)
        self.n_fields_ = int(extra["n_fields"])
        self.n_features_ = len(self.w_)
        if "classes" in arrays:
            self.classes_ = arrays["classes"]


__all__ = ["FieldAwareFM"]
