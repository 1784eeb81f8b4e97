"""Baselines: ``Popularity`` (top-N) and ``BaselinePredictor`` (Koren's baseline estimates)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...array_specs import ArraySpec, floats
from ...data.interactions import Interactions, as_interactions
from ...exceptions import DataError
from ..base import RatingPredictor, Recommender


def _check_nonempty(train: Interactions, who: str) -> None:
    if train.nnz == 0:
        raise DataError(f"{who}.fit: the training data has no interactions")


class Popularity(Recommender):
    """Recommend the items with the most training interactions (ties: lower index first).

    score(u, i) = |{v : (v, i) observed}|   (or the sum of interaction values with ``weighted=True``)

    Parameters
    ----------
    weighted : rank by the sum of interaction values instead of the number of users.
    """

    registry_name = "popularity"

    def __init__(self, weighted: bool = False):
        self.weighted = weighted

    def fit(self, data: Any) -> "Popularity":
        train = as_interactions(data)
        _check_nonempty(train, "Popularity")
        self._set_interactions(train.users, train.items, train.matrix)
        if self.weighted:
            self.popularity_ = np.asarray(train.matrix.sum(axis=0)).ravel().astype(np.float32)
        else:
            self.popularity_ = self.item_counts_.astype(np.float32)
        self.fitted_ = True
        return self

    def _scores(self, user_idx: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.popularity_, (len(user_idx), len(self.popularity_))).copy()

    def _popularity_scores(self, n: int) -> np.ndarray:
        return self._scores(np.empty(n))

    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {**super()._get_arrays(), "popularity": self.popularity_}

    @classmethod
    def _array_specs(cls, params: dict[str, Any], extra: dict[str, Any], shapes: Any) -> dict[str, ArraySpec]:
        return {**super()._array_specs(params, extra, shapes), "popularity": floats("n_items")}

    def _set_arrays(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        super()._set_arrays(arrays, extra)
        self.popularity_ = arrays["popularity"]


class BaselinePredictor(RatingPredictor):
    """Baseline estimates r̂ᵤᵢ = μ + bᵤ + bᵢ (Koren, "Factor in the neighbors", TKDD 2010, §2.1).

    Biases minimise Σ (rᵤᵢ − μ − bᵤ − bᵢ)² + λᵤ Σ bᵤ² + λᵢ Σ bᵢ², solved by alternating
    least squares as Surprise's ``BaselineOnly`` does (same defaults: ``reg_u=15``, ``reg_i=10``,
    10 epochs), each half-step in closed form:

        bᵢ = Σ_{u∈U(i)} (rᵤᵢ − μ − bᵤ) / (λᵢ + |U(i)|),   bᵤ = Σ_{i∈I(u)} (rᵤᵢ − μ − bᵢ) / (λᵤ + |I(u)|)

    For an unseen user or item the unknown bias is 0 (the prediction is μ plus the known bias).
    ``recommend`` ranks by μ + bᵤ + bᵢ, i.e. by item bias (a damped-mean popularity).

    Parameters
    ----------
    reg_u : λᵤ, L2 weight of the user biases.
    reg_i : λᵢ, L2 weight of the item biases.
    epochs : ALS sweeps (each solves all item biases, then all user biases).
    """

    registry_name = "baseline"
    renamed_params = {"n_epochs": "epochs"}

    def __init__(self, reg_u: float = 15.0, reg_i: float = 10.0, epochs: int = 10):
        self.reg_u = reg_u
        self.reg_i = reg_i
        self.epochs = epochs

    def fit(self, data: Any) -> "BaselinePredictor":
        train = as_interactions(data)
        _check_nonempty(train, "BaselinePredictor")
        if self.reg_u < 0 or self.reg_i < 0:
            raise ValueError(f"regularisation must be >= 0, got reg_u={self.reg_u}, reg_i={self.reg_i}")
        R = train.matrix.astype(np.float64)
        self._set_interactions(train.users, train.items, R)
        mu = float(R.data.mean())
        rows = np.repeat(np.arange(R.shape[0]), np.diff(R.indptr))
        cols = R.indices
        r = R.data - mu
        nu, ni = R.shape
        cu = np.bincount(rows, minlength=nu).astype(np.float64)
        ci = np.bincount(cols, minlength=ni).astype(np.float64)
        bu = np.zeros(nu)
        bi = np.zeros(ni)
        for _ in range(int(self.epochs)):
            bi = np.bincount(cols, weights=r - bu[rows], minlength=ni) / (self.reg_i + ci)
            bu = np.bincount(rows, weights=r - bi[cols], minlength=nu) / (self.reg_u + cu)
        self.global_mean_ = mu
        self.user_bias_ = bu
        self.item_bias_ = bi
        self.fitted_ = True
        return self

    def _predict_indices(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        out = np.full(len(u), self.global_mean_)
        out += np.where(u >= 0, self.user_bias_[np.maximum(u, 0)], 0.0)
        out += np.where(i >= 0, self.item_bias_[np.maximum(i, 0)], 0.0)
        return out

    def _scores(self, user_idx: np.ndarray) -> np.ndarray:
        s = self.global_mean_ + self.user_bias_[user_idx][:, None] + self.item_bias_[None, :]
        return s.astype(np.float32)

    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {**super()._get_arrays(), "global_mean": np.array(self.global_mean_),
                "user_bias": self.user_bias_, "item_bias": self.item_bias_}

    @classmethod
    def _array_specs(cls, params: dict[str, Any], extra: dict[str, Any], shapes: Any) -> dict[str, ArraySpec]:
        return {**super()._array_specs(params, extra, shapes), "global_mean": floats(),
                "user_bias": floats("n_users"), "item_bias": floats("n_items")}

    def _set_arrays(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        super()._set_arrays(arrays, extra)
        self.global_mean_ = float(arrays["global_mean"])
        self.user_bias_ = arrays["user_bias"]
        self.item_bias_ = arrays["item_bias"]
