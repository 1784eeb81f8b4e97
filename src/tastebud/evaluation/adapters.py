"""A basket model (``recommend(baskets, k)``, e.g. :class:`~tastebud.RuleRecommender`) seen as a
user recommender, so that :func:`~tastebud.evaluate` and the experiment runner can score it on an
interactions split: each user's training items are one basket."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["BasketsAsUsers", "user_baskets"]


def user_baskets(train: Any) -> Any:
    """Each user's training items as one basket (same item map as ``train``)."""
    from ..data import Baskets

    return Baskets.from_matrix(train.matrix, train.items)


class BasketsAsUsers:
    """``recommend(users, k)`` for the users of ``train`` by recommending for their training
    baskets; the basket model excludes the basket's own items, i.e. the user's seen items."""

    def __init__(self, model: Any, train: Any):
        self.model = model
        self.users_, self.items_ = train.users, train.items
        s = sp.csr_matrix(train.matrix, dtype=np.float32, copy=True)
        s.data[:] = 1.0
        s.eliminate_zeros()
        self.seen_ = s
        self.item_counts_ = np.bincount(s.indices, minlength=s.shape[1]).astype(np.int64)
        self.fitted_ = True

    def get_params(self) -> dict[str, Any]:
        return self.model.get_params()

    def recommend(self, users: Any, k: int = 10, filter_seen: bool = True, **_: Any) -> tuple[np.ndarray, np.ndarray]:
        if not filter_seen:
            raise ValueError("a basket model always excludes the basket's own items")
        u = self.users_.index(list(users))
        ids = self.items_.ids
        baskets = [ids[self.seen_.indices[self.seen_.indptr[x]:self.seen_.indptr[x + 1]]].tolist() for x in u]
        return self.model.recommend(baskets, k=k)
