"""Uncertainty over users: bootstrap intervals, paired tests against the best model, Holm's correction.

The unit of resampling is the test user (Efron & Tibshirani 1993, ch. 6 and 16; for recommender
evaluation: Sakai 2006 "Evaluating evaluation metrics based on the bootstrap"; Smucker, Allan &
Carterette 2007 "A comparison of statistical significance tests for information retrieval
evaluation"). A metric is a statistic of the evaluated users:

* :class:`MeanStat` — a (weighted) mean of per-user values, e.g. ndcg@10 (weights 1), MAE (weights:
  the user's number of test ratings), RMSE (``root=True``: √ of the weighted mean of squares);
* :class:`ListStat` — a function of all lists together: ``coverage@k`` and ``gini@k``.

A bootstrap replicate draws n users with replacement; it is represented by the count each user
was drawn, so a statistic is evaluated on a whole ``(B, n)`` block of counts at once. Two models are
compared on the same replicates (paired bootstrap) or by Wilcoxon's signed-rank test on the
per-user differences; p-values of the comparisons of every model with the best are adjusted by
Holm's step-down method (Holm 1979), and a model whose adjusted p-value is not below ``alpha`` is
a *tie* with the best.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["MeanStat", "ListStat", "bootstrap_replicates", "bootstrap_ci", "paired_bootstrap", "paired_wilcoxon",
           "holm", "compare_to_best"]

_BLOCK_CELLS = 4_000_000  # counts held at once: (replicates per block) × users


@dataclass
class MeanStat:
    """Σ w_u v_u / Σ w_u over users (√ of it with ``root``, applied to v²)."""

    users: np.ndarray
    values: np.ndarray
    weights: np.ndarray | None = None
    root: bool = False

    def __post_init__(self) -> None:
        self.users = np.asarray(self.users, dtype=object)
        self.values = np.asarray(self.values, dtype=np.float64)
        if self.weights is not None:
            self.weights = np.asarray(self.weights, dtype=np.float64)
        keep = ~np.isnan(self.values)
        if self.weights is not None:
            keep &= ~np.isnan(self.weights) & (self.weights > 0)
        if not keep.all():  # users without a value do not take part
            self.users, self.values = self.users[keep], self.values[keep]
            self.weights = None if self.weights is None else self.weights[keep]

    def __len__(self) -> int:
        return len(self.users)

    def subset(self, users: np.ndarray) -> "MeanStat":
        pos = pd.Index(self.users).get_indexer(users)
        if (pos < 0).any():
            raise ValueError("subset: some users have no value")
        return MeanStat(self.users[pos], self.values[pos], None if self.weights is None else self.weights[pos], self.root)

    def on_counts(self, C: np.ndarray) -> np.ndarray:
        """The statistic for each row of counts ``C`` (B, n)."""
        v = self.values ** 2 if self.root else self.values
        w = np.ones(len(v)) if self.weights is None else self.weights
        with np.errstate(invalid="ignore", divide="ignore"):
            out = (C @ (w * v)) / (C @ w)
        return np.sqrt(out) if self.root else out

    def point(self) -> float:
        return float(self.on_counts(np.ones((1, len(self))))[0])

    def per_user(self) -> np.ndarray:
        return self.values


@dataclass
class ListStat:
    """``coverage`` (share of the catalogue in at least one list) or ``gini`` (of item exposure)
    of the users' lists ``ranked`` (item indices, −1 padding)."""

    users: np.ndarray
    ranked: np.ndarray
    n_items: int
    kind: str = "coverage"
    _A: Any = field(default=None, repr=False)
    recentre = True  # see bootstrap_ci

    def __post_init__(self) -> None:
        if self.kind not in ("coverage", "gini"):
            raise ValueError(f"kind must be 'coverage' or 'gini', got {self.kind!r}")
        self.users = np.asarray(self.users, dtype=object)
        r = np.asarray(self.ranked, dtype=np.int64)
        valid = r >= 0
        rows = np.repeat(np.arange(len(r)), valid.sum(1))
        self._A = sp.csr_matrix((np.ones(len(rows)), (rows, r[valid])), shape=(len(r), self.n_items))

    def __len__(self) -> int:
        return len(self.users)

    def subset(self, users: np.ndarray) -> "ListStat":
        pos = pd.Index(self.users).get_indexer(users)
        if (pos < 0).any():
            raise ValueError("subset: some users have no list")
        return ListStat(self.users[pos], np.asarray(self.ranked)[pos], self.n_items, self.kind)

    def on_counts(self, C: np.ndarray) -> np.ndarray:
        X = np.asarray(self._A.T @ np.asarray(C, dtype=np.float64).T).T  # (B, n_items) exposure
        if self.kind == "coverage":
            return (X > 0).mean(1)
        X = np.sort(X, axis=1)
        n = X.shape[1]
        j = np.arange(1, n + 1)
        tot = X.sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (X @ (2 * j - n - 1)) / (n * tot)

    def point(self) -> float:
        return float(self.on_counts(np.ones((1, len(self))))[0])

    def per_user(self) -> None:
        return None


_BLOCKS: dict[tuple[int, int, int], list[np.ndarray]] = {}


def _count_blocks(n: int, n_boot: int, random_state: Any) -> list[np.ndarray]:
    """Bootstrap counts, (rows, n) blocks: how often each of n users is drawn in each replicate.
    With an integer seed the blocks are cached (a few recent (n, B, seed)): every metric and
    model of a table is then evaluated on the very same resamples, and drawing them once saves
    most of the time of a large comparison."""
    if n < 1:
        raise ValueError("the bootstrap needs at least one user")
    key = (n, n_boot, int(random_state)) if isinstance(random_state, (int, np.integer)) else None
    if key is not None and key in _BLOCKS:
        return _BLOCKS[key]
    rng = random_state if isinstance(random_state, np.random.Generator) else np.random.default_rng(random_state)
    p = np.full(n, 1.0 / n)
    step = max(1, min(n_boot, _BLOCK_CELLS // n))
    blocks, done = [], 0
    while done < n_boot:
        b = min(step, n_boot - done)
        blocks.append(rng.multinomial(n, p, size=b).astype(np.float64))
        done += b
    if key is not None and n * n_boot <= 4 * _BLOCK_CELLS:
        if len(_BLOCKS) >= 8:
            _BLOCKS.pop(next(iter(_BLOCKS)))
        _BLOCKS[key] = blocks
    return blocks


def bootstrap_replicates(stat: Any, n_boot: int = 1000, random_state: Any = 0) -> np.ndarray:
    """The statistic on ``n_boot`` resamples of the users (with replacement)."""
    return np.concatenate([stat.on_counts(C) for C in _count_blocks(len(stat), n_boot, random_state)])


def bootstrap_ci(stat: Any, n_boot: int = 1000, level: float = 0.95, random_state: Any = 0) -> tuple[float, float, float]:
    """(point estimate, low, high): the percentile bootstrap interval over users at ``level``."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    reps = bootstrap_replicates(stat, n_boot, random_state)
    reps = reps[np.isfinite(reps)]
    point = stat.point()
    if getattr(stat, "recentre", False) and len(reps):
        # a list-level statistic (coverage, gini) of a resample with repeated users sees fewer
        # distinct lists, so its bootstrap distribution is shifted; keep its spread, centre it on
        # the estimate (the bootstrap bias correction θ̂ − (mean θ* − θ̂), Efron & Tibshirani §10.6)
        reps = np.clip(reps + (point - reps.mean()), 0.0, 1.0)
    a = (1 - level) / 2
    lo, hi = np.quantile(reps, [a, 1 - a]) if len(reps) else (np.nan, np.nan)
    if getattr(stat, "recentre", False):  # a (nearly) constant statistic: the interval is the point
        lo, hi = min(lo, point), max(hi, point)
    return point, float(lo), float(hi)


def _common(a: Any, b: Any) -> tuple[Any, Any]:
    users = pd.Index(a.users).intersection(pd.Index(b.users), sort=False).to_numpy()
    if len(users) == 0:
        raise ValueError("the two models share no evaluated user")
    if len(users) == len(a) == len(b) and (a.users == b.users).all():
        return a, b
    return a.subset(users), b.subset(users)


def paired_bootstrap(a: Any, b: Any, n_boot: int = 1000, level: float = 0.95,
                     random_state: Any = 0) -> dict[str, float]:
    """Paired bootstrap of d = stat(a) − stat(b) over the users both have: the same resamples of
    users for both models. Returns ``diff``, its percentile interval ``low``/``high`` and the
    two-sided p-value of d = 0 by the shift method, (1 + #{|d*_b − d| ≥ |d|}) / (B + 1)
    (Efron & Tibshirani 1993, §16.4)."""
    a, b = _common(a, b)
    d = a.point() - b.point()
    reps = np.concatenate([a.on_counts(C) - b.on_counts(C) for C in _count_blocks(len(a), n_boot, random_state)])
    reps = reps[np.isfinite(reps)]
    al = (1 - level) / 2
    lo, hi = np.quantile(reps, [al, 1 - al])
    extreme = np.abs(reps - d) >= abs(d) - 1e-15 * max(1.0, abs(d))
    p = (1 + int(extreme.sum())) / (len(reps) + 1)
    return {"diff": float(d), "low": float(lo), "high": float(hi), "p": float(min(1.0, p)), "n_users": len(a)}


def paired_wilcoxon(a: Any, b: Any) -> dict[str, float]:
    """Wilcoxon's signed-rank test on the per-user differences (zero differences split between the
    signs, Pratt-free ``zsplit``); for per-user metrics only."""
    from scipy.stats import wilcoxon

    a, b = _common(a, b)
    if a.per_user() is None:
        raise ValueError("Wilcoxon's test needs per-user values; list-level metrics (coverage, gini) have none")
    x, y = a.per_user(), b.per_user()
    d = x - y
    p = 1.0 if np.allclose(d, 0) else float(wilcoxon(x, y, zero_method="zsplit").pvalue)
    return {"diff": a.point() - b.point(), "low": np.nan, "high": np.nan, "p": p, "n_users": len(a)}


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error control for m tests; Holm 1979)."""
    p = np.asarray(pvalues, dtype=np.float64)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")
    adj = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out


def compare_to_best(stats: dict[str, Any], higher_is_better: bool = True, alpha: float = 0.05,
                    test: str = "bootstrap", n_boot: int = 1000, level: float = 0.95,
                    random_state: Any = 0) -> pd.DataFrame:
    """One row per model: the value, its bootstrap interval, and the paired comparison with the
    best model (Holm-adjusted over the other models). ``verdict``: ``best``; ``tie`` (not
    significantly different from the best at ``alpha`` after adjustment); ``worse``."""
    if test not in ("bootstrap", "wilcoxon"):
        raise ValueError(f"test must be 'bootstrap' or 'wilcoxon', got {test!r}")
    rows = []
    for name, s in stats.items():
        v, lo, hi = bootstrap_ci(s, n_boot, level, random_state)
        rows.append({"model": name, "value": v, "low": lo, "high": hi})
    df = pd.DataFrame(rows)
    finite = df["value"].notna()
    if not finite.any():
        df["verdict"] = ""
        return df
    best = df.loc[finite, "value"].idxmax() if higher_is_better else df.loc[finite, "value"].idxmin()
    best_name = df.at[best, "model"]
    diffs, ps = [], []
    for name, s in stats.items():
        if name == best_name:
            diffs.append(0.0), ps.append(np.nan)
            continue
        r = (paired_bootstrap(s, stats[best_name], n_boot, level, random_state) if test == "bootstrap"
             else paired_wilcoxon(s, stats[best_name]))
        diffs.append(r["diff"]), ps.append(r["p"])
    df["diff_to_best"] = diffs
    df["p"] = ps
    others = df["model"] != best_name
    df["p_holm"] = np.nan
    df.loc[others, "p_holm"] = holm(df.loc[others, "p"].to_numpy())
    df["verdict"] = np.where(~others, "best", np.where(df["p_holm"] < alpha, "worse", "tie"))
    return df
