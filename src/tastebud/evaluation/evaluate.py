"""``tastebud.evaluate(model, test, metrics=[...])``: one call for rating and ranking metrics.

Metric names (case-insensitive): ``rmse``, ``mae`` (via ``model.predict``);
``precision@k``, ``recall@k``, ``ndcg@k``, ``map@k``, ``mrr@k``, ``hit_rate@k`` (aliases ``hr@k``,
``hit@k``), ``coverage@k`` (full ranking via ``model.recommend``: every item except the user's training
items is a candidate); beyond accuracy, from the same lists (``tastebud.evaluation.beyond``):
``novelty@k``, ``diversity@k``, ``serendipity@k``, ``popularity@k``, ``popularity_lift@k``,
``gini@k``; ``sampled_ndcg@k``, ``sampled_hit_rate@k``, ``sampled_mrr@k``, ``sampled_auc``
(each test item against ``n_negatives`` items the user never touched, scored by ``model._scores``).
A name without ``@k`` uses ``k`` (default 10). Relevant test items the model has never seen are
misses that still count (in R for full ranking; as a case ranked last for sampled metrics).
"""

from __future__ import annotations

import logging
import re
import warnings
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp

from ..data.interactions import Interactions, as_interactions
from . import beyond as B
from . import metrics as M

logger = logging.getLogger("tastebud")

__all__ = ["evaluate", "parse_metric"]

_RANKING = {"precision", "recall", "ndcg", "map", "mrr", "hit_rate", "coverage",
            "novelty", "diversity", "serendipity", "popularity", "popularity_lift", "gini"}
_LIST_LEVEL = {"coverage", "gini"}  # one value for all lists together: no per-user value
_SAMPLED = {"sampled_ndcg", "sampled_hit_rate", "sampled_mrr", "sampled_auc"}
_ALIASES = {"hr": "hit_rate", "hit": "hit_rate", "hitrate": "hit_rate", "hit_ratio": "hit_rate",
            "sampled_hr": "sampled_hit_rate", "sampled_hit": "sampled_hit_rate", "auc": "sampled_auc",
            "prec": "precision", "p": "precision", "arp": "popularity", "pop_lift": "popularity_lift",
            "ild": "diversity"}


def parse_metric(name: str, k: int | None = None) -> tuple[str, int | None]:
    """``"ndcg@10"`` → ``("ndcg", 10)``; ``"rmse"`` → ``("rmse", None)``."""
    if not isinstance(name, str):
        raise ValueError(f"metric names must be strings, got {name!r}")
    m = re.fullmatch(r"\s*([A-Za-z_]+)\s*(?:@\s*(\d+))?\s*", name)
    if not m:
        raise ValueError(f"cannot parse metric name {name!r} (expected e.g. 'rmse' or 'ndcg@10')")
    base = m.group(1).lower()
    base = _ALIASES.get(base, base)
    kk = int(m.group(2)) if m.group(2) else None
    if base in ("rmse", "mae"):
        if kk is not None:
            raise ValueError(f"{base} takes no cut-off, got {name!r}")
        return base, None
    if base == "sampled_auc":
        return base, None
    if base not in _RANKING | _SAMPLED:
        known = sorted({"rmse", "mae"} | _RANKING | _SAMPLED)
        raise ValueError(f"unknown metric {name!r}; known: {', '.join(known)} (with @k where it applies)")
    kk = kk if kk is not None else (10 if k is None else k)
    if kk < 1:
        raise ValueError(f"metric {name!r}: k must be >= 1")
    return base, kk


def evaluate(
    model: Any,
    test: Any,
    metrics: Sequence[str] = ("ndcg@10",),
    k: int | None = None,
    *,
    relevance_threshold: float | None = None,
    n_negatives: int = 100,
    ties: str = "pessimistic",
    batch_size: int = 1024,
    random_state: Any = 0,
    item_features: Any = None,
    per_user: bool = False,
) -> Any:
    """Evaluate a fitted ``model`` on ``test`` (Interactions sharing the model's external ids).

    Rating metrics predict every test pair (unseen users/items get the model's fallback, counted in
    ``model.n_fallbacks_``). Ranking metrics rank all items for each test user, excluding the user's
    training items (``filter_seen``); a test item is relevant when its value is at least
    ``relevance_threshold`` (default: every test interaction). Users without a relevant test item are
    skipped; test users unknown to the model are skipped with a warning. Every relevant test item
    counts, including items the model has never seen: they are misses, but they count in R (recall's
    denominator, the ideal DCG, MAP's normaliser) and, for sampled metrics, as cases ranked below all
    their negatives. Returns ``{name: value}`` in the order asked.

    ``item_features`` (an ``(n_items, d)`` array or sparse matrix in the model's item order, or
    ``"model"`` for ``model.item_vectors()``) sets the item vectors of ``diversity@k``; by default
    each item is its column of the model's training matrix. ``per_user=True`` returns
    ``(summary, frame)``: one row per evaluated user (index: external user id), a column per metric
    with that user's value (NaN where undefined; list-level ``coverage``/``gini`` have none) and the
    weights that recover the summary from the rows: ``n_ratings`` (test pairs; ``rmse`` is
    √(Σ n·rmse_u²/Σ n), ``mae`` Σ n·mae_u/Σ n) and ``n_relevant`` (R; ``sampled_*`` are R-weighted
    means); ranking metrics are plain means over the users that have them.
    """
    if isinstance(metrics, str):
        metrics = [metrics]
    parsed = [(name, *parse_metric(name, k)) for name in metrics]
    if not parsed:
        raise ValueError("metrics is empty")
    if not getattr(model, "fitted_", False):
        from ..exceptions import NotFittedError
        raise NotFittedError(f"{type(model).__name__} is not fitted yet; call fit() first")
    test = as_interactions(test)
    if test.nnz == 0:
        raise ValueError("the test set has no interactions")
    out: dict[str, float] = {}
    cols: dict[str, Any] = {}  # per-user columns: name -> pandas Series indexed by external user id

    rating = [p for p in parsed if p[1] in ("rmse", "mae")]
    if rating:
        if not hasattr(model, "predict"):
            raise ValueError(f"{type(model).__name__} does not predict ratings; cannot compute {[p[0] for p in rating]}")
        u, i, r, _ = test.coo()
        yhat = model.predict(test.users.ids[u], test.items.ids[i])
        for name, base, _ in rating:
            out[name] = M.rmse(r, yhat) if base == "rmse" else M.mae(r, yhat)
        if per_user:
            cols.update(_rating_per_user(test, u, r, yhat, rating))

    ranking = [p for p in parsed if p[1] in _RANKING]
    sampled = [p for p in parsed if p[1] in _SAMPLED]
    if ranking or sampled:
        users, rel, n_rel, unknown_users, n_unseen = _relevance(model, test, relevance_threshold)
        if unknown_users:
            warnings.warn(f"evaluate: {unknown_users} test user(s) unknown to the model were skipped", stacklevel=2)
        if len(users) == 0:
            raise ValueError("no test user known to the model has a relevant test item")
        if ranking:
            kmax = max(p[2] for p in ranking)
            ranked = _ranked(model, users, kmax, batch_size)
            ks: dict[str, list[int]] = {}
            for _, base, kk in ranking:
                if base != "coverage":
                    ks.setdefault(base, []).append(kk)
            acc = {b: v for b, v in ks.items() if b in M._BY_NAME}
            vals = M.ranking_metrics(ranked, rel, acc, n_relevant=n_rel) if acc else {}
            for name, base, kk in ranking:
                if base in _LIST_LEVEL:
                    out[name] = (M.coverage if base == "coverage" else B.gini)(ranked[:, :kk], len(model.items_))
                    continue
                if base in M._BY_NAME and not per_user:
                    out[name] = vals[f"{base}@{kk}"]
                    continue
                v = _per_user_ranking(model, base, ranked[:, :kk], rel, n_rel, users, item_features)
                out[name] = float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")
                if per_user:
                    cols[name] = _series(model.users_.ids[users], v)
            if per_user:
                cols["n_relevant"] = _series(model.users_.ids[users], n_rel)
        if sampled:
            vals_s, per_s = _sampled(model, users, rel, n_unseen, sampled, n_negatives, ties, batch_size,
                                     random_state, n_rel)
            out.update(vals_s)
            if per_user:
                cols.update({name: _series(model.users_.ids[users], v) for name, v in per_s.items()})
                cols["n_relevant"] = _series(model.users_.ids[users], n_rel)
    summary = {name: out[name] for name, _, _ in parsed}
    if not per_user:
        return summary
    import pandas as pd

    frame = pd.DataFrame(cols)
    frame.index.name = "user"
    order = [n for n, b, _ in parsed if n in cols] + [c for c in ("n_ratings", "n_relevant") if c in cols]
    return summary, frame[order]


def _series(index: np.ndarray, values: np.ndarray) -> Any:
    import pandas as pd

    return pd.Series(np.asarray(values, dtype=np.float64), index=pd.Index(index, dtype=object))


def _rating_per_user(test: Interactions, u: np.ndarray, r: np.ndarray, yhat: np.ndarray, rating: list) -> dict[str, Any]:
    """Per-user RMSE/MAE and the user's number of test pairs (the weights of the summary)."""
    n = np.bincount(u, minlength=test.n_users)
    has = np.flatnonzero(n)
    e = np.asarray(yhat, dtype=np.float64) - r
    sq = np.bincount(u, weights=e * e, minlength=test.n_users)[has] / n[has]
    ab = np.bincount(u, weights=np.abs(e), minlength=test.n_users)[has] / n[has]
    ids = test.users.ids[has]
    out = {name: _series(ids, np.sqrt(sq) if base == "rmse" else ab) for name, base, _ in rating}
    out["n_ratings"] = _series(ids, n[has])
    return out


def _per_user_ranking(model: Any, base: str, ranked: np.ndarray, rel: Any, n_rel: np.ndarray, users: np.ndarray,
                      item_features: Any) -> np.ndarray:
    """Per-user values of a ranking or beyond-accuracy metric (NaN where undefined)."""
    kk = ranked.shape[1]
    if base in M._BY_NAME:
        fn = {"precision": M.precision_at_k, "recall": M.recall_at_k, "ndcg": M.ndcg_at_k, "map": M.map_at_k,
              "mrr": M.mrr_at_k, "hit_rate": M.hit_rate_at_k}[base]
        return fn(ranked, rel, kk, reduce="none", n_relevant=n_rel)
    counts, n_train = model.item_counts_, model.seen_.shape[0]
    if base == "novelty":
        return B.novelty(ranked, counts, n_train, reduce="none")
    if base == "popularity":
        return B.popularity(ranked, counts, reduce="none")
    if base == "popularity_lift":
        return B.popularity_lift(ranked, counts, model.seen_[users], reduce="none")
    if base == "serendipity":
        return B.serendipity(ranked, rel, counts, model.seen_[users], reduce="none", n_relevant=n_rel)
    if base == "diversity":
        return B.diversity(ranked, _item_features(model, item_features), reduce="none")
    raise ValueError(f"no per-user definition for {base!r}")


def _item_features(model: Any, item_features: Any) -> Any:
    if item_features is None:
        return B.item_vectors_from_seen(model.seen_)
    if isinstance(item_features, str):
        if item_features != "model":
            raise ValueError(f"item_features must be an array, a sparse matrix, None or 'model', got {item_features!r}")
        V = model.item_vectors() if hasattr(model, "item_vectors") else None
        if V is None:
            raise ValueError(f"item_features='model': {type(model).__name__} has no item vectors")
        return V
    if getattr(item_features, "shape", (None,))[0] != len(model.items_):
        raise ValueError(f"item_features must have one row per model item ({len(model.items_)}), "
                         f"got shape {getattr(item_features, 'shape', None)}")
    return item_features


def _relevance(model: Any, test: Interactions, threshold: float | None):
    """Test relevance in the model's index space.

    Returns (user indices, csr rel over model items, n_rel, #unknown users, #unknown relevant pairs).
    ``n_rel`` counts every distinct relevant test item of the user, including items the model has
    never seen: those cannot be ranked (misses) but belong in R (recall's denominator, IDCG, MAP's
    normaliser). Distinctness is decided on the test's own ids, so two unseen items count twice.
    """
    u, i, r, _ = test.coo()  # canonical CSR: each (user, item) pair once
    keep = np.ones(len(u), bool) if threshold is None else r >= threshold
    u, i = u[keep], i[keep]
    mu = model.users_.index(test.users.ids, missing="mask")[u]
    mi = model.items_.index(test.items.ids, missing="mask")[i]
    unknown_users = len(np.unique(u[mu < 0]))
    ok = mu >= 0
    mu, mi = mu[ok], mi[ok]
    users = np.unique(mu)
    row = np.searchsorted(users, mu)
    n_rel = np.bincount(row, minlength=len(users)).astype(np.float64)
    known = mi >= 0
    rel = sp.csr_matrix((np.ones(int(known.sum()), np.float32), (row[known], mi[known])),
                        shape=(len(users), len(model.items_)))
    rel.sum_duplicates()
    rel.data[:] = 1.0
    return users, rel, n_rel, unknown_users, int((~known).sum())


def _ranked(model: Any, users: np.ndarray, k: int, batch_size: int) -> np.ndarray:
    """Top-k item indices (−1 padding) for model user indices, via the public ``recommend``."""
    n_items = len(model.items_)
    if k > n_items:
        raise ValueError(f"k={k} exceeds the number of items ({n_items})")
    out = np.full((len(users), k), -1, dtype=np.int64)
    ext_users = model.users_.ids[users]
    for s in range(0, len(users), batch_size):
        ids, scores = model.recommend(ext_users[s:s + batch_size], k=k, filter_seen=True)
        ids = np.asarray(ids)
        scores = np.asarray(scores, dtype=np.float64)
        pad = ~np.isfinite(scores)
        if pad.any():
            ids = ids.astype(object)
            ids[pad] = model.items_.ids[0]
        idx = model.items_.index(ids.ravel().tolist() if ids.dtype == object else ids.ravel()).reshape(ids.shape)
        idx[pad] = -1
        out[s:s + len(ids)] = idx
    return out


def _sampled(model, users, rel, n_unseen, wanted, n_negatives, ties, batch_size, random_state, n_rel):
    """Each (user, relevant test item) against ``n_negatives`` items drawn uniformly (with replacement,
    as in SASRec's evaluation code) from the items the user has neither in training nor in test.
    The ``n_unseen`` relevant pairs whose item the model has never seen cannot be scored: each is a
    case ranked below all its negatives (hit, NDCG, MRR and AUC 0), so every metric is the sum over
    the scored cases divided by all cases. Returns ``({name: value}, {name: per-user value})``, the
    per-user value being the user's scored-case sum over its R (``n_rel``) cases."""
    if not hasattr(model, "_scores"):
        raise ValueError(f"{type(model).__name__} has no _scores; sampled metrics need item scores")
    if not isinstance(n_negatives, (int, np.integer)) or n_negatives < 1:
        raise ValueError(f"n_negatives must be a positive integer, got {n_negatives!r}")
    rng = np.random.default_rng(random_state)
    n_items = len(model.items_)
    seen = model.seen_[users]
    touched = (seen + rel).tocsr()
    touched.sum_duplicates()
    touched.sort_indices()
    free = n_items - np.diff(touched.indptr)
    if (free[np.diff(rel.indptr) > 0] < 1).any():
        raise ValueError("a test user has touched every item: no negatives to sample")
    pos_all, neg_all, row_all = [], [], []
    batch_size = max(1, min(batch_size, int(64e6 // max(n_items, 1))))  # dense masks stay under ~64 MB
    for s in range(0, len(users), batch_size):
        ub = np.arange(s, min(s + batch_size, len(users)))
        R = rel[ub]
        if R.nnz == 0:
            continue
        S = np.asarray(model._scores(users[ub]))  # gathered below, converted after gathering
        T = touched[ub]
        mask = np.zeros((len(ub), n_items), dtype=bool)
        mask[np.repeat(np.arange(len(ub)), np.diff(T.indptr)), T.indices] = True
        rows = np.repeat(np.arange(len(ub)), np.diff(R.indptr))
        pos_all.append(S[rows, R.indices].astype(np.float64))
        row_all.append(ub[rows])
        # rejection sampling, vectorised: redraw only the slots that hit a touched item
        neg = rng.integers(0, n_items, (len(rows), n_negatives))
        for _ in range(10_000):
            bad = mask[rows[:, None], neg]
            if not bad.any():
                break
            neg[bad] = rng.integers(0, n_items, int(bad.sum()))
        else:
            raise RuntimeError("could not sample negatives: users have touched almost every item")
        neg_all.append(S[rows[:, None], neg].astype(np.float64))
    out: dict[str, float] = {}
    per: dict[str, np.ndarray] = {}
    n_scored = int(sum(len(p) for p in pos_all))
    share = n_scored / (n_scored + n_unseen) if n_scored + n_unseen else 0.0
    if n_scored:
        pos, neg, row = np.concatenate(pos_all), np.concatenate(neg_all), np.concatenate(row_all)
    for name, base, kk in wanted:
        key = {"sampled_ndcg": f"ndcg@{kk}", "sampled_hit_rate": f"hit_rate@{kk}", "sampled_mrr": f"mrr@{kk}",
               "sampled_auc": "auc"}[base]
        if not n_scored:
            out[name], per[name] = 0.0, np.zeros(len(users))
            continue
        case = M.sampled_rank_values(pos, neg, k=kk or 10, ties=ties)[key]
        out[name] = float(case.mean()) * share
        per[name] = np.bincount(row, weights=case, minlength=len(users)) / np.maximum(n_rel, 1)
    return out, per
