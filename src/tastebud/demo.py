"""``make demo``: train the model zoo offline and print a comparison table.

Uses the real datasets under ``$TASTEBUD_DATA`` when present (MovieLens-100K for ratings and
top-N, Amazon Games for next-item, Groceries for rules) and seeded synthetic data otherwise.
Every registered model runs with its ``demo_params`` (small, fast settings), so the whole demo
takes a few minutes on 2 cores. Tables are printed and written to ``--report`` (markdown, CSV, plots).

    python -m tastebud.demo [--report report] [--full]
"""

from __future__ import annotations

import argparse
import logging
import os
import time
import types
from typing import Any

import numpy as np
import pandas as pd

from .evaluation import runner
from .models import registry

logger = logging.getLogger("tastebud")


def _dataset(name: str) -> Any | None:
    from .data import datasets

    try:
        return datasets.load(name, download=False)
    except (FileNotFoundError, OSError, ValueError, KeyError) as e:
        logger.info("dataset %s not available offline (%s); using synthetic data", name, e)
        return None


def _synthetic() -> dict[str, Any]:
    from .data import synthetic

    ratings = synthetic.low_rank_ratings(n_users=600, n_items=400, rank=5, density=0.05, random_state=0)
    seqs = synthetic.planted_sequences(n_users=2000, n_items=300, min_length=5, max_length=30, random_state=0)
    baskets = synthetic.planted_baskets(n_baskets=5000, n_items=100, random_state=0)
    pick = lambda x: x[0] if isinstance(x, tuple) else x  # generators return (data, truth)
    return {
        "ratings": types.SimpleNamespace(name="synthetic-ratings", interactions=pick(ratings), sequences=None, baskets=None),
        "sequences": types.SimpleNamespace(name="synthetic-sequences", interactions=None, sequences=pick(seqs), baskets=None),
        "baskets": types.SimpleNamespace(name="synthetic-baskets", interactions=None, sequences=None, baskets=pick(baskets)),
    }


def baskets_table(ds: Any, quick: bool = True) -> pd.DataFrame | None:
    """FP-Growth itemsets/rules, and the rule recommender against popularity when one item of each
    held-out basket is hidden (hit rate and MRR at 10): ``evaluation.runner.baskets_table``."""
    if not (registry.available("fpgrowth") and registry.available("rules")):
        return None
    return runner.baskets_table(ds, ["fpgrowth", "rules"], quick)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tastebud.demo", description=__doc__.split("\n\n")[0])
    ap.add_argument("--report", default="report", help="folder for the report (default: report/)")
    ap.add_argument("--full", action="store_true", help="full settings instead of each model's fast demo settings")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname)s %(message)s")
    quick = not args.full
    t_start = time.perf_counter()
    # compile (first run) or load every kernel now, so that no fit time below includes compiling
    from .warmup import warm_all

    warmed = warm_all(jobs=min(2, os.cpu_count() or 1))
    n_compiled = sum(r["compiled"] for r in warmed.values())
    t_warm = time.perf_counter() - t_start
    logger.info("numba kernels: %d compiled, the rest loaded from cache (%.1fs)", n_compiled, t_warm)

    ml = _dataset("movielens-100k")
    games = _dataset("amazon-games")
    groceries = _dataset("groceries")
    syn = _synthetic() if ml is None or games is None or groceries is None else {}
    rating_ds = ml or syn["ratings"]
    seq_ds = games or syn["sequences"]
    basket_ds = groceries or syn["baskets"]

    tables: dict[str, pd.DataFrame] = {}
    notes = [f"settings: {'each model’s demo_params (fast)' if quick else 'library defaults'}",
             f"TASTEBUD_DATA={os.environ.get('TASTEBUD_DATA', '(unset: synthetic data)')}",
             f"numba kernels compiled before timing: {n_compiled} ({t_warm:.0f}s; 0 when numba's cache is warm)"]
    avail, missing = runner._available(registry.names())
    if missing:
        notes.append(f"not available here: {', '.join(missing)}")
    rating = [n for n in avail if registry.info(n)[0] == "rating"]
    topn = [n for n in avail if registry.info(n)[0] == "topn"]
    seq = [n for n in avail if registry.info(n)[0] == "sequence"]
    if rating:
        tables[f"rating prediction ({rating_ds.name})"] = runner.rating_table(rating_ds, rating, quick)
    if topn:
        tables[f"top-10 ranking ({rating_ds.name})"] = runner.topn_table(rating_ds, topn, quick)
    if seq:
        tables[f"next-item ({seq_ds.name})"] = runner.sequence_table(seq_ds, seq + ["popularity"], quick)
    bt = baskets_table(basket_ds, quick)
    if bt is not None:
        tables[f"frequent itemsets ({basket_ds.name})"] = bt
    if "multimodal" in avail and ml is not None:
        mm = _multimodal_table(ml, quick)
        if mm is not None:
            tables["multimodal (movielens-100k u1)"] = mm

    for title, df in tables.items():
        print(f"\n## {title}\n")
        print(df.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    from .evaluation.report import write_report

    out = write_report(tables, args.report, title="tastebud demo", notes=notes)
    print(f"\nreport written to {out}/README.md  (total {time.perf_counter() - t_start:.0f}s)")
    return 0


def _multimodal_table(ml: Any, quick: bool) -> pd.DataFrame | None:
    from . import split
    from .evaluation.metrics import mae, rmse

    MM = registry.get("multimodal")
    train, test = split.official_folds(ml)[0]
    def frame(inter: Any) -> pd.DataFrame:
        df = inter.to_frame()
        users = ml.users[["age", "gender", "occupation"]]
        items = ml.items[["genres", "title", "year"]]
        df = df.join(users, on="user").join(items, on="item")
        df["year"] = df["year"].fillna(df["year"].median())
        return df
    tr, te = frame(train), frame(test)
    fields = {"user": "id", "item": "id", "age": "numeric", "gender": "categorical",
              "occupation": "categorical", "genres": "multi_hot", "title": "text", "year": "numeric"}
    params = dict(MM.demo_params) if quick else {}
    m = MM(fields=fields, target="rating", **params)
    t0 = time.perf_counter()
    m.fit(tr)
    secs = time.perf_counter() - t0
    p = np.asarray(m.predict(te), dtype=float)
    y = te["rating"].to_numpy()
    return pd.DataFrame([{"model": "multimodal", "rmse": rmse(y, p), "mae": mae(y, p), "fit_s": secs}])


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
