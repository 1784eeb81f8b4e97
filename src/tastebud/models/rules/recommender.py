"""``RuleRecommender``: "customers who bought A and B also bought C" from association rules.

Fit mines frequent itemsets with :class:`~tastebud.FPGrowth` and keeps the rules A → c with a
one-item consequent and confidence >= ``min_confidence``. For a basket B the score of an item c
not in B is the best rule that fires:

    score(c | B) = max { metric(A → c) : A ⊆ B, A → c a kept rule }     (metric: confidence or lift)

Items are ranked by score (ties: the more popular item first); when fewer than ``k`` items are
reached by rules and ``fill_popular=True``, the list is completed by the most popular remaining
items (scored below every rule-based item). Matching rules are found by walking the
set-enumeration trie of frequent itemsets along the basket's items, so only frequent subsets of
the basket are visited (Agrawal, Imieliński & Swami 1993; Sarwar et al. 2000 for rules as a
recommender).

``evaluate_hidden_item`` measures the recommender by hiding one random item of each test basket
(hit rate@k, MRR@k) next to a popularity baseline.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ...array_specs import ArraySpec, counts, floats, index, indptr
from ...data.baskets import Baskets, as_baskets
from ...data.idmap import IdMap
from ...exceptions import DataError
from ...kernels import fpgrowth as K
from ..base import Model
from .fpgrowth import FPGrowth, check_trie, trie_specs
from .limits import DEFAULT_MAX_ITEMSETS, DEFAULT_MAX_RULES


class RuleRecommender(Model):
    """Basket completion from association rules (one-item consequents).

    Parameters
    ----------
    min_support : fraction of baskets in (0, 1] or absolute count >= 1, as :class:`FPGrowth`.
    min_confidence : keep rules A → c with confidence at least this.
    max_len : longest itemset mined, so antecedents have at most ``max_len - 1`` items (None: no limit).
    metric : ``"confidence"`` or ``"lift"``, the score of a consequent.
    fill_popular : complete short lists with the most popular remaining items.
    max_itemsets, max_rules : the size guards of :class:`FPGrowth` (the model keeps its rules in
        memory, 24 bytes each); exceeding one raises :class:`~tastebud.exceptions.ResultTooLargeError`
        naming a ``min_support`` that fits.
    """

    registry_name = "rules"
    demo_params = {"min_support": 0.005, "min_confidence": 0.1}

    def __init__(self, min_support: float | int = 0.001, min_confidence: float = 0.1, max_len: int | None = 4,
                 metric: str = "confidence", fill_popular: bool = True,
                 max_itemsets: int | None = DEFAULT_MAX_ITEMSETS, max_rules: int | None = DEFAULT_MAX_RULES):
        self.min_support = min_support
        self.min_confidence = min_confidence
        self.max_len = max_len
        self.metric = metric
        self.fill_popular = fill_popular
        self.max_itemsets = max_itemsets
        self.max_rules = max_rules

    def _fpgrowth(self) -> FPGrowth:
        return FPGrowth(min_support=self.min_support, max_len=self.max_len, max_itemsets=self.max_itemsets,
                        max_rules=self.max_rules)

    def fit(self, data: Any) -> "RuleRecommender":
        if self.metric not in ("confidence", "lift"):
            raise ValueError(f"metric must be 'confidence' or 'lift', got {self.metric!r}")
        if not (0.0 <= float(self.min_confidence) <= 1.0):
            raise ValueError(f"min_confidence must be in [0, 1], got {self.min_confidence!r}")
        b = as_baskets(data)
        fp = self._fpgrowth().fit(b)
        ra = fp.rule_arrays("confidence", float(self.min_confidence), single_consequent=True)
        n = float(fp.n_baskets_)
        conf = ra.count / ra.antecedent_count
        score = conf if self.metric == "confidence" else conf / (ra.consequent_count / n)
        ant = ra.antecedent + 1  # trie nodes
        cons = fp.t_item_[ra.consequent + 1].astype(np.int64)  # consequent ranks
        o = np.lexsort((cons, ant))
        n_nodes = len(fp.t_parent_)
        self.items_: IdMap = b.items
        self.fp_ = fp
        self.r_indptr_ = np.zeros(n_nodes + 1, dtype=np.int64)
        np.cumsum(np.bincount(ant, minlength=n_nodes), out=self.r_indptr_[1:])
        self.r_cons_ = cons[o]
        self.r_score_ = score[o].astype(np.float64)
        self.item_counts_ = b.item_counts().astype(np.int64)
        self.n_rules_ = int(len(o))
        self._prepare()
        self.fitted_ = True
        return self

    def _prepare(self) -> None:
        fp = self.fp_
        n_items = len(self.items_)
        self._rank_of = np.full(n_items, -1, dtype=np.int64)
        self._rank_of[fp.rank_item_] = np.arange(len(fp.rank_item_))
        self._pop_order = np.lexsort((np.arange(n_items), -self.item_counts_))  # most popular first
        self._max_ant = int(self.max_len - 1) if self.max_len else 1 << 30

    # ------------------------------------------------------------------ recommend
    def recommend(self, baskets: Sequence[Sequence[Any]], k: int = 10, unknown: str = "ignore") -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items for each basket in ``baskets`` (a list of item lists): ``(ids, scores)``
        arrays of shape ``(len(baskets), k)``, best first, items already in the basket excluded.
        Rows with fewer than ``k`` candidates are padded with ``None`` ids and ``nan`` scores; ``k`` above
        the number of items is an error, as for every model.
        Popularity fill-ins get scores in (-1, 0], below any rule score. Items never seen in
        training are ignored (``unknown="ignore"``) or raise (``unknown="raise"``)."""
        self._check_fitted()
        if unknown not in ("ignore", "raise"):
            raise ValueError(f"unknown must be 'ignore' or 'raise', got {unknown!r}")
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        if k > len(self.items_):
            raise ValueError(f"k={k} exceeds the number of candidate items ({len(self.items_)})")
        k = int(k)
        if isinstance(baskets, Baskets):
            lists = baskets.to_lists()
        else:
            lists = [list(b) if not isinstance(b, (str, bytes)) else [b] for b in baskets]
        n_items = len(self.items_)
        idx_rows = []
        for b in lists:
            if not b:
                idx_rows.append(np.empty(0, dtype=np.int64))
                continue
            ix = self.items_.index(b, missing="mask" if unknown == "ignore" else "raise")
            idx_rows.append(np.unique(ix[ix >= 0]))
        # ranks of frequent basket items, sorted descending (canonical trie order)
        rk_rows = []
        for ix in idx_rows:
            r = self._rank_of[ix]
            rk_rows.append(np.sort(r[r >= 0])[::-1])
        ptr = np.zeros(len(lists) + 1, dtype=np.int64)
        np.cumsum([len(r) for r in rk_rows], out=ptr[1:])
        flat = np.concatenate(rk_rows).astype(np.int32) if rk_rows else np.empty(0, np.int32)
        fp = self.fp_
        top_r, top_s = K.rules_recommend(ptr, flat, fp.t_item_, fp.t_first_, fp.t_nchild_, self.r_indptr_, self.r_cons_,
                                         self.r_score_, len(fp.rank_item_), k, self._max_ant)
        ids = np.empty((len(lists), k), dtype=object)
        scores = np.full((len(lists), k), np.nan)
        pop = self._pop_order
        maxc = max(1, int(self.item_counts_.max())) if n_items else 1
        for row in range(len(lists)):
            got = top_r[row][top_r[row] >= 0]
            chosen = fp.rank_item_[got].tolist()
            sc = top_s[row][: len(got)].tolist()
            if self.fill_popular and len(chosen) < k:
                excl = set(chosen) | set(idx_rows[row].tolist())
                for it in pop.tolist():
                    if len(chosen) >= k:
                        break
                    if it not in excl:
                        chosen.append(it)
                        sc.append(self.item_counts_[it] / maxc - 1.0)
            ids[row, : len(chosen)] = self.items_.ids[np.asarray(chosen, dtype=np.int64)].tolist() if chosen else []
            scores[row, : len(sc)] = sc
        if all(v is not None for v in ids.ravel()) and ids.size:
            ids = np.asarray(ids.tolist(), dtype=self.items_.ids.dtype)
        return ids, scores

    def recommend_for_history(self, items: Sequence[Any], k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items to add to one basket ``items`` (1-D ``(ids, scores)``)."""
        ids, scores = self.recommend([list(items)], k=k)
        return ids[0], scores[0]

    def explain(self, basket: Sequence[Any], targets: Sequence[Any]) -> list[dict[str, Any]]:
        """The rule behind each of ``targets`` for ``basket``: the kept rule A → c with A ⊆ basket
        whose ``metric`` is highest (the one that gave c its score in :meth:`recommend`), as
        ``{"item", "rule": {"antecedent": [...], "consequent", "support", "confidence", "lift"}}``;
        ``"rule": None`` for a target no rule reaches (a popularity fill-in). Unknown basket items
        are ignored."""
        self._check_fitted()
        fp = self.fp_
        ix = self.items_.index(list(basket), missing="mask")
        in_basket = np.zeros(len(fp.rank_item_), dtype=bool)
        r = self._rank_of[ix[ix >= 0]]
        in_basket[r[r >= 0]] = True
        node_of_rule = np.repeat(np.arange(len(self.r_indptr_) - 1), np.diff(self.r_indptr_))
        n = float(fp.n_baskets_)
        out = []
        for c in self.items_.index(list(targets)).tolist():
            best = None
            rc = int(self._rank_of[c])
            for j in np.flatnonzero(self.r_cons_ == rc).tolist():
                node, ant = int(node_of_rule[j]), []
                while node > 0 and in_basket[fp.t_item_[node]]:
                    ant.append(int(fp.t_item_[node]))
                    node = int(fp.t_parent_[node])
                if node > 0 or not ant or len(ant) > self._max_ant:
                    continue  # the antecedent is not inside the basket
                if best is None or self.r_score_[j] > best[0]:
                    best = (float(self.r_score_[j]), int(node_of_rule[j]), ant)
            if best is None:
                out.append({"item": self.items_.ids[c].tolist(), "rule": None})
                continue
            _, node, ant = best
            ant_ids = self.items_.ids[fp.rank_item_[ant]].tolist()
            n_ant = float(fp.t_count_[node])
            n_both = float(fp.t_count_[fp._node(ant_ids + [self.items_.ids[c]])])
            conf = n_both / n_ant
            out.append({"item": self.items_.ids[c].tolist(),
                        "rule": {"antecedent": ant_ids, "consequent": self.items_.ids[c].tolist(),
                                 "support": n_both / n, "confidence": conf,
                                 "lift": conf / (float(self.item_counts_[c]) / n)}})
        return out

    def rules(self, **kw: Any):
        """The kept rules as a DataFrame (mlxtend columns)."""
        self._check_fitted()
        return self.fp_.rules("confidence", float(self.min_confidence), single_consequent=True, **kw)

    # ------------------------------------------------------------------ persistence
    def _get_arrays(self) -> dict[str, np.ndarray]:
        fa = {f"fp_{k}": v for k, v in self.fp_._get_arrays().items()}
        return {**fa, "r_indptr": self.r_indptr_, "r_cons": self.r_cons_, "r_score": self.r_score_,
                "item_counts": self.item_counts_}

    def _get_extra(self) -> dict[str, Any]:
        return {"fp": self.fp_._get_extra(), "n_rules": self.n_rules_}

    @classmethod
    def _extra_spec(cls, params: dict[str, Any]) -> dict[str, Any]:
        return {"fp": {"n_baskets": "int", "min_count": "int"}, "n_rules": "int"}

    @classmethod
    def _array_specs(cls, params: dict[str, Any], extra: dict[str, Any], shapes: Any) -> dict[str, ArraySpec]:
        return {**trie_specs("fp_"), "r_indptr": indptr("n_nodes", of="r_cons"),
                "r_cons": index("n_rules", hi="n_freq"), "r_score": floats("n_rules"), "item_counts": counts("n_items")}

    @classmethod
    def _check_saved(cls, path: Any, arrays: dict[str, np.ndarray], extra: dict[str, Any],
                     params: dict[str, Any], sizes: dict[str, int]) -> None:
        check_trie(path, arrays, "fp_", extra["fp"])

    def _set_arrays(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        fp = self._fpgrowth()
        fp._set_arrays({k[3:]: v for k, v in arrays.items() if k.startswith("fp_")}, extra["fp"])
        fp.fitted_ = True
        self.fp_ = fp
        self.items_ = fp.items_
        self.r_indptr_ = arrays["r_indptr"].astype(np.int64)
        self.r_cons_ = arrays["r_cons"].astype(np.int64)
        self.r_score_ = arrays["r_score"].astype(np.float64)
        self.item_counts_ = arrays["item_counts"].astype(np.int64)
        self.n_rules_ = int(extra["n_rules"])
        self._prepare()


def split_baskets(data: Any, test_size: float = 0.2, random_state: int = 0) -> tuple[list[list[Any]], list[list[Any]]]:
    """Random train/test split of whole baskets (lists of external ids)."""
    lists = as_baskets(data).to_lists()
    rng = np.random.default_rng(random_state)
    perm = rng.permutation(len(lists))
    n_test = int(round(test_size * len(lists)))
    test = [lists[i] for i in np.sort(perm[:n_test])]
    train = [lists[i] for i in np.sort(perm[n_test:])]
    return train, test


def evaluate_hidden_item(model: RuleRecommender, test: Any, k: int = 10, random_state: int = 0) -> dict[str, float]:
    """Hide one random item of every test basket with >= 2 items, recommend ``k`` items from the
    rest, and report ``hit_rate@k`` and ``mrr@k`` of the model and of a popularity baseline
    (most frequent training items not in the basket), plus ``n_baskets`` evaluated.
    Hidden items never seen in training count as misses."""
    model._check_fitted()
    lists = [list(dict.fromkeys(b)) for b in (as_baskets(test).to_lists() if not isinstance(test, list) else test)]
    rng = np.random.default_rng(random_state)
    queries, hidden = [], []
    for b in lists:
        if len(b) < 2:
            continue
        h = int(rng.integers(len(b)))
        hidden.append(b[h])
        queries.append(b[:h] + b[h + 1:])
    if not queries:
        raise DataError("evaluate_hidden_item: no test basket has at least 2 items")
    ids, _ = model.recommend(queries, k=k)
    # popularity baseline
    pop_ids = model.items_.ids[model._pop_order].tolist()
    res = {"n_baskets": float(len(queries))}
    for name, rows in (("rules", (list(r) for r in ids)), ("popularity", (_pop_topk(pop_ids, q, k) for q in queries))):
        hits = 0
        rr = 0.0
        for row, h in zip(rows, hidden):
            if h in row:
                hits += 1
                rr += 1.0 / (row.index(h) + 1)
        res[f"{name}_hit_rate@{k}"] = hits / len(queries)
        res[f"{name}_mrr@{k}"] = rr / len(queries)
    return res


def _pop_topk(pop_ids: list, basket: list, k: int) -> list:
    s = set(basket)
    out = []
    for it in pop_ids:
        if it not in s:
            out.append(it)
            if len(out) == k:
                break
    return out
