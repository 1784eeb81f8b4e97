"""The report's plots (matplotlib, rendered to PNG bytes): titled, axes labelled with units, one
colour per model across every plot (:func:`palette`, keyed by model label)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["palette", "accuracy_intervals", "accuracy_vs_time", "metric_at_k", "popularity_bins",
           "activity", "learning_curves", "rules_scatter"]

# Okabe–Ito (colour-blind safe; its yellow left out: unreadable as text on white), then darker
# distinct colours for larger experiments; every colour is legible as a label on white
_COLOURS = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#7B3294",
            "#8C564B", "#A6761D", "#666666", "#E7298A", "#66A61E", "#1B4F72", "#B03A2E", "#117864",
            "#393b79", "#637939", "#843c39", "#7b4173"]
_MARKERS = ["o", "s", "D", "^", "v", "P", "X", "*", "<", ">", "h"]


def palette(labels: list[str]) -> dict[str, tuple[str, str]]:
    """(colour, marker) per model label, in the experiment's model order (the same in every plot)."""
    return {lb: (_COLOURS[i % len(_COLOURS)], _MARKERS[(i // len(_COLOURS) + i) % len(_MARKERS)])
            for i, lb in enumerate(labels)}


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 10, "axes.titlesize": 11, "axes.titleweight": "bold", "axes.grid": True,
                         "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False})
    return plt


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


def accuracy_intervals(stats: pd.DataFrame, metric: str, pal: dict, unit: str, n_users: int, level: float) -> bytes:
    """Each model's value of ``metric`` with its interval, best first; ties with the best hatched."""
    plt = _plt()
    d = stats[stats["metric"] == metric].copy()
    lower = d["verdict"].eq("best").any() and d.loc[d["verdict"] == "best", "value"].iloc[0] == d["value"].min()
    d = d.sort_values("value", ascending=not lower).reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(d) + 1.6))
    for i, r in d.iterrows():
        c, mk = pal[r["model"]]
        ax.errorbar(r["value"], i, xerr=[[r["value"] - r["low"]], [r["high"] - r["value"]]], fmt=mk, color=c,
                    ms=7, capsize=4, lw=2)
        tag = {"best": "  best", "tie": "  tie with best"}.get(r["verdict"], "")
        ax.annotate(f"{r['value']:.4f}{tag}", (r["high"], i), xytext=(6, 0), textcoords="offset points",
                    va="center", fontsize=9)
    ax.set_yticks(range(len(d)), d["model"])
    ax.invert_yaxis()
    ax.set_xlabel(f"{metric} ({unit})")
    ax.set_title(f"{metric} on the test split, {int(round(100 * level))}% bootstrap interval over {n_users} users")
    lo, hi = d["low"].min(), d["high"].max()
    ax.set_xlim(lo - 0.05 * (hi - lo + 1e-9), hi + 0.35 * (hi - lo + 1e-9))
    return _png(fig)


def accuracy_vs_time(stats: pd.DataFrame, metric: str, fit_s: dict[str, float], pal: dict, unit: str) -> bytes:
    plt = _plt()
    d = stats[stats["metric"] == metric]
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    for j, r in enumerate(d.sort_values("value").itertuples()):
        c, mk = pal[r.model]
        t = max(fit_s.get(r.model, np.nan), 1e-3)
        ax.errorbar(t, r.value, yerr=[[r.value - r.low], [r.high - r.value]], fmt=mk, color=c, ms=8, capsize=3)
        # labels of neighbours in value alternate above/below their point so that they do not collide
        ax.annotate(r.model, (t, r.value), xytext=(7, 5 if j % 2 == 0 else -11), textcoords="offset points",
                    fontsize=9, color=c)
    ax.margins(y=0.1)
    ax.set_xscale("log")
    ax.set_xlabel("fit time on train + validation (seconds, log scale)")
    ax.set_ylabel(f"{metric} ({unit})")
    ax.set_title(f"Accuracy vs fit time ({metric}, with intervals)")
    return _png(fig)


def metric_at_k(stats: pd.DataFrame, bases: list[str], pal: dict) -> bytes:
    """One panel per accuracy metric: value against the cut-off k, a line per model."""
    plt = _plt()
    n = len(bases)
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    for ax, base in zip(axes.ravel(), bases):
        d = stats[stats["base"] == base]
        for model, g in d.groupby("model", sort=False):
            g = g.sort_values("k")
            c, mk = pal[model]
            ax.plot(g["k"], g["value"], marker=mk, color=c, label=model)
            ax.fill_between(g["k"].astype(float), g["low"], g["high"], color=c, alpha=0.12)
        ax.set_title(f"{base}@k")
        ax.set_xlabel("cut-off k (items in the list)")
        ax.set_ylabel(f"{base} (mean over users)")
        ax.set_xticks(sorted(d["k"].dropna().unique()))
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(6, len(labels)), frameon=False,
               bbox_to_anchor=(0.5, -0.02 - 0.03 * ((len(labels) - 1) // 6)))
    fig.suptitle("Accuracy at each cut-off k (bands: 95% intervals)", fontweight="bold")
    fig.tight_layout(rect=(0, 0.06 + 0.03 * ((len(labels) - 1) // 6), 1, 1))
    return _png(fig)


def popularity_bins(item_pop: np.ndarray, n_bins: int = 10) -> np.ndarray:
    """Bin of each item: items sorted by training popularity (most popular first, ties by index)
    cut into ``n_bins`` groups of (nearly) equal size; bin 0 is the most popular."""
    order = np.lexsort((np.arange(len(item_pop)), -item_pop))
    b = np.empty(len(item_pop), dtype=np.int64)
    b[order] = np.arange(len(item_pop)) * n_bins // len(item_pop)
    return b


def popularity(lists: dict[str, np.ndarray], consumed: np.ndarray, item_pop: np.ndarray, pal: dict, k: int,
               n_bins: int = 10) -> bytes:
    """Share of recommended items (each model's top k) and of consumed test items per popularity decile."""
    plt = _plt()
    bins = popularity_bins(item_pop, n_bins)
    x = np.arange(1, n_bins + 1)
    fig, ax = plt.subplots(figsize=(8.5, 4.6))
    cons = np.bincount(bins[consumed], minlength=n_bins) / max(len(consumed), 1)
    ax.plot(x, 100 * cons, color="black", lw=3, ls="--", label="consumed (test interactions)")
    for model, L in lists.items():
        v = L[:, :k][L[:, :k] >= 0]
        share = np.bincount(bins[v], minlength=n_bins) / max(len(v), 1)
        c, mk = pal[model]
        ax.plot(x, 100 * share, marker=mk, color=c, label=model)
    ax.set_yscale("symlog", linthresh=1)
    ax.set_xticks(x)
    ax.set_xlabel(f"item popularity decile in training (1 = the most popular {100 // n_bins}% of items)")
    ax.set_ylabel("share of items (%, symlog scale)")
    ax.set_title(f"Popularity of recommended (top {k}) vs consumed items")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _png(fig)


def activity(table: pd.DataFrame, metric: str, pal: dict) -> bytes:
    """Grouped bars: ``metric`` per bucket of user activity, a bar per model, with intervals."""
    plt = _plt()
    buckets = list(dict.fromkeys(table["bucket"]))
    models = list(dict.fromkeys(table["model"]))
    fig, ax = plt.subplots(figsize=(min(12.0, max(7.5, 0.35 * len(buckets) * max(1, len(models)))), 4.6))
    w = 0.8 / max(len(models), 1)
    for j, m in enumerate(models):
        g = table[table["model"] == m].set_index("bucket").reindex(buckets)
        xs = np.arange(len(buckets)) + (j - (len(models) - 1) / 2) * w
        c, _ = pal[m]
        ax.bar(xs, g["value"], w, color=c, label=m, yerr=[g["value"] - g["low"], g["high"] - g["value"]],
               capsize=2, error_kw={"lw": 0.8})
    users = table.groupby("bucket", sort=False)["users"].first().reindex(buckets)
    ax.set_xticks(np.arange(len(buckets)), [f"{b}\n({u} users)" for b, u in zip(buckets, users)])
    ax.set_xlabel("user's training interactions (activity bucket; cold → heavy)")
    ax.set_ylabel(f"{metric} (mean over the bucket's users)")
    ax.set_title(f"{metric} by user activity")
    ax.legend(fontsize=8, ncol=min(4, len(models)))
    return _png(fig)


def learning_curves(curves: dict[str, dict[str, list[float]]], pal: dict) -> bytes:
    """A panel per model: each logged per-epoch series (as the model logged it)."""
    plt = _plt()
    n = len(curves)
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 3.3 * rows), squeeze=False)
    styles = ["-", "--", ":", "-."]
    for ax, (model, series) in zip(axes.ravel(), curves.items()):
        c, _ = pal[model]
        for j, (name, ys) in enumerate(series.items()):
            ax.plot(np.arange(1, len(ys) + 1), ys, ls=styles[j % len(styles)], color=c, marker=".", label=name)
        ax.set_title(model)
        ax.set_xlabel("epoch")
        names = " ".join(series).lower()
        ax.set_ylabel("RMSE (rating points)" if "rmse" in names and "loss" not in names else "logged value")
        ax.legend(fontsize=8)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    fig.suptitle("Learning curves of iterative models (per epoch)", fontweight="bold")
    fig.tight_layout()
    return _png(fig)


def rules_scatter(rules: pd.DataFrame, model: str, total: int | None = None) -> bytes:
    """Support × confidence, coloured by lift (log colour scale)."""
    plt = _plt()
    from matplotlib.colors import LogNorm, Normalize

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    lift = rules["lift"].clip(lower=1e-3)
    lo, hi = float(lift.min()), float(max(lift.max(), lift.min() * 1.01))
    wide = hi / lo > 20  # a log colour scale only when lifts span more than ~an order of magnitude
    sc = ax.scatter(rules["support"], rules["confidence"], c=lift, cmap="viridis", s=10, alpha=0.7,
                    norm=LogNorm(vmin=lo, vmax=hi) if wide else Normalize(vmin=lo, vmax=hi))
    fig.colorbar(sc, ax=ax, label="lift (×" + (", log colour scale)" if wide else ")"))
    ax.set_xscale("log")
    from matplotlib.ticker import FormatStrFormatter

    for axis in (ax.xaxis,):
        axis.set_major_formatter(FormatStrFormatter("%.3g"))
        axis.set_minor_formatter(FormatStrFormatter("%.3g"))
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlabel("support (fraction of baskets, log scale)")
    ax.set_ylabel("confidence (fraction, 0–1)")
    shown = f"{len(rules)} of {total}" if total and total > len(rules) else f"{len(rules)}"
    ax.set_title(f"{model}: {shown} association rules, support × confidence × lift")
    return _png(fig)
