"""Fit and evaluate registered models with each task's standard protocol (used by
``tastebud evaluate`` and ``make demo``).

Protocols
  rating    official MovieLens-100K folds (u1 only with ``quick``; else u1..u5, averaged) or a
            seeded 80/20 holdout; RMSE, MAE, fit seconds, fallbacks (test pairs answered by the
            fallback, total over folds). Needs explicit ratings.
  topn      every interaction as implicit feedback, 20% of each user's items held out; full
            ranking excluding training items: ndcg@k, recall@2k, hit_rate@k, coverage@k.
  sequence  each user's last item held out (users with ≥ 3 items), models trained on all
            remaining history; a seeded sample of users scored by full ranking with history
            items excluded: hit_rate@k, ndcg@k.
  baskets   frequent itemsets and rules on the baskets; hide one item per held-out basket (20% of
            baskets, seeded) and recommend it back from the rest (hit rate, MRR at k) against
            popularity. Rule recommenders and sequence models that also learn from baskets
            (``accepts_baskets``, e.g. Item2Vec) are scored this way.

A model that does not apply to the data (a rating model on data without ratings, a sequence model
on baskets...) is not dropped silently: it is listed in a "skipped models" table with the reason.
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
        row["fallbacks"] = int(sum(r["fallbacks"] for r in res))  # a count: total over folds
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


def _sequences_of(ds: Any) -> Any:
    """The dataset's sequences, or its interactions ordered by timestamp, or None."""
    if getattr(ds, "sequences", None) is not None:
        return ds.sequences
    inter = getattr(ds, "interactions", None)
    if inter is not None and inter.timestamps is not None:
        from ..data import Sequences

        return Sequences.from_interactions(inter)
    return None


def sequence_table(ds: Any, names: list[str], quick: bool = True, k: int = 10) -> pd.DataFrame:
    from ..data import Interactions
    from .evaluate import evaluate

    seqs = _sequences_of(ds)
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


def _hidden_item_queries(lists: list, random_state: int = 0) -> tuple[list, list]:
    """One random item hidden from every basket with >= 2 distinct items (the same seeded draw as
    ``models.rules.recommender.evaluate_hidden_item``): (queries, hidden items)."""
    rng = np.random.default_rng(random_state)
    queries, hidden = [], []
    for b in lists:
        b = list(dict.fromkeys(b))
        if len(b) < 2:
            continue
        h = int(rng.integers(len(b)))
        hidden.append(b[h])
        queries.append(b[:h] + b[h + 1:])
    return queries, hidden


def _hit_mrr(rows: Any, hidden: list, k: int) -> tuple[float, float]:
    hits, rr = 0, 0.0
    for row, h in zip(rows, hidden):
        row = list(row)[:k]
        if h in row:
            hits += 1
            rr += 1.0 / (row.index(h) + 1)
    return hits / len(hidden), rr / len(hidden)


def baskets_table(ds: Any, names: list[str] | None = None, quick: bool = True, k: int = 10) -> pd.DataFrame:
    """The basket protocol: ``fpgrowth`` reports its itemsets and rules; ``rules`` and models that
    learn from baskets recommend the hidden item of each held-out basket; popularity (most frequent
    training items not in the basket) is the reference row."""
    import warnings

    from ..data import Baskets
    from ..models.rules.recommender import split_baskets

    names = ["fpgrowth", "rules"] if names is None else names
    train, test = split_baskets(ds.baskets, test_size=0.2, random_state=0)
    queries, hidden = _hidden_item_queries(test)
    if not queries:
        raise ValueError(f"{ds.name}: no held-out basket has 2 or more items; the basket protocol needs some")
    rows = []
    for name in names:
        cls = registry.get(name)
        params = dict(cls.demo_params) if quick else {}
        row: dict[str, Any] = {"model": name}
        if name == "fpgrowth":
            params.setdefault("min_support", 0.005)
            m = cls(**params)
            t0 = time.perf_counter()
            m.fit(ds.baskets)
            row["min_support"] = params["min_support"]
            row["itemsets"] = len(m.itemsets())
            row[f"rules(conf>=0.2)"] = len(m.rules(metric="confidence", min_threshold=0.2))
            row["fit_s"] = time.perf_counter() - t0
            rows.append(row)
            continue
        if registry.info(name)[0] == "sequence" and "mode" in cls().get_params():
            params.setdefault("mode", "basket")  # item2vec's set context for baskets
        m = cls(**params)
        row["fit_s"] = _timed_fit(m, Baskets(train))
        with warnings.catch_warnings():  # unknown / empty histories are expected here: they are misses
            warnings.simplefilter("ignore")
            if hasattr(m, "recommend_for_history") and registry.info(name)[0] != "baskets":
                ids, _ = m.recommend_for_history(queries, k=k)
            else:
                ids, _ = m.recommend(queries, k=k)
        row[f"hit_rate@{k}"], row[f"mrr@{k}"] = _hit_mrr(ids, hidden, k)
        if "min_support" in m.get_params():
            row["min_support"] = m.get_params()["min_support"]
        rows.append(row)
    b = Baskets(train)
    order = np.lexsort((np.arange(b.n_items), -b.item_counts()))
    pop_ids = b.items.ids[order].tolist()
    pop_rows = ([it for it in pop_ids if it not in set(q)][:k] for q in queries)
    hr, mrr = _hit_mrr(pop_rows, hidden, k)
    rows.append({"model": "popularity", f"hit_rate@{k}": hr, f"mrr@{k}": mrr, "fit_s": 0.0})
    df = pd.DataFrame(rows)
    for col in ("itemsets", "rules(conf>=0.2)"):
        if col in df:
            df[col] = df[col].astype("Int64")
    df["baskets"] = len(queries)
    return df


def plan(ds: Any, names: list[str]) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Which protocol each model runs on ``ds`` (``{protocol: [names]}``, protocols ``rating``,
    ``topn``, ``sequence``, ``baskets``) and why the others cannot run (``{name: reason}``)."""
    by: dict[str, list[str]] = {}
    skipped: dict[str, str] = {}
    has_ratings = getattr(ds, "has_ratings", True)
    holds = [f for f in ("interactions", "sequences", "baskets") if getattr(ds, f, None) is not None]
    what = f"{ds.name} holds {' and '.join(holds) if holds else 'nothing usable'}"
    for n in names:
        if not registry.available(n):
            skipped[n] = "not installed (its optional extra is missing; see `tastebud models`)"
            continue
        task = registry.info(n)[0]
        if task in ("rating", "topn"):
            if ds.interactions is None:
                skipped[n] = f"needs user-item interactions; {what}"
            elif task == "rating" and not has_ratings:
                skipped[n] = f"needs explicit ratings; {ds.name} has no rating column (implicit data: use a top-N model)"
            else:
                by.setdefault(task, []).append(n)
        elif task == "sequence":
            if ds.sequences is not None or (ds.interactions is not None and ds.interactions.timestamps is not None):
                by.setdefault("sequence", []).append(n)
            elif ds.baskets is not None and getattr(registry.get(n), "accepts_baskets", False):
                by.setdefault("baskets", []).append(n)
            else:
                skipped[n] = f"needs sequences (user item lines, or interactions with timestamps); {what}"
        elif task == "baskets":
            if ds.baskets is not None:
                by.setdefault("baskets", []).append(n)
            else:
                skipped[n] = f"needs baskets (one basket per line); {what}"
        else:
            skipped[n] = (f"task {task!r} has no standard protocol in `tastebud evaluate` "
                          "(fit it from Python; see its docs)")
    for n, why in skipped.items():
        logger.warning("model %r skipped: %s", n, why)
    return by, skipped


def run_comparison(dataset: Any, names: list[str], quick: bool = True, k: int = 10,
                   report_dir: str | None = None) -> dict[str, pd.DataFrame]:
    """Fit and evaluate ``names`` on ``dataset`` (a name, a loaded Dataset, or any object with
    ``name, interactions, sequences, baskets`` such as ``model_io.load_dataset_file``); one table per
    protocol, plus a ``skipped models`` table naming each model that does not apply and why."""
    from ..data import datasets

    ds = datasets.load(dataset) if isinstance(dataset, str) else dataset
    for n in names:
        registry.info(n)  # unknown names fail early, before any fitting
    by_task, skipped = plan(ds, names)
    if not by_task:
        why = "; ".join(f"{n}: {r}" for n, r in skipped.items())
        raise ValueError(f"none of the models apply to {ds.name!r}: {why}")
    tables: dict[str, pd.DataFrame] = {}
    if by_task.get("rating"):
        tables[f"rating prediction ({ds.name})"] = rating_table(ds, by_task["rating"], quick)
    if by_task.get("topn"):
        tables[f"top-{k} ranking ({ds.name})"] = topn_table(ds, by_task["topn"], quick, k)
    if by_task.get("sequence"):
        seq = by_task["sequence"] + ([] if "popularity" in by_task["sequence"] else ["popularity"])
        tables[f"next-item ({ds.name})"] = sequence_table(ds, seq, quick, k)
    if by_task.get("baskets"):
        tables[f"baskets: hidden item ({ds.name})"] = baskets_table(ds, by_task["baskets"], quick, k)
    if skipped:
        tables["skipped models"] = pd.DataFrame({"model": list(skipped), "reason": list(skipped.values())})
    if report_dir:
        from .report import write_report

        write_report(tables, report_dir, title=f"tastebud evaluate: {ds.name}")
    return tables
