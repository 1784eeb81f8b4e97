"""Interestingness measures of an association rule A → C, from the supports of A ∪ C, A and C.

Shared by :class:`~tastebud.FPGrowth` (the kernel path) and
:func:`~tastebud.association_rules` (DataFrames of itemsets), so neither imports the other for
them. The definitions are in :mod:`tastebud.models.rules.association`'s docstring.
"""

from __future__ import annotations

import numpy as np

METRICS = (
    "antecedent support", "consequent support", "support", "confidence", "lift", "representativity",
    "leverage", "conviction", "zhangs_metric", "jaccard", "certainty", "kulczynski",
)
#: metric name -> kernel code (see ``tastebud.kernels.fpgrowth``)
METRIC_CODES = {
    "confidence": 0, "lift": 1, "support": 2, "leverage": 3, "conviction": 4, "zhangs_metric": 5,
    "antecedent support": 6, "consequent support": 7, "jaccard": 8, "certainty": 9, "kulczynski": 10,
    "representativity": 11,
}


def check_metric(metric: str) -> int:
    if metric not in METRIC_CODES:
        raise ValueError(f"metric must be one of {list(METRICS)}, got {metric!r}")
    return METRIC_CODES[metric]


def rule_metrics(sAC: np.ndarray, sA: np.ndarray, sC: np.ndarray, cAC: np.ndarray | None = None,
                 cA: np.ndarray | None = None, columns: tuple[str, ...] = METRICS) -> dict[str, np.ndarray]:
    """Metric columns (all, or those named in ``columns``) from the supports (fractions) of
    A ∪ C, A and C. With the counts ``cAC``, ``cA`` the confidence is ``cAC / cA`` (correctly
    rounded: 4/5 gives exactly 0.8, where (4/n)/(5/n) may give 0.7999999999999999)."""
    sAC = np.asarray(sAC, dtype=np.float64)
    sA = np.asarray(sA, dtype=np.float64)
    sC = np.asarray(sC, dtype=np.float64)
    cache: dict[str, np.ndarray] = {}

    def conf() -> np.ndarray:
        if "confidence" not in cache:
            if cAC is not None and cA is not None:
                cache["confidence"] = np.asarray(cAC, dtype=np.float64) / np.asarray(cA, dtype=np.float64)
            else:
                cache["confidence"] = sAC / sA
        return cache["confidence"]

    def lev() -> np.ndarray:
        if "leverage" not in cache:
            cache["leverage"] = sAC - sA * sC
        return cache["leverage"]

    def conviction() -> np.ndarray:
        c = conf()
        out = np.full(c.shape, np.inf)
        lt = c < 1.0
        out[lt] = (1.0 - sC[lt]) / (1.0 - c[lt])
        return out

    def zhang() -> np.ndarray:
        den = np.maximum(sAC * (1 - sA), sA * (sC - sAC))
        return np.where(den == 0, 0.0, lev() / den)

    def certainty() -> np.ndarray:
        cden = 1.0 - sC
        return np.where(cden == 0, 0.0, (conf() - sC) / cden)

    formulas = {
        "antecedent support": lambda: sA, "consequent support": lambda: sC, "support": lambda: sAC,
        "confidence": conf, "lift": lambda: conf() / sC, "representativity": lambda: np.ones_like(sAC),
        "leverage": lev, "conviction": conviction, "zhangs_metric": zhang,
        "jaccard": lambda: sAC / (sA + sC - sAC), "certainty": certainty,
        "kulczynski": lambda: (conf() + sAC / sC) / 2.0,
    }
    with np.errstate(divide="ignore", invalid="ignore"):
        return {name: formulas[name]() for name in columns}
