"""Fit and evaluate registered models with each task's standard protocol (used by
``tastebud evaluate`` and ``make demo``).

Protocols
  rating    official MovieLens-100K folds (u1 only with ``quick``; else u1..u5, averaged) or a
            seeded 80/20 holdout; RMSE, MAE, fit seconds, fallbacks.
  topn      every interaction as implicit feedback, 20% of each user's items held out; full
            ranking excluding training items: ndcg@k, recall@2k, hit_rate@k, coverage@k.
  sequence  each user's last item held out (users with ≥ 3 items), models trained on all
            remaining history; a seeded sample of users scored by full ranking with history
            items excluded: hit_rate@k, ndcg@k.
  baskets   frequent itemsets and rules on the baskets; hide one item per held-out basket and
            recommend it back (hit rate, MRR) against popularity.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pandas as pd

from ..models import registry

logger = logging.getLogger("tastebud")


def _make(name: str, quick: bool, **overrides: Any) -> Any:
    cls = registry.get(name)
    params = dict(cls.demo_params) if quick else {}
    params.update(overrides)
    return cls(**params)


def _timed_fit(model: Any, data: Any) -> float:
    t0 = time.perf_counter()
    model.fit(data)
    return time.perf_counter() - t0


def _available(names: list[str]) -> tuple[list[str], list[str]]:
    ok, missing = [], []
    for n in names:
        (ok if registry.available(n) else missing).append(n)
    for n in missing:
        logger.warning("model %r is not available (not implemented here or its extra is missing); skipped", n)
    return ok, missing


def rating_table(ds: Any, names: list[str], quick: bool = True) -> pd.DataFrame:
    from .. import split
    from .evaluate import evaluate

    if ds.name == "movielens-100k":
        folds = split.official_folds(ds)
        folds = folds[:1] if quick else folds
        protocol = "u1" if quick else "u1..u5 mean"
    else:
        folds = [split.holdout(ds.interactions, test_size=0.2, per_user=False, random_state=0)]
        protocol = "80/20 holdout"
    rows = []
    for name in names:
        res = []
        for train, test in folds:
            m = _make(name, quick)
            secs = _timed_fit(m, train)
            r = evaluate(m, test, metrics=["rmse", "mae"])
            r["fit_s"] = secs
            r["fallbacks"] = getattr(m, "n_fallbacks_", 0)
            res.append(r)
        row = {"model": name, **{k: float(np.mean([r[k] for r in res])) for k in res[0]}}
        row["protocol"] = protocol
        rows.append(row)
        logger.info("rating %s: %s", name, row)
    return pd.DataFrame(rows)


def topn_table(ds: Any, names: list[str], quick: bool = True, k: int = 10) -> pd.DataFrame:
    from .. import split
    from .evaluate import evaluate

    data = ds.interactions.binarize()
    train, test = split.holdout(data, test_size=0.2, per_user=True, random_state=0)
    metrics = [f"ndcg@{k}", f"recall@{2 * k}", f"hit_rate@{k}", f"coverage@{k}"]
    rows = []
    for name in names:
        m = _make(name, quick)
        secs = _timed_fit(m, train)
        r = evaluate(m, test, metrics=metrics)
        rows.append({"model": name, **r, "fit_s": secs})
        logger.info("topn %s: %s", name, rows[-1])
    return pd.DataFrame(rows)


def _sequence_split(seqs: Any, max_users: int | None, random_state: int = 0):
    """Hold out the last item of every user with >= 3 items (train keeps every user's other items);
    score a seeded sample of at most ``max_users`` of those users."""
    from ..data import Interactions, Sequences

    lens = seqs.lengths()
    held = lens >= 3
    train_lens = lens - held.astype(np.int64)
    keep = np.ones(len(seqs.indices), dtype=bool)
    keep[seqs.indptr[1:][held] - 1] = False
    ts = seqs.timestamps[keep] if seqs.timestamps is not None else None
    train = Sequences(np.concatenate([[0], np.cumsum(train_lens)]), seqs.indices[keep], seqs.users, seqs.items, ts)
    users = np.flatnonzero(held)
    if max_users is not None and len(users) > max_users:
        users = np.sort(np.random.default_rng(random_state).choice(users, max_users, replace=False))
    last = seqs.indices[seqs.indptr[users + 1] - 1]
    test = Interactions.from_arrays(seqs.users.ids[users], seqs.items.ids[last], user_map=seqs.users, item_map=seqs.items)
    return train, test


def sequence_table(ds: Any, names: list[str], quick: bool = True, k: int = 10) -> pd.DataFrame:
    from ..data import Interactions
    from .evaluate import evaluate

    seqs = ds.sequences
    train, test = _sequence_split(seqs, 6000 if quick else None)
    u = np.repeat(np.arange(train.n_users), train.lengths())
    as_inter = Interactions.from_arrays(train.users.ids[u], train.items.ids[train.indices],
                                        user_map=train.users, item_map=train.items)
    rows = []
    for name in names:
        task, _ = registry.info(name)
        m = _make(name, quick)
        secs = _timed_fit(m, train if task == "sequence" else as_inter)
        r = evaluate(m, test, metrics=[f"hit_rate@{k}", f"ndcg@{k}"])
        rows.append({"model": name, **r, "fit_s": secs, "users": test.nnz})
        logger.info("sequence %s: %s", name, rows[-1])
    return pd.DataFrame(rows)


def run_comparison(dataset: Any, names: list[str], quick: bool = True, k: int = 10,
                   report_dir: str | None = None) -> dict[str, pd.DataFrame]:
    """Fit and evaluate ``names`` on ``dataset`` (a name or a loaded Dataset); one table per task."""
    from ..data import datasets

    ds = datasets.load(dataset) if isinstance(dataset, str) else dataset
    for n in names:
        registry.info(n)  # unknown names fail early, before any fitting
    names, _ = _available(names)
    by_task: dict[str, list[str]] = {}
    for n in names:
        by_task.setdefault(registry.info(n)[0], []).append(n)
    tables: dict[str, pd.DataFrame] = {}
    if by_task.get("rating") and ds.interactions is not None:
        tables[f"rating prediction ({ds.name})"] = rating_table(ds, by_task["rating"], quick)
    if by_task.get("topn") and ds.interactions is not None:
        tables[f"top-{k} ranking ({ds.name})"] = topn_table(ds, by_task["topn"], quick, k)
    if by_task.get("sequence") and ds.sequences is not None:
        tables[f"next-item ({ds.name})"] = sequence_table(ds, by_task["sequence"] + ["popularity"], quick, k)
    if not tables:
        raise ValueError(f"none of the models {names} apply to dataset {ds.name!r}")
    if report_dir:
        from .report import write_report

        write_report(tables, report_dir, title=f"tastebud evaluate: {ds.name}")
    return tables
