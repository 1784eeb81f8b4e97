"""The model protocol every tastebud algorithm follows.

``Model``            hyperparameters in the constructor (sklearn style), ``get_params``,
                     ``save(path)`` / ``load(path)`` (arrays + JSON; no pickling).
``Recommender``      + ``fit(data) -> self``, ``recommend(users, k)`` (external ids in and out,
                     seen items filtered, batched), ``similar_items(item, k)``.
``RatingPredictor``  + ``predict(users, items)`` with the field's fallback for unseen ids.

A subclass implements:
  * ``fit`` — calling ``self._set_interactions(train)`` (or setting ``users_``, ``items_``,
    ``seen_``, ``item_counts_`` itself) and learning its arrays;
  * ``_scores(user_idx) -> float32 array (len(user_idx), n_items)`` for ``recommend``;
  * ``_predict_indices(u, i)`` for rating models, where ``u``/``i`` are -1 for ids without
    training data (the subclass returns its best estimate without them: μ + known bias);
  * ``item_vectors()`` (for cosine ``similar_items``) or ``_similar_scores(i)``;
  * ``_get_arrays()`` / ``_set_arrays(arrays, extra)`` for its learned state (call super()).
Learned state ends with an underscore.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import types
import typing
import warnings
from typing import Any, ClassVar, Iterator, Literal, Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from .._params import checked_init, param_table, translate
from ..array_specs import ArraySpec, check_arrays, check_json, floats, ids, index, indptr
from ..data.idmap import IdMap, check_not_missing
from ..exceptions import FormatError, MissingExtraError, NotFittedError, UnknownIdError
from ..persistence import read_model_file, write_model_file

logger = logging.getLogger("tastebud")

Unknown = Literal["raise", "popular"]


class Model:
    """Base of all models: parameters, persistence, fitted checks."""

    registry_name: ClassVar[str] = ""
    #: small, fast settings used by ``make demo`` (merged over the defaults)
    demo_params: ClassVar[dict[str, Any]] = {}
    #: deprecated parameter names still accepted (with a FutureWarning): old name -> new name
    renamed_params: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:  # old names translated, unknown names listed (tastebud._params)
            cls.__init__ = checked_init(cls.__dict__["__init__"])

    # ------------------------------------------------------------------ parameters
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values()
                if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    @classmethod
    def param_table(cls) -> list[tuple[str, Any, str]]:
        """``(name, default, one-line description)`` of every hyperparameter, descriptions read
        from the class docstring's ``Parameters`` section (``tastebud models NAME`` prints it)."""
        return param_table(cls)

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments as given (the model's hyperparameters)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> "Model":
        valid = self._param_names()
        params = translate(type(self).__name__, self.renamed_params, params)
        bad = [k for k in params if k not in valid]
        if bad:
            raise ValueError(f"{type(self).__name__} has no parameter {bad[0]!r}; valid parameters: {', '.join(valid)}")
        for k, v in params.items():
            setattr(self, k, v)
        return self

    def __getattr__(self, name: str) -> Any:
        # only called for missing attributes: a deprecated parameter name reads the new one
        new = type(self).renamed_params.get(name)
        if new is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        warnings.warn(f"{type(self).__name__}.{name} is deprecated, use .{new}", FutureWarning, stacklevel=2)
        return getattr(self, new)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    @property
    def is_fitted(self) -> bool:
        return getattr(self, "fitted_", False)

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"{type(self).__name__} is not fitted yet; call fit() first")

    # ------------------------------------------------------------------ persistence
    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {}

    def _get_extra(self) -> dict[str, Any]:
        return {}

    def _set_arrays(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        pass

    # What a saved file of this class must hold, checked by ``load`` before ``_set_arrays``
    # (see tastebud.array_specs). Subclasses extend the parent's declaration.
    @classmethod
    def _extra_spec(cls, params: dict[str, Any]) -> dict[str, Any]:
        """Fields of ``meta.json``'s ``extra`` object (see :func:`tastebud.array_specs.check_json`)."""
        return {}

    @classmethod
    def _array_specs(cls, params: dict[str, Any], extra: dict[str, Any],
                     shapes: Mapping[str, tuple[int, ...]]) -> dict[str, ArraySpec]:
        """Spec of every saved array, in an order that binds each shape symbol before its use in
        a bound; ``shapes`` are the shapes found in the file (for layouts that depend on them)."""
        return {}

    @classmethod
    def _check_saved(cls, path: Any, arrays: dict[str, np.ndarray], extra: dict[str, Any],
                     params: dict[str, Any], sizes: dict[str, int]) -> None:
        """Invariants beyond the declared specs (raise FormatError); ``sizes`` are the bound symbols."""

    @classmethod
    def _saved_params(cls, path: Any, params: dict[str, Any]) -> dict[str, Any]:
        """The constructor arguments of a saved file: each name must be a parameter of the class or
        one of its deprecated aliases (mapped to the current name), each value of the type its
        annotation allows."""
        valid = cls._param_names()
        out: dict[str, Any] = {}
        for k, v in params.items():
            name = k if k in valid else cls.renamed_params.get(k)  # old files: no warning
            if name is None or name not in valid:
                raise FormatError(f"{path}: unknown parameter {k!r} for {cls.__name__}; parameters are {sorted(valid)}")
            if name in out:
                raise FormatError(f"{path}: parameter {name!r} is given twice (also under a deprecated name)")
            out[name] = v
            if not _json_depth_ok_finite(v):
                raise FormatError(f"{path}: parameter {name!r} holds a non-finite number ({str(v)[:60]})")
        try:
            hints = typing.get_type_hints(cls.__init__)
        except Exception:  # annotations that do not evaluate here: skip the type check
            hints = {}
        for k, v in out.items():
            if k in hints and not _json_matches(v, hints[k]):
                raise FormatError(f"{path}: parameter {k!r} = {str(v)[:60]!r} is not of type {_hint_name(hints[k])}")
        return out

    def save(self, path: str | os.PathLike) -> str:
        """Write the fitted model to ``path`` (a zip of ``.npy`` arrays and ``meta.json``), atomically."""
        self._check_fitted()
        name = self.registry_name or type(self).__name__
        return str(write_model_file(path, name, self.get_params(), self._get_arrays(), self._get_extra()))

    @classmethod
    def load(cls, path: str | os.PathLike, max_uncompressed: int | None = None) -> "Model":
        """Load a model saved by :meth:`save`. ``Model.load`` dispatches on the stored class.

        The file is untrusted input: the container (sizes, CRCs, ``.npy`` headers, ``meta.json``)
        and then the class's declared arrays (shapes, dtypes, index ranges, finiteness) are checked
        before anything is built from them, and any defect raises :class:`FormatError` naming the
        file and the member. ``max_uncompressed`` caps the bytes read (default: 16× the file size,
        at least 64 MiB; ``$TASTEBUD_MAX_UNCOMPRESSED``), see :mod:`tastebud.persistence`.
        """
        from . import registry

        meta, arrays = read_model_file(path, max_uncompressed)
        try:
            klass = registry.get(meta["class"])
        except KeyError as e:
            raise FormatError(f"{path}: unknown model class {meta['class']!r}") from e
        if cls not in (Model, Recommender, RatingPredictor) and not issubclass(klass, cls):
            raise FormatError(f"{path} holds a {klass.__name__}, not a {cls.__name__}")
        params = klass._saved_params(path, meta["params"])
        extra = meta["extra"]
        with _restoring(path, klass, "its parameters are invalid"):
            obj = klass(**params)
            if hasattr(obj, "_check_params"):
                obj._check_params()  # the model's own validation of its hyperparameters
        params = obj.get_params()  # with the defaults of parameters the file does not name
        check_json(path, "extra", extra, klass._extra_spec(params))
        with _restoring(path, klass, "its layout is invalid"):
            specs = klass._array_specs(params, extra, {k: a.shape for k, a in arrays.items()})
        sizes = check_arrays(path, arrays, specs)
        with _restoring(path, klass, "its arrays are inconsistent"):
            klass._check_saved(path, arrays, extra, params, sizes)
        with _restoring(path, klass, "cannot restore the model"):
            obj._set_arrays(arrays, extra)
        obj.fitted_ = True
        return obj


@contextlib.contextmanager
def _restoring(path: Any, klass: type, what: str) -> Iterator[None]:
    """Errors while building a model from a checked file are still the file's fault: FormatError."""
    try:
        yield
    except FormatError as e:
        if str(e).startswith(str(path)):
            raise
        raise FormatError(f"{path}: {e}") from None
    except MissingExtraError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RuntimeError, OverflowError,
            ZeroDivisionError) as e:
        raise FormatError(f"{path}: {what} for a {klass.__name__} ({type(e).__name__}: {e})") from e


def torch_state_specs(build: Any, prefix: str) -> dict[str, ArraySpec]:
    """Specs of a saved ``state_dict`` (members ``prefix + key``): the module ``build()`` makes,
    built on torch's "meta" device so that no weights are allocated whatever the parameters say;
    every entry must then have exactly its shape and hold finite numbers."""
    import torch

    with torch.device("meta"):
        net = build()
    return {prefix + k: floats(*t.shape) if t.dtype.is_floating_point else ArraySpec("number", tuple(t.shape))
            for k, t in net.state_dict().items()}


def _json_matches(v: Any, hint: Any) -> bool:
    """Whether the JSON value ``v`` can be a value of the annotation ``hint`` (unknown hints match)."""
    if hint is Any or hint is object:
        return True
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_json_matches(v, a) for a in args)
    if hint is type(None) or hint is None:
        return v is None
    if origin is Literal:
        return any(v == a and type(v) is type(a) for a in args)
    if hint is bool:
        return isinstance(v, bool)
    if hint is int:
        return isinstance(v, int) and not isinstance(v, bool)
    if hint is float:
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if hint is str:
        return isinstance(v, str)
    import collections.abc as cabc

    if hint in (list, tuple) or origin in (list, tuple, cabc.Sequence):
        if not isinstance(v, list):
            return False
        if args and origin is not tuple:
            return all(_json_matches(x, args[0]) for x in v)
        return True
    if hint is dict or origin in (dict, cabc.Mapping):
        return isinstance(v, dict)
    return True


def _json_depth_ok_finite(v: Any) -> bool:
    if isinstance(v, float):
        return bool(np.isfinite(v))
    if isinstance(v, list):
        return all(_json_depth_ok_finite(x) for x in v)
    if isinstance(v, dict):
        return all(_json_depth_ok_finite(x) for x in v.values())
    return True


def _hint_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


class Recommender(Model):
    """A model over users × items that ranks items for users."""

    users_: IdMap
    items_: IdMap
    seen_: sp.csr_matrix  # binary user × item training matrix (stored with the model)
    item_counts_: np.ndarray  # training interactions per item (popularity fallback)

    # ------------------------------------------------------------------ fit helpers
    def _set_interactions(self, users: IdMap, items: IdMap, seen: sp.spmatrix) -> None:
        s = sp.csr_matrix(seen, dtype=np.float32, copy=True)  # never binarise the caller's matrix
        s.sort_indices()
        s.data[:] = 1.0
        self.users_, self.items_, self.seen_ = users, items, s
        self.item_counts_ = np.bincount(s.indices, minlength=s.shape[1]).astype(np.int64)
        self.user_counts_ = np.diff(s.indptr).astype(np.int64)

    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {
            "users_ids": self.users_.to_array(),
            "items_ids": self.items_.to_array(),
            "seen_indptr": self.seen_.indptr.astype(np.int64),
            "seen_indices": self.seen_.indices.astype(np.int64),
        }

    @classmethod
    def _array_specs(cls, params: dict[str, Any], extra: dict[str, Any],
                     shapes: Mapping[str, tuple[int, ...]]) -> dict[str, ArraySpec]:
        return {"users_ids": ids("n_users"), "items_ids": ids("n_items"),
                "seen_indptr": indptr("n_users", of="seen_indices"), "seen_indices": index("nnz_seen", hi="n_items")}

    def _set_arrays(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        users = IdMap(arrays["users_ids"], "user")
        items = IdMap(arrays["items_ids"], "item")
        ind = arrays["seen_indices"]
        seen = sp.csr_matrix((np.ones(len(ind), dtype=np.float32), ind, arrays["seen_indptr"]), shape=(len(users), len(items)))
        self._set_interactions(users, items, seen)

    @property
    def n_users(self) -> int:
        self._check_fitted()
        return len(self.users_)

    @property
    def n_items(self) -> int:
        self._check_fitted()
        return len(self.items_)

    # ------------------------------------------------------------------ scoring
    def _scores(self, user_idx: np.ndarray) -> np.ndarray:
        """Dense scores (len(user_idx), n_items); higher is better."""
        raise NotImplementedError

    def _popularity_scores(self, n: int) -> np.ndarray:
        return np.broadcast_to(self.item_counts_.astype(np.float32), (n, len(self.item_counts_)))

    def _empty_history_scores(self) -> np.ndarray:
        """Scores for a new user's history without any known item: training popularity (the
        documented fallback of every ``recommend_for_history``), with a warning."""
        import warnings

        warnings.warn(f"{type(self).__name__}.recommend_for_history: the history has no item known to the "
                      "model; ranked by popularity", UserWarning, stacklevel=3)
        return np.array(self._popularity_scores(1)[0], dtype=np.float32)

    def recommend(
        self,
        users: Any,
        k: int = 10,
        filter_seen: bool = True,
        items: Sequence[Any] | None = None,
        unknown: Unknown = "raise",
        batch_size: int = 2048,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items for each of ``users`` (external ids).

        Returns ``(ids, scores)``, two arrays of shape ``(len(users), k)``, best first. Items the
        user interacted with in training are excluded when ``filter_seen``; ``items`` restricts the
        candidates. A row with fewer than ``k`` candidates left is padded with ``None`` ids and
        ``nan`` scores (the id array is then of dtype object). ``unknown="popular"`` ranks by
        training popularity for users the model has never seen instead of raising
        :class:`UnknownIdError`. A scalar ``users`` gives 1-D arrays.
        """
        self._check_fitted()
        check_not_missing(users, "users")
        scalar = np.ndim(users) == 0 and not isinstance(users, (list, tuple))
        u = self.users_.index([users] if scalar else users, missing="mask")
        if unknown == "raise" and (u < 0).any():
            ext = np.asarray([users] if scalar else list(users), dtype=object)
            raise UnknownIdError("user", ext[u < 0].tolist())
        if unknown not in ("raise", "popular"):
            raise ValueError(f"unknown must be 'raise' or 'popular', got {unknown!r}")
        ids, scores = self._topk(u, k, filter_seen, items, batch_size)
        if scalar:
            return ids[0], scores[0]
        return ids, scores

    def _candidates(self, items: Sequence[Any] | None) -> np.ndarray | None:
        if items is None:
            return None
        cand = np.unique(self.items_.index(items))
        if len(cand) == 0:
            raise ValueError("items= is empty: no candidate items to rank")
        return cand

    @staticmethod
    def _select(S: np.ndarray, cand: np.ndarray | None, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` item indices and scores per row of ``S``, among ``cand`` when given."""
        if cand is None:
            return topk_rows(S, k)
        idx, sc = topk_rows(S[:, cand], k)
        return cand[idx], sc

    def _check_k(self, k: int, n_cand: int) -> int:
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        if k > n_cand:
            raise ValueError(f"k={k} exceeds the number of candidate items ({n_cand})")
        return int(k)

    def _topk(self, u: np.ndarray, k: int, filter_seen: bool, items: Any, batch_size: int,
              score_fn: Any = None) -> tuple[np.ndarray, np.ndarray]:
        cand = self._candidates(items)
        n_items = len(self.items_)
        k = self._check_k(k, n_items if cand is None else len(cand))
        n = len(u)
        out_idx = np.empty((n, k), dtype=np.int64)
        out_sc = np.empty((n, k), dtype=np.float32)
        score_fn = score_fn or self._scores
        for start in range(0, n, batch_size):
            ub = u[start:start + batch_size]
            known = ub >= 0
            S = np.empty((len(ub), n_items), dtype=np.float32)
            if known.any():
                S[known] = score_fn(ub[known])
            if (~known).any():
                S[~known] = self._popularity_scores(int((~known).sum()))
            if filter_seen and known.any():
                seen = self.seen_[ub[known]]
                rows = np.repeat(np.flatnonzero(known), np.diff(seen.indptr))
                S[rows, seen.indices] = -np.inf
            idx, sc = self._select(S, cand, k)
            out_idx[start:start + len(ub)] = idx
            out_sc[start:start + len(ub)] = sc
        return self._to_external(out_idx, out_sc)

    def _to_external(self, idx: np.ndarray, sc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pad = ~np.isfinite(sc)
        ids = self.items_.ids[idx]
        if pad.any():
            ids = ids.astype(object)
            ids[pad] = None
            sc = sc.astype(np.float32)
            sc[pad] = np.nan
        return ids, sc

    # ------------------------------------------------------------------ item similarity
    def item_vectors(self) -> np.ndarray | None:
        """Item factor matrix (n_items, d) when the model has one."""
        return None

    def _similar_scores(self, i: int) -> np.ndarray:
        V = self.item_vectors()
        if V is None:
            raise NotImplementedError(f"{type(self).__name__} has no item vectors for similar_items")
        V = np.asarray(V, dtype=np.float32)
        norms = np.linalg.norm(V, axis=1)
        norms[norms == 0] = 1.0
        return (V @ V[i]) / (norms * norms[i])

    def similar_items(self, item: Any, k: int = 10, filter_items: Sequence[Any] | None = None,
                      items: Sequence[Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` items most similar to ``item`` (cosine of item vectors unless the model says
        otherwise), excluding ``item`` itself and any of ``filter_items``; ``items`` restricts candidates."""
        self._check_fitted()
        check_not_missing(item, "item")
        i = int(self.items_.index([item])[0])
        s = np.asarray(self._similar_scores(i), dtype=np.float32).copy()
        s[i] = -np.inf
        if filter_items is not None:
            s[self.items_.index(filter_items)] = -np.inf
        cand = self._candidates(items)
        k = self._check_k(k, (len(self.items_) if cand is None else len(cand)) - 1 + int(cand is not None and i not in cand))
        idx, sc = self._select(s[None, :], cand, k)
        ids, sc = self._to_external(idx, sc)
        return ids[0], sc[0]


class RatingPredictor(Recommender):
    """A recommender that predicts ratings."""

    #: number of (user, item) pairs in the last ``predict`` call answered by the fallback
    n_fallbacks_: int = 0

    def predict(self, users: Any, items: Any, unknown: Literal["fallback", "raise"] = "fallback") -> np.ndarray:
        """Predicted ratings for pairs ``(users[j], items[j])``.

        A user or item with no training data is the field's usual case (the official MovieLens-100K
        test folds hold items absent from their training folds): by default the model answers
        with its best estimate without it (global mean plus whatever bias is known) and counts
        these pairs in ``n_fallbacks_``; ``unknown="raise"`` raises :class:`UnknownIdError` instead.
        """
        self._check_fitted()
        scalar = np.ndim(users) == 0 and np.ndim(items) == 0
        uu = [users] if np.ndim(users) == 0 else users
        ii = [items] if np.ndim(items) == 0 else items
        if len(uu) != len(ii):
            raise ValueError(f"users and items must have the same length, got {len(uu)} and {len(ii)}")
        check_not_missing(uu, "users")  # None/NaN is a caller's bug, not an unseen id: never the fallback
        check_not_missing(ii, "items")
        u = self.users_.index(uu, missing="mask")
        i = self.items_.index(ii, missing="mask")
        # ids present in the maps but without training interactions count as unknown
        u = np.where((u >= 0) & (self.user_counts_[np.maximum(u, 0)] > 0), u, -1)
        i = np.where((i >= 0) & (self.item_counts_[np.maximum(i, 0)] > 0), i, -1)
        if unknown == "raise":
            if (u < 0).any():
                raise UnknownIdError("user", np.asarray(uu, dtype=object)[u < 0].tolist())
            if (i < 0).any():
                raise UnknownIdError("item", np.asarray(ii, dtype=object)[i < 0].tolist())
        elif unknown != "fallback":
            raise ValueError(f"unknown must be 'fallback' or 'raise', got {unknown!r}")
        self.n_fallbacks_ = int(((u < 0) | (i < 0)).sum())
        if self.n_fallbacks_:
            logger.debug("%s.predict: %d pair(s) with unseen user/item answered by fallback", type(self).__name__, self.n_fallbacks_)
        out = np.asarray(self._predict_indices(u, i), dtype=np.float64)
        return out[0] if scalar else out

    def _predict_indices(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def topk_rows(S: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the ``k`` largest entries of each row, sorted descending
    (deterministic: ties are ordered by index, also across the k-th place; NaN ranks last).
    Runs the parallel heap kernel in ``tastebud.kernels.topk``."""
    from ..kernels.topk import topk_rows_kernel

    S = np.ascontiguousarray(S)
    if S.dtype not in (np.float32, np.float64):
        S = S.astype(np.float64)
    n, m = S.shape
    k = min(int(k), m)
    idx = np.empty((n, k), dtype=np.int64)
    val = np.empty((n, k), dtype=S.dtype)
    if n and k:
        topk_rows_kernel(S, k, idx, val)
    return idx, val


def topk_rows_reference(S: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Plain numpy equivalent of :func:`topk_rows` (a stable full sort), for tests."""
    S2 = np.where(np.isnan(S), -np.inf, S)
    idx = np.argsort(-S2, axis=1, kind="stable")[:, :k]
    return idx.astype(np.int64), np.take_along_axis(S2, idx, axis=1).astype(S.dtype)
