"""The tables of an experiment: every metric with its bootstrap interval and its paired comparison
with the best model (Holm-corrected), written as markdown and CSV."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .evaluate import parse_metric
from .stats import ListStat, MeanStat, bootstrap_ci, compare_to_best

logger = logging.getLogger("tastebud")

__all__ = ["statistics", "tables", "write", "metric_stat", "activity_table", "fmt"]

LOWER_IS_BETTER = {"rmse", "mae", "gini"}
NO_DIRECTION = {"popularity", "popularity_lift"}  # reported with intervals, never tested
_GROUP_ORDER = ("rating", "accuracy", "beyond", "sampled")
_ACCURACY = {"precision", "recall", "ndcg", "map", "mrr", "hit_rate"}


def _group(base: str) -> str:
    if base in ("rmse", "mae"):
        return "rating"
    if base.startswith("sampled_"):
        return "sampled"
    return "accuracy" if base in _ACCURACY else "beyond"


def metric_stat(run: Any, name: str, n_items: int) -> Any:
    """The statistic of metric ``name`` for one model run (None when the run lacks it)."""
    base, k = parse_metric(name)
    f = run.per_user
    if base in ("coverage", "gini"):
        if run.lists is None:
            return None
        return ListStat(run.list_users, run.lists[:, :k], n_items, base)
    if name not in f:
        return None
    if base in ("rmse", "mae"):
        return MeanStat(f.index.to_numpy(), f[name].to_numpy(), f["n_ratings"].to_numpy(), root=base == "rmse")
    if base.startswith("sampled_"):
        return MeanStat(f.index.to_numpy(), f[name].to_numpy(), f["n_relevant"].to_numpy())
    return MeanStat(f.index.to_numpy(), f[name].to_numpy())


def _metric_names(runs: list) -> list[str]:
    names: list[str] = []
    for r in runs:
        for n in r.summary:
            if n not in names:
                names.append(n)
    return names


def statistics(exp: Any, runs: list, context: dict[str, Any]) -> pd.DataFrame:
    """Long table: one row per (metric, model) with value, interval, difference to the best,
    p-values (raw and Holm) and verdict (best / tie / worse; empty for metrics without a
    direction such as popularity)."""
    m = exp.metrics
    if m["test"] == "bootstrap" and (len(runs) - 1) / (m["bootstrap"] + 1) >= m["alpha"]:
        logger.warning("with %d resamples the smallest Holm-adjusted p-value of %d comparisons is %.3g >= alpha = %g: "
                       "no difference can be significant; raise [metrics] bootstrap", m["bootstrap"], len(runs) - 1,
                       (len(runs) - 1) / (m["bootstrap"] + 1), m["alpha"])
    rows = []
    for name in _metric_names(runs):
        base, k = parse_metric(name)
        stats = {}
        for r in runs:
            s = metric_stat(r, name, context["n_items"])
            if s is not None and len(s) > 0 and np.isfinite(s.point()):
                stats[r.label] = s
        if not stats:
            continue
        if base in NO_DIRECTION or len(stats) == 1:
            for label, s in stats.items():
                v, lo, hi = bootstrap_ci(s, m["bootstrap"], m["level"], 0)
                rows.append({"metric": name, "model": label, "value": v, "low": lo, "high": hi,
                             "diff_to_best": np.nan, "p": np.nan, "p_holm": np.nan,
                             "verdict": "best" if len(stats) == 1 and base not in NO_DIRECTION else ""})
        else:
            test = m["test"] if base not in ("coverage", "gini") else "bootstrap"
            df = compare_to_best(stats, higher_is_better=base not in LOWER_IS_BETTER, alpha=m["alpha"], test=test,
                                 n_boot=m["bootstrap"], level=m["level"], random_state=0)
            for rec in df.to_dict("records"):
                rows.append({"metric": name, **rec})
        for row in rows[-len(stats):]:
            row.update({"base": base, "k": k, "group": _group(base), "n_users": len(stats[row["model"]])})
    cols = ["group", "metric", "base", "k", "model", "value", "low", "high", "diff_to_best", "p", "p_holm", "verdict",
            "n_users"]
    return pd.DataFrame(rows, columns=cols)


def fmt(v: float) -> str:
    if v is None or not np.isfinite(v):
        return "–"
    a = abs(v)
    return f"{v:.1f}" if a >= 100 else f"{v:.2f}" if a >= 10 else f"{v:.4f}"


def _cell(row: Any) -> str:
    s = f"{fmt(row.value)} [{fmt(row.low)}, {fmt(row.high)}]"
    if row.verdict == "best":
        return f"**{s}** ★"
    if row.verdict == "tie":
        return f"{s} ≈"
    return s


def _wide(stats: pd.DataFrame, metrics: list[str], labels: list[str]) -> pd.DataFrame:
    sub = stats[stats["metric"].isin(metrics)]
    out = pd.DataFrame({"model": labels})
    for name in metrics:
        cells = {r.model: _cell(r) for r in sub[sub["metric"] == name].itertuples()}
        out[name] = [cells.get(lb, "–") for lb in labels]
    return out[[c for c in out.columns if c == "model" or (out[c] != "–").any()]]


def activity_table(exp: Any, runs: list, context: dict[str, Any], metric: str) -> pd.DataFrame:
    """Mean of ``metric`` per bucket of users' training activity, with bootstrap intervals."""
    edges = list(exp.metrics["activity_buckets"])
    act = context["user_activity"]
    bounds = [1, *edges, None]
    names = [f"{lo}–{hi - 1}" if hi else f"{lo}+" for lo, hi in zip(bounds[:-1], bounds[1:])]
    rows = []
    for r in runs:
        if metric not in r.per_user:
            continue
        f = r.per_user[metric].dropna()
        a = act.reindex(f.index).to_numpy()
        for lo, hi, nm in zip(bounds[:-1], bounds[1:], names):
            sel = (a >= lo) & ((a < hi) if hi else True)
            if sel.sum() < 2:
                continue
            v, l, h = bootstrap_ci(MeanStat(f.index.to_numpy()[sel], f.to_numpy()[sel]), exp.metrics["bootstrap"],
                                   exp.metrics["level"], 0)
            rows.append({"model": r.label, "bucket": nm, "users": int(sel.sum()), "value": v, "low": l, "high": h})
    return pd.DataFrame(rows, columns=["model", "bucket", "users", "value", "low", "high"])


def tables(exp: Any, runs: list, stats: pd.DataFrame, skipped: dict[str, str], context: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """Titled tables for the markdown and the HTML page."""
    labels = [r.label for r in runs]
    out: dict[str, pd.DataFrame] = {}
    lv = int(round(100 * exp.metrics["level"]))
    for group in _GROUP_ORDER:
        g = stats[stats["group"] == group]
        if g.empty:
            continue
        if group in ("accuracy", "beyond"):
            for k in sorted(g["k"].dropna().unique()):
                metrics = list(dict.fromkeys(g[g["k"] == k]["metric"]))
                title = (f"Top-{int(k)} accuracy, full ranking (mean over users, {lv}% bootstrap interval)"
                         if group == "accuracy" else f"Beyond accuracy at {int(k)} ({lv}% bootstrap interval)")
                out[title] = _wide(stats, metrics, [lb for lb in labels if lb in set(g["model"])])
        elif group == "rating":
            out[f"Rating prediction ({lv}% bootstrap interval over users)"] = _wide(
                stats, list(dict.fromkeys(g["metric"])), [lb for lb in labels if lb in set(g["model"])])
        else:
            n = exp.metrics["n_negatives"]
            t = _wide(stats, list(dict.fromkeys(g["metric"])), [lb for lb in labels if lb in set(g["model"])])
            t.columns = ["model"] + [f"{c} ({n} negatives)" for c in t.columns[1:]]
            out[f"SAMPLED metrics: each relevant item ranked against {n} sampled negatives, not the full catalogue "
                f"(not comparable with the full-ranking tables)"] = t
    rows = []
    for r in runs:
        t = r.tuning or {}
        rows.append({"model": r.label, "registry name": r.name, "task": r.task,
                     "fit_s (mean over seeds)": float(np.mean(r.fit_seconds)),
                     "tuned on": f"{t['metric']} (validation)" if t else "–",
                     "trials": sum(1 for x in t.get("trials", []) if x.get("status") == "ok") if t else 0,
                     "tuning_s": t.get("seconds", 0.0) if t else 0.0,
                     "parameters": ", ".join(f"{k}={v}" for k, v in sorted(r.params.items())) or "defaults"})
    out["Models: parameters, tuning and fit time"] = pd.DataFrame(rows)
    if skipped:
        out["Skipped models"] = pd.DataFrame({"model": list(skipped), "reason": list(skipped.values())})
    return out


def _markdown(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(fmt(v) if isinstance(v, float) else str(v) for v in row) + " |")
    return "\n".join(lines)


def legend(exp: Any) -> str:
    m = exp.metrics
    test = "paired bootstrap" if m["test"] == "bootstrap" else "Wilcoxon signed-rank test"
    return (f"Each cell: value [{int(round(100 * m['level']))}% percentile bootstrap interval over test users, "
            f"{m['bootstrap']} resamples]. ★ best; ≈ not significantly different from the best ({test} over users, "
            f"Holm-corrected over the models, α = {m['alpha']}); unmarked: significantly worse. Popularity and "
            "popularity lift have no better direction and are not tested.")


def write(res: Any) -> None:
    """``README.md`` (all tables), ``stats.csv`` (the long table) and one CSV per table."""
    from .report import _slug

    exp, out = res.experiment, Path(res.out_dir)
    ctx = res.context
    d = ctx["data"]
    md = [f"# Experiment: {exp.name}", "",
          f"Data: {d.get('dataset') or d.get('file')} — {d['users']} users, {d['items']} items, {d['interactions']} "
          f"interactions (content sha256 {d['content_sha256'][:16]}…). Split: {exp.split['method']}, test "
          f"{exp.split['test_size']}, validation {exp.split['validation_size']} of training (tuning only), seed "
          f"{exp.split['seed']}. Seeds: {exp.seeds}. Tuning: {exp.tuning['method']}, ≤ {exp.tuning['trials']} trials, "
          f"≤ {exp.tuning['timeout']:.0f} s per model.", "", legend(exp), ""]
    for title, df in res.tables.items():
        md += [f"## {title}", "", _markdown(df), ""]
        df.to_csv(out / f"{_slug(title)[:80]}.csv", index=False)
    env = res.manifest.get("environment", {})
    mach = env.get("machine", {})
    load = ", ".join(f"{x:.2f}" for x in mach.get("load_avg") or []) or "n/a"
    md += ["## Provenance", "", f"Run {env.get('started')} on {mach.get('host')} ({mach.get('cpus')} CPUs, load "
           f"average {load}), Python {env.get('python')}, tastebud {env.get('packages', {}).get('tastebud')}; "
           f"git {env.get('git')}. Everything needed to repeat it: `manifest.json`.", ""]
    (out / "README.md").write_text("\n".join(md))
    res.stats.to_csv(out / "stats.csv", index=False)
