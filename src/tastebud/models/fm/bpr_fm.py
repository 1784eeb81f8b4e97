"""Factorization machines trained for ranking with BPR (Rendle et al., "BPR: Bayesian personalized
ranking from implicit feedback", UAI 2009; the FM form as in libFM's ranking and Rendle, TIST 2012).

The score of a candidate z (an item, a tag…) for a context c (a user, a post, a previous basket…)
is the FM of their concatenated rows, ŷ(c ⊕ z) = w₀ + b(c) + b(z) + ⟨q(c), q(z)⟩ (see
:mod:`tastebud.kernels.bpr_fm`). For a positive i of c and a candidate j that is not, BPR maximises
ln σ(ŷ(c ⊕ i) − ŷ(c ⊕ j)) − λ‖Θ‖² by stochastic gradient ascent over uniformly drawn (c, i, j).
With one-hot user and item rows this is BPR-MF with item biases; side features, implicit groups
and the :mod:`~tastebud.models.fm.templates` (PITF, FPMC) make it a context-aware ranker.

* ``fit(interactions, user_features=None, item_features=None)``: contexts are users, candidates
  items (every stored interaction is a positive); then ``recommend``, ``similar_items``,
  ``save``/``load``.
* ``fit(design)`` with a :class:`~tastebud.models.fm.templates.RankingDesign`: then
  ``score_candidates(context_rows)`` and ``rank(context_rows, k)`` (candidate ids).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Sequence

import numpy as np
import scipy.sparse as sp

from ...array_specs import ArraySpec, floats, ids, index, indptr
from ..._threads import numba_threads, single_threaded_blas
from ...data.idmap import IdMap
from ...data.interactions import as_interactions
from ...exceptions import DataError
from ...kernels import bpr_fm as K
from ...kernels import fm as KF
from ..base import Recommender, topk_rows
from .design import check_design, int64_indices
from .pairs import build_pair_blocks, check_implicit, check_pair_shapes, pair_arrays, pair_specs, restore_pairs
from .templates import RankingDesign


class BPRFactorizationMachine(Recommender):
    """Factorization machine trained with the BPR pairwise ranking loss (see the module docstring).

    Parameters
    ----------
    factors : k, the dimension of the factor vectors
    epochs : passes; each draws as many (context, positive, negative) triples as there are positives
    lr : SGD step size
    reg : L2 on the factors the sample touches
    reg_linear : L2 on the candidates' linear weights (their biases)
    init_std : standard deviation of the initial factors
    verify_negative_samples : redraw a negative that is a positive of the context
    implicit : recommender mode only: "none", "user", "item" or "both" implicit-feedback groups
    random_state, num_threads, verbose : as everywhere in tastebud (one thread is exactly
        reproducible; more run lock-free Hogwild blocks)
    """

    registry_name: ClassVar[str] = "bpr-fm"
    demo_params: ClassVar[dict[str, Any]] = {"factors": 32, "epochs": 30}

    def __init__(
        self,
        factors: int = 64,
        epochs: int = 50,
        lr: float = 0.05,
        reg: float = 0.002,
        reg_linear: float = 0.002,
        init_std: float = 0.01,
        verify_negative_samples: bool = True,
        implicit: Literal["none", "user", "item", "both"] = "none",
        random_state: int | None = None,
        num_threads: int | None = None,
        verbose: bool = False,
    ):
        self.factors = factors
        self.epochs = epochs
        self.lr = lr
        self.reg = reg
        self.reg_linear = reg_linear
        self.init_std = init_std
        self.verify_negative_samples = verify_negative_samples
        self.implicit = implicit
        self.random_state = random_state
        self.num_threads = num_threads
        self.verbose = verbose

    def _check_params(self) -> None:
        for name in ("factors", "epochs"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < (1 if name == "factors" else 0):
                raise ValueError(f"{name} must be a {'positive' if name == 'factors' else 'non-negative'} integer, got {v!r}")
        if not (np.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        for name in ("reg", "reg_linear", "init_std"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {v!r}")
        check_implicit(self.implicit)

    # ------------------------------------------------------------------ fit
    def fit(self, data: Any, *, user_features: Any = None, item_features: Any = None) -> "BPRFactorizationMachine":
        """``fit(interactions, user_features=None, item_features=None)`` or ``fit(ranking_design)``."""
        self._check_params()
        if isinstance(data, RankingDesign):
            if user_features is not None or item_features is not None:
                raise ValueError("user_features/item_features apply only when fitting on Interactions")
            self.mode_ = "design"
            C, Z = check_design(data.contexts, "contexts"), check_design(data.candidates, "candidates")
            P = sp.csr_matrix(data.positives, dtype=np.float64)
            P.sort_indices()
            if P.nnz == 0:
                raise DataError("BPRFactorizationMachine.fit: the design has no positives")
            self.candidates_, self.candidate_ids_ = Z, np.asarray(data.candidate_ids)
            self.groups_, self.group_names_ = np.asarray(data.groups, dtype=np.int64), list(data.group_names)
            self._train(C, Z, P)
            self.fitted_ = True
            return self
        train = as_interactions(data)
        if train.nnz == 0:
            raise DataError("BPRFactorizationMachine.fit: the training data has no interactions")
        if train.n_items < 2:
            raise DataError("BPRFactorizationMachine.fit: needs at least 2 items to sample negatives")
        self._set_interactions(train.users, train.items, train.matrix)
        pb = build_pair_blocks(train, self.seen_, user_features, item_features, self.implicit)
        self.Xu_, self.Xi_ = pb.Xu, pb.Xi
        self.groups_, self.group_names_ = pb.groups.astype(np.int64), pb.group_names
        self.side_features_ = pb.side_features
        self.mode_ = "interactions"
        self._train(self.Xu_, self.Xi_, self.seen_.astype(np.float64))
        self.fitted_ = True
        return self

    def _train(self, C: sp.csr_matrix, Z: sp.csr_matrix, P: sp.csr_matrix) -> None:
        p = C.shape[1]
        k = int(self.factors)
        seed = int(np.random.SeedSequence(self.random_state).generate_state(1, np.uint64)[0])
        rng = np.random.default_rng(seed)
        V = rng.normal(0.0, self.init_std, size=(p, k))
        w = np.zeros(p)
        P = P.tocsr()
        P.sort_indices()
        p_ptr, p_ind = P.indptr.astype(np.int64), P.indices.astype(np.int64)
        p_rows = np.repeat(np.arange(P.shape[0], dtype=np.int64), np.diff(p_ptr))
        n_blocks = int(max(1, min(256, P.nnz // 256)))
        self.history_: list[float] = []
        epochs = range(int(self.epochs))
        if self.verbose:
            from tqdm.auto import tqdm

            epochs = tqdm(epochs, desc="BPR-FM", unit="epoch", leave=False)
        with numba_threads(self.num_threads):
            for epoch in epochs:
                correct, skipped = K.bpr_fm_epoch(C.indptr, C.indices, C.data, Z.indptr, Z.indices, Z.data,
                                                  p_ptr, p_ind, p_rows, w, V, float(self.lr), float(self.reg_linear),
                                                  float(self.reg), np.uint64(seed), epoch, n_blocks,
                                                  bool(self.verify_negative_samples))
                used = P.nnz - skipped
                self.history_.append(correct / used if used else float("nan"))
        if not (np.isfinite(V).all() and np.isfinite(w).all()):
            raise FloatingPointError("BPR-FM diverged (non-finite parameters); lower lr")
        self.train_accuracy_ = self.history_[-1] if self.history_ else float("nan")
        self.w_, self.V_ = w, V
        self._parts = None

    # ------------------------------------------------------------------ scoring
    def _row_parts(self, M: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        M = int64_indices(M)
        bias, Q = np.empty(M.shape[0]), np.empty((M.shape[0], self.V_.shape[1]))
        with numba_threads(self.num_threads):
            KF.fm_parts(M.indptr, M.indices, M.data, self.w_, self.V_, bias, Q)
        return bias, Q

    def _candidate_parts(self) -> tuple[np.ndarray, np.ndarray]:
        if getattr(self, "_parts", None) is None:
            Z = self.Xi_ if self.mode_ == "interactions" else self.candidates_
            b, Q = self._row_parts(Z)
            self._parts = (b.astype(np.float32), Q.astype(np.float32))
        return self._parts

    def score_candidates(self, contexts: Any) -> np.ndarray:
        """Scores (n_contexts, n_candidates) of every candidate for each context row (design mode:
        e.g. ``template.context_rows(events)``); the context's own terms, equal for all its
        candidates, are left out."""
        self._check_fitted()
        if self.mode_ != "design":
            raise ValueError("score_candidates needs a model fitted on a RankingDesign; use recommend")
        C = check_design(contexts, "contexts", n_features=len(self.w_))
        _, qc = self._row_parts(C)
        bz, Qz = self._candidate_parts()
        with single_threaded_blas():
            S = qc.astype(np.float32) @ Qz.T
        S += bz[None, :]
        return S

    def rank(self, contexts: Any, k: int = 10, exclude: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` candidate ids (and scores) per context row; ``exclude`` (a context × candidate
        sparse matrix) removes candidates, e.g. those already known."""
        S = self.score_candidates(contexts)
        if exclude is not None:
            E = sp.csr_matrix(exclude)
            rows = np.repeat(np.arange(E.shape[0]), np.diff(E.indptr))
            S[rows, E.indices] = -np.inf
        idx, sc = topk_rows(S, self._check_k(k, S.shape[1]))
        return self.candidate_ids_[idx], sc

    def _scores(self, user_idx: np.ndarray) -> np.ndarray:
        if self.mode_ != "interactions":
            raise ValueError("recommend needs a model fitted on Interactions; use rank for a RankingDesign")
        bu, qu = self._row_parts(self.Xu_[user_idx])
        bi, Qi = self._candidate_parts()
        with single_threaded_blas():
            S = qu.astype(np.float32) @ Qi.T
        S += bi[None, :]
        S += bu.astype(np.float32)[:, None]
        return S

    def recommend(self, users: Any, k: int = 10, filter_seen: bool = True, items: Sequence[Any] | None = None,
                  unknown: Literal["raise", "popular"] = "raise", batch_size: int = 2048) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items by ŷ(u, i) (see :meth:`Recommender.recommend`); needs a model fitted on
        Interactions."""
        self._check_fitted()
        if self.mode_ != "interactions":
            raise ValueError("recommend needs a model fitted on Interactions; use rank for a RankingDesign")
        return super().recommend(users, k, filter_seen=filter_seen, items=items, unknown=unknown, batch_size=batch_size)

    def item_vectors(self) -> np.ndarray | None:
        if getattr(self, "mode_", None) != "interactions":
            return None
        return self._candidate_parts()[1]

    # ------------------------------------------------------------------ persistence
    def _get_arrays(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {"w": self.w_, "V": self.V_, "groups": self.groups_}
        if self.mode_ == "interactions":
            out.update(super()._get_arrays())
            out.update(pair_arrays(self.Xu_, self.Xi_))
        else:
            Z = self.candidates_
            out.update({"Z_indptr": Z.indptr, "Z_indices": Z.indices, "Z_data": Z.data,
                        "candidate_ids": IdMap(self.candidate_ids_, "candidate").to_array()})
        return out

    def _get_extra(self) -> dict[str, Any]:
        return {"mode": self.mode_, "group_names": list(self.group_names_),
                "side_features": getattr(self, "side_features_", None)}

    @classmethod
    def _extra_spec(cls, params: dict[str, Any]) -> dict[str, Any]:
        return {"mode": ("interactions", "design"), "group_names": "~list", "side_features": "~dict?"}

    @classmethod
    def _array_specs(cls, params: dict[str, Any], extra: dict[str, Any], shapes: Any) -> dict[str, ArraySpec]:
        G = max(len(extra["group_names"]), 1)
        specs = {"w": floats("n_features"), "V": floats("n_features", int(params["factors"])),
                 "groups": index("n_features", hi=G)}
        if extra["mode"] == "interactions":
            specs.update(super()._array_specs(params, extra, shapes))
            specs.update(pair_specs())
        else:
            specs.update({"candidate_ids": ids("n_candidates"), "Z_indptr": indptr("n_candidates", of="Z_indices"),
                          "Z_indices": index("nnz_Z", hi="n_features"), "Z_data": floats("nnz_Z")})
        return specs

    @classmethod
    def _check_saved(cls, path: Any, arrays: dict[str, np.ndarray], extra: dict[str, Any],
                     params: dict[str, Any], sizes: dict[str, int]) -> None:
        if extra["mode"] == "interactions":
            check_pair_shapes(path, arrays, sizes)

    def _set_arrays(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        self.mode_ = extra["mode"]
        self.w_, self.V_, self.groups_ = arrays["w"], arrays["V"], arrays["groups"].astype(np.int64)
        self.group_names_ = extra["group_names"]
        self.side_features_ = extra.get("side_features")
        if self.mode_ == "interactions":
            super()._set_arrays(arrays, extra)
            self.Xu_, self.Xi_ = restore_pairs(arrays)
        else:
            self.candidate_ids_ = IdMap(arrays["candidate_ids"], "candidate").ids
            m = len(self.candidate_ids_)
            self.candidates_ = int64_indices(sp.csr_matrix((arrays["Z_data"], arrays["Z_indices"], arrays["Z_indptr"]),
                                                           shape=(m, len(self.w_))))
        self._parts = None


__all__ = ["BPRFactorizationMachine"]
