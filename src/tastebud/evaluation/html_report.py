"""The experiment's report: one self-contained HTML page (plots embedded as base64 PNG, inline CSS,
no script, no server, no CDN) beside a markdown version with the same plots as PNG files.

Sections: the tables with intervals and significance, accuracy with intervals per model, accuracy
vs fit time, metric@k curves, popularity of recommended vs consumed items, accuracy per user
activity bucket (cold → heavy users), learning curves of iterative models, association rules
(support × confidence × lift) when a rule model ran, and a model card per model."""

from __future__ import annotations

import base64
import html
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import plots as P
from .evaluate import parse_metric
from .exp_tables import activity_table, fmt, legend

logger = logging.getLogger("tastebud")

__all__ = ["write_html", "UNITS", "LIMITS"]

UNITS = {"rmse": "rating points", "mae": "rating points", "novelty": "bits", "popularity": "training users per item",
         "popularity_lift": "relative, 0 = same as the user's history", "gini": "0 = equal exposure, 1 = one item",
         "coverage": "share of the catalogue, 0–1", "diversity": "1 − mean cosine, 0–1"}
_DEFAULT_UNIT = "mean over users, 0–1"

#: known limits per registry name (model cards); tasks add their own
LIMITS = {
    "popularity": "Not personalised: every user gets the same most-popular items (minus their own).",
    "baseline": "Biases only: ranks every user's unseen items in almost the same order (item bias).",
    "mf": "Trained on explicit ratings by SGD; ranking by predicted rating ignores which items a user chose to rate.",
    "svdpp": "Fit is O(nnz · k · |N(u)|) per epoch: the slowest rating model here.",
    "als": "Explicit ALS fits observed ratings only; like MF it does not model which items were rated.",
    "fm": "With user and item ids only it is a biased MF; side features are not used by this experiment.",
    "implicit-als": "Treats every interaction as positive with confidence 1 + α·r; missing entries count as weak negatives.",
    "bpr": "Sampled pairwise loss: results vary with the seed; with num_threads > 1 its lock-free parallel SGD "
           "is not bitwise repeatable (num_threads = 1 is).",
    "puresvd": "Unregularised truncated SVD of the binary matrix; scores are not calibrated.",
    "ease": "Dense item × item weights: memory and time grow with the square/cube of the catalogue size.",
    "rules": "Recommends from the user's whole training set as one basket; items outside frequent itemsets "
             "are reached only by the popularity fill-in.",
}
_TASK_LIMITS = {
    "rating": "A rating model: fitted on the rating values; its top-N lists rank by predicted rating.",
    "topn": "A top-N model: rating values are ignored (every interaction is a positive).",
    "sequence": "A sequence model: each user's training items in time order; the test split is not in time order "
                "unless [split] method is temporal or leave_last_out.",
    "baskets": "Each user's training items form one basket.",
}

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;margin:0 auto;max-width:1150px;
padding:16px 28px;color:#1b1b1b;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:1.8em;border-bottom:2px solid #ddd;padding-bottom:.2em}
h3{margin-bottom:.3em}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.86em}th,td{border:1px solid #d0d0d0;padding:3px 7px;
text-align:right;white-space:nowrap}th{background:#f2f4f7;white-space:normal}td:first-child,th:first-child{text-align:left}
td.best{background:#e3f4e3;font-weight:bold}td.tie{background:#f6f9e6}
figure{margin:1em 0 2em}figure img{max-width:100%;border:1px solid #e3e3e3}figcaption{font-size:.88em;color:#555}
.note{background:#fff7e0;border-left:4px solid #e6a700;padding:6px 10px;font-size:.9em}
.card{border:1px solid #d8d8d8;border-radius:6px;padding:4px 16px 10px;margin:14px 0;border-left:8px solid var(--c)}
.legend{font-size:.88em;color:#444}.meta{font-size:.86em;color:#444}code{font-size:.92em}
"""


def _load(load: Any) -> str:
    """Load averages over 1, 5 and 15 minutes, as ``uptime`` prints them."""
    return ", ".join(f"{x:.2f}" for x in load) if load else "n/a"


def _img(png: bytes, alt: str, caption: str, fig_id: str) -> str:
    b64 = base64.b64encode(png).decode("ascii")
    return (f'<figure id="{fig_id}"><img class="plot" alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _table_html(df: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    rows = []
    for r in df.itertuples(index=False):
        cells = []
        for v in r:
            s = fmt(v) if isinstance(v, float) else str(v)
            cls = ""
            if s.endswith(" ★"):
                cls, s = "best", s.replace("**", "")
            elif s.endswith(" ≈"):
                cls = "tie"
            cells.append(f'<td class="{cls}">{html.escape(s)}</td>' if cls else f"<td>{html.escape(s)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _unit(metric: str) -> str:
    base = parse_metric(metric)[0]
    return UNITS.get(base, _DEFAULT_UNIT)


def _figures(res: Any) -> list[tuple[str, str, str, bytes]]:
    """(id, alt, caption, png) for every plot that applies."""
    exp, stats, ctx = res.experiment, res.stats, res.context
    runs = res.runs
    pal = P.palette([r.label for r in runs])
    primary = exp.metrics["primary"]
    level = exp.metrics["level"]
    figs: list[tuple[str, str, str, bytes]] = []
    fit_s = {r.label: float(np.mean(r.fit_seconds)) for r in runs}
    for metric in dict.fromkeys([primary, *[m for m in stats["metric"].unique() if parse_metric(m)[0] == "rmse"]]):
        d = stats[stats["metric"] == metric]
        if d.empty:
            continue
        n_users = int(d["n_users"].max())
        figs.append((f"acc-{metric}", f"{metric} per model with intervals",
                     f"{metric}: point estimate and {int(round(100 * level))}% bootstrap interval over test users; "
                     "'tie with best' = not significantly different after Holm's correction.",
                     P.accuracy_intervals(stats, metric, pal, _unit(metric), n_users, level)))
        figs.append((f"time-{metric}", f"{metric} against fit time",
                     "Each point: the final fit's wall time (mean over seeds) and the test value with its interval.",
                     P.accuracy_vs_time(stats, metric, fit_s, pal, _unit(metric))))
    acc = [b for b in exp.metrics["ranking"] if not stats[stats["base"] == b].empty]
    if acc and len(exp.metrics["k"]) > 1:
        figs.append(("at-k", "metrics at each cut-off k", "Full-ranking accuracy against the list length k.",
                     P.metric_at_k(stats, acc, pal)))
    lists = {r.label: r.lists for r in runs if r.lists is not None}
    if lists:
        k = parse_metric(primary)[1] or max(exp.metrics["k"])
        figs.append(("popularity", "popularity of recommended vs consumed items",
                     "Items are cut into ten equal groups by training popularity; each line gives the share of a "
                     "model's recommended items (or of the test interactions, dashed) in each group. A model above "
                     "the dashed line in group 1 over-recommends popular items.",
                     P.popularity(lists, ctx["test_items"], ctx["item_popularity"], pal, k)))
    if "@" in primary:
        at = activity_table(exp, runs, ctx, primary)
        if not at.empty:
            figs.append(("activity", f"{primary} by user activity bucket",
                         "Users grouped by their number of training interactions (cold users left, heavy users "
                         "right); bars: mean over the bucket's users with bootstrap intervals.",
                         P.activity(at, primary, pal)))
    curves = {r.label: r.curves for r in runs if r.curves}
    if curves:
        figs.append(("learning", "learning curves",
                     "Per epoch: rating models that score a validation set while training are fitted once more "
                     "on the training part and scored on the validation split (never the test split); other "
                     "iterative models show what they log during their final fit (models that log nothing, "
                     "e.g. ImplicitALS and BPR, are not shown).", P.learning_curves(curves, pal)))
    for r in runs:
        rules = r.extras.get("rules")
        if isinstance(rules, pd.DataFrame) and len(rules):
            figs.append((f"rules-{r.label}", f"association rules of {r.label}",
                         "Each dot is a rule A → c (a seeded sample when there are more than [report] rules_top); "
                         "lift > 1 means c is more likely with A than without.",
                         P.rules_scatter(rules, r.label, r.extras.get("rules_total"))))
    return figs


def _model_card(res: Any, run: Any, colour: str) -> str:
    from ..models import registry

    exp, stats, ctx = res.experiment, res.stats, res.context
    d = ctx["data"]
    desc = registry.info(run.name)[1]
    s = stats[stats["model"] == run.label]
    rows = "".join(
        f"<tr><td>{html.escape(r.metric)}</td><td>{fmt(r.value)}</td><td>[{fmt(r.low)}, {fmt(r.high)}]</td>"
        f"<td>{html.escape(r.verdict or '–')}</td><td>{'' if pd.isna(r.p_holm) else f'{r.p_holm:.3g}'}</td></tr>"
        for r in s.itertuples())
    t = run.tuning
    if t:
        ok = [x for x in t["trials"] if x.get("status") == "ok"]
        tuning = (f"tuned by {t['method']} search on the validation split ({len(ok)} trials, {t['seconds']:.0f} s, "
                  f"stopped by {t['stopped_by']}); best validation {t['metric']} = {t['best_value']:.4f} with "
                  f"{html.escape(str(t['best_params']))}; refit on train + validation.")
    else:
        tuning = "not tuned (parameters as given)."
    limits = [_TASK_LIMITS.get(run.task, ""), LIMITS.get(run.name, "")]
    if t and t.get("stopped_by") == "timeout":
        limits.append("Tuning was cut by its time budget: another machine may choose other hyperparameters.")
    if len(exp.seeds) > 1:
        limits.append(f"Per-user values are averaged over seeds {exp.seeds}; lists (coverage, gini, popularity) are "
                      "those of the first seed.")
    params = ", ".join(f"{k}={v}" for k, v in sorted(run.params.items())) or "defaults"
    return (f'<div class="card" id="card-{html.escape(run.label)}" style="--c:{colour}"><h3>{html.escape(run.label)} '
            f"<small>({html.escape(run.name)}: {html.escape(desc)})</small></h3>"
            f"<p class='meta'><b>Data</b>: {html.escape(str(d.get('dataset') or d.get('file')))}, {d['users']} users, "
            f"{d['items']} items, {d['interactions']} interactions. <b>Split</b>: {exp.split['method']} "
            f"(test {exp.split['test_size']}, seed {exp.split['seed']}). <b>Parameters</b>: {html.escape(params)}; "
            f"{tuning} <b>Fit</b>: {np.mean(run.fit_seconds):.2f} s (mean of {len(run.fit_seconds)} seed(s)).</p>"
            f"<table><thead><tr><th>metric</th><th>value</th><th>{int(round(100 * exp.metrics['level']))}% interval</th>"
            f"<th>vs best</th><th>p (Holm)</th></tr></thead><tbody>{rows}</tbody></table>"
            f"<p class='meta'><b>Known limits</b>: {html.escape(' '.join(x for x in limits if x))}</p></div>")


def write_html(res: Any, out_dir: str | Path) -> Path:
    """Write ``report.html`` (self-contained) and ``report.md`` + PNGs into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    exp, ctx = res.experiment, res.context
    try:
        figs = _figures(res)
    except ImportError:
        logger.warning("matplotlib is not installed: the report has no plots (pip install 'tastebud[report]')")
        figs = []
    pal = P.palette([r.label for r in res.runs])
    env = res.manifest.get("environment", {})
    mach = env.get("machine", {})
    d = ctx["data"]
    head = (f"<h1>Experiment: {html.escape(exp.name)}</h1><p class='meta'>Data: "
            f"{html.escape(str(d.get('dataset') or d.get('file')))} ({d['users']} users, {d['items']} items, "
            f"{d['interactions']} interactions; content sha256 <code>{d['content_sha256'][:16]}…</code>). Split: "
            f"{exp.split['method']}, test {exp.split['test_size']}; tuning on a validation split of "
            f"{exp.split['validation_size']} carved from training ({exp.tuning['method']}, ≤ {exp.tuning['trials']} "
            f"trials, ≤ {exp.tuning['timeout']:.0f} s per model), the test split read once per model. Seeds "
            f"{exp.seeds}. Run {html.escape(str(env.get('started')))} on {html.escape(str(mach.get('host')))} "
            f"({mach.get('cpus')} CPUs, load average {html.escape(_load(mach.get('load_avg')))}), tastebud "
            f"{html.escape(str(env.get('packages', {}).get('tastebud')))}, git "
            f"{html.escape(str((env.get('git') or {}).get('commit', 'n/a')))[:12]}; the full record is "
            f"<code>manifest.json</code>.</p>")
    parts = [head, f"<p class='legend'>{html.escape(legend(exp))}</p>"]
    if any("SAMPLED" in t for t in res.tables):
        parts.append("<p class='note'>Sampled metrics rank each relevant item against a few sampled negatives instead "
                     "of the whole catalogue; they overstate accuracy and can reorder models (Krichene &amp; Rendle, "
                     "KDD 2020), so they have their own table and never share a column with full-ranking numbers.</p>")
    parts.append("<h2>Tables</h2>")
    for title, df in res.tables.items():
        parts.append(f"<h3>{html.escape(title)}</h3>{_table_html(df)}")
    parts.append("<h2>Plots</h2>")
    md_figs = []
    for fid, alt, cap, png in figs:
        parts.append(_img(png, alt, cap, fid))
        (out / f"{fid}.png").write_bytes(png)
        md_figs += [f"![{alt}]({fid}.png)", "", f"*{cap}*", ""]
    parts.append("<h2>Model cards</h2>")
    for r in res.runs:
        parts.append(_model_card(res, r, pal[r.label][0]))
    page = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><meta name='viewport' "
            "content='width=device-width, initial-scale=1'>"
            f"<title>tastebud experiment: {html.escape(exp.name)}</title><style>{_CSS}</style></head><body>"
            + "\n".join(parts) + "</body></html>")
    (out / "report.html").write_text(page, encoding="utf-8")
    md = (Path(res.out_dir) / "README.md").read_text(encoding="utf-8") if (Path(res.out_dir) / "README.md").exists() else ""
    (out / "report.md").write_text(md + "\n## Plots\n\n" + "\n".join(md_figs), encoding="utf-8")
    return out / "report.html"
