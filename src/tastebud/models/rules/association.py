"""Association rules A → C from frequent itemsets, with the interestingness measures of mlxtend.

For a rule A → C over n baskets, with s(X) = count(X) / n:

    support          s(A ∪ C)
    confidence       s(A ∪ C) / s(A)                       = P(C | A)
    lift             confidence / s(C)
    leverage         s(A ∪ C) − s(A) s(C)
    conviction       (1 − s(C)) / (1 − confidence)          (inf when confidence = 1)
    zhangs_metric    leverage / max(s(A ∪ C)(1 − s(A)), s(A)(s(C) − s(A ∪ C)))   (0 when the denominator is 0)
    jaccard          s(A ∪ C) / (s(A) + s(C) − s(A ∪ C))
    certainty        (confidence − s(C)) / (1 − s(C))      (0 when s(C) = 1)
    kulczynski       (P(C | A) + P(A | C)) / 2
    representativity 1.0 (mlxtend's share of baskets without missing values; tastebud has none)

Agrawal, Imieliński & Swami (1993), "Mining association rules between sets of items in large
databases"; Zhang (2000) for Zhang's metric. Column names are mlxtend's (``antecedents``,
``consequents``, ``antecedent support``, ``consequent support``, ...), so code written for
``mlxtend.frequent_patterns.association_rules`` reads the same.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from ...exceptions import ResultTooLargeError
from .fpgrowth import FPGrowth
from .limits import DEFAULT_MAX_RULES, RULE_FRAME_BYTES, check_limit, fitting_count, human_bytes, rule_weights
from .metrics import check_metric, rule_metrics


def _check_candidates(sets: list, support: np.ndarray, single_consequent: bool, limit: int) -> None:
    """Refuse more than ``limit`` candidate rules, naming a support that fits."""
    if not limit:
        return
    depth = np.fromiter((len(x) for x in sets), dtype=np.int64, count=len(sets))
    w = rule_weights(depth, single_consequent)
    total = float(w.sum())
    if total <= limit:
        return
    s, r = fitting_count(support, w, limit)
    raise ResultTooLargeError(
        f"association_rules: {int(total):,} candidate rules ({'one-item consequents' if single_consequent else 'every antecedent/consequent split'} "
        f"of {len(sets):,} itemsets) is more than max_rules={limit:,}; they would take about "
        f"{human_bytes(total * RULE_FRAME_BYTES)} or more. The itemsets with support >= {s:.6g} give at most "
        f"{int(r):,}, which fits. Or use single_consequent=True, FPGrowth(...).rules_to_parquet (streamed), or "
        "raise max_rules (None: no limit).")

def association_rules(
    itemsets: Any,
    metric: str = "confidence",
    min_threshold: float = 0.5,
    *,
    single_consequent: bool = False,
    top_k: int | None = None,
    max_rules: int | None = DEFAULT_MAX_RULES,
) -> pd.DataFrame:
    """Rules ``A → C`` whose ``metric`` is at least ``min_threshold``.

    ``itemsets`` is either a fitted :class:`~tastebud.FPGrowth` (fast path, numba kernel) or a
    DataFrame with columns ``support`` and ``itemsets`` (frozensets) (and optionally ``count``,
    then confidence is computed exactly from counts) as returned by
    ``FPGrowth.itemsets()``, ``Apriori.itemsets()`` or mlxtend, which must contain every subset of
    its itemsets (it is downward closed when it comes from a miner). Every split of every itemset
    into a non-empty antecedent and consequent is considered (mlxtend semantics); with
    ``single_consequent=True`` only one-item consequents (pyfim/Spark/arules semantics).
    Returns mlxtend's columns; ``top_k`` keeps the ``top_k`` rules with the highest ``metric``.
    ``metric`` is any of the columns, ``representativity`` included.

    Size guard: for a DataFrame, every candidate split is built as Python objects before the
    threshold is applied, so more than ``max_rules`` candidates (``Σ 2^|X| − 2``, or ``Σ |X|``
    with ``single_consequent``; default 10,000,000; None: no limit) raise
    :class:`~tastebud.exceptions.ResultTooLargeError` with the count and a support that fits.
    For a fitted ``FPGrowth`` its own ``max_rules`` applies (see :meth:`FPGrowth.rules`).
    """
    if isinstance(itemsets, FPGrowth):
        return itemsets.rules(metric=metric, min_threshold=min_threshold, single_consequent=single_consequent, top_k=top_k)
    check_metric(metric)
    if not isinstance(itemsets, pd.DataFrame) or not {"support", "itemsets"} <= set(itemsets.columns):
        raise ValueError("itemsets must be a fitted FPGrowth or a DataFrame with columns 'support' and 'itemsets'")
    sets = [frozenset(s) for s in itemsets["itemsets"]]
    _check_candidates(sets, itemsets["support"].to_numpy(dtype=np.float64), single_consequent,
                      check_limit(max_rules, "max_rules"))
    use_counts = "count" in itemsets.columns
    val = itemsets["count" if use_counts else "support"].to_numpy(dtype=np.float64)
    sup = dict(zip(sets, val))
    ants: list[frozenset] = []
    cons: list[frozenset] = []
    sac: list[float] = []
    for x in sets:
        if len(x) < 2:
            continue
        sizes = range(len(x) - 1, 0, -1) if not single_consequent else [len(x) - 1]
        for r in sizes:
            for a in combinations(x, r):
                fa = frozenset(a)
                ants.append(fa)
                cons.append(x - fa)
                sac.append(sup[x])
    try:
        vA = np.array([sup[a] for a in ants], dtype=np.float64)
        vC = np.array([sup[c] for c in cons], dtype=np.float64)
    except KeyError as e:
        raise ValueError(f"itemsets is not downward closed: the subset {set(e.args[0])!r} is missing") from e
    vAC = np.asarray(sac, dtype=np.float64)
    if use_counts:
        # counts and supports together give the number of baskets
        n = float(np.median(itemsets["count"].to_numpy() / itemsets["support"].to_numpy())) if len(itemsets) else 1.0
        n = float(round(n))
        cols = rule_metrics(vAC / n, vA / n, vC / n, vAC, vA)
    else:
        cols = rule_metrics(vAC, vA, vC)
    df = pd.DataFrame({"antecedents": ants, "consequents": cons, **cols})
    df = df[df[metric].to_numpy() >= min_threshold].reset_index(drop=True)
    if top_k is not None:
        df = df.sort_values(metric, ascending=False, kind="stable").head(int(top_k)).reset_index(drop=True)
    return df
