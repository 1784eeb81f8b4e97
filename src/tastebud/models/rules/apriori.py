"""Apriori (Agrawal & Srikant, "Fast algorithms for mining association rules", VLDB 1994): the
level-wise reference miner, kept simple so that it is obviously correct.

Level k+1 candidates are unions of two frequent k-itemsets that share k−1 items and whose every
k-subset is frequent; each candidate is counted by intersecting the basket sets (one Python set
of basket indices per item). Use it on small data to check :class:`~tastebud.FPGrowth`; it gives the
same itemsets, the same DataFrame format and the same rules.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from ...data.baskets import as_baskets
from ...exceptions import DataError, NotFittedError
from .association import association_rules
from .fpgrowth import min_count_for, too_many_itemsets
from .limits import APRIORI_MAX_ITEMSETS, DEFAULT_MAX_RULES, check_limit, fitting_count


class Apriori:
    """Level-wise frequent itemset miner (reference implementation; not registered/persisted).

    ``min_support``: a fraction in (0, 1] (threshold ``ceil(min_support·n)``) or an int count >= 1;
    ``max_len``: longest itemset (None: no limit); ``max_itemsets``: most itemsets to hold
    (default 1,000,000: Apriori keeps a Python frozenset and a dict entry per itemset, several
    hundred bytes each); past it ``fit`` raises
    :class:`~tastebud.exceptions.ResultTooLargeError` with the count and a ``min_support`` that
    fits. ``max_rules``: most candidate rules ``rules()`` may build (see
    :func:`~tastebud.models.rules.association.association_rules`). None: no limit.
    """

    def __init__(self, min_support: float | int = 0.5, max_len: int | None = None,
                 max_itemsets: int | None = APRIORI_MAX_ITEMSETS, max_rules: int | None = DEFAULT_MAX_RULES):
        self.min_support = min_support
        self.max_len = max_len
        self.max_itemsets = max_itemsets
        self.max_rules = max_rules

    def get_params(self) -> dict[str, Any]:
        return {"min_support": self.min_support, "max_len": self.max_len, "max_itemsets": self.max_itemsets,
                "max_rules": self.max_rules}

    def fit(self, data: Any) -> "Apriori":
        b = as_baskets(data)
        n = len(b)
        if n == 0:
            raise DataError("Apriori.fit: no baskets")
        min_count = min_count_for(self.min_support, n)
        limit = check_limit(self.max_itemsets, "max_itemsets")
        check_limit(self.max_rules, "max_rules")
        ids = b.items.ids.tolist()
        cover: dict[int, set[int]] = {}
        m = b.matrix.tocsc()
        for i in range(b.n_items):
            cover[i] = set(m.indices[m.indptr[i]:m.indptr[i + 1]].tolist())
        level = {frozenset([i]): len(c) for i, c in cover.items() if len(c) >= min_count}
        found: dict[frozenset, int] = dict(level)
        if limit and len(found) > limit:
            first = max(min_count + 1, fitting_count(np.fromiter(found.values(), np.int64, len(found)), None, limit)[0])
            raise too_many_itemsets("Apriori.fit", b, min_count, self.max_len, limit, len(found), first)
        k = 1
        while level and (self.max_len is None or k < self.max_len):
            prev = sorted(tuple(sorted(s)) for s in level)
            cands = set()
            for a, b2 in combinations(prev, 2):
                if a[:-1] == b2[:-1]:
                    c = frozenset(a) | frozenset(b2)
                    if all(frozenset(s) in level for s in combinations(sorted(c), k)):
                        cands.add(c)
            level = {}
            for c in cands:
                items = list(c)
                common = set.intersection(*(cover[i] for i in items))
                if len(common) >= min_count:
                    level[c] = len(common)
            found.update(level)
            k += 1
            if limit and len(found) > limit:
                first = max(min_count + 1, fitting_count(np.fromiter(found.values(), np.int64, len(found)), None, limit)[0])
                raise too_many_itemsets("Apriori.fit", b, min_count, self.max_len, limit, len(found), first)
        self.n_baskets_ = n
        self.min_count_ = min_count
        self.counts_ = {frozenset(ids[i] for i in s): c for s, c in found.items()}
        self.fitted_ = True
        return self

    def itemsets(self) -> pd.DataFrame:
        """``support``, ``itemsets`` (frozensets of external ids), ``count``; sorted by descending
        count, then length."""
        if not getattr(self, "fitted_", False):
            raise NotFittedError("Apriori is not fitted yet; call fit() first")
        sets = sorted(self.counts_.items(), key=lambda kv: (-kv[1], len(kv[0])))
        cnt = np.array([c for _, c in sets], dtype=np.int64)
        return pd.DataFrame({"support": cnt / self.n_baskets_, "itemsets": [s for s, _ in sets], "count": cnt})

    def rules(self, metric: str = "confidence", min_threshold: float = 0.5, *, single_consequent: bool = False) -> pd.DataFrame:
        return association_rules(self.itemsets(), metric=metric, min_threshold=min_threshold,
                                 single_consequent=single_consequent, max_rules=self.max_rules)
