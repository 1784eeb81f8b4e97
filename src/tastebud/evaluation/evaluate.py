"""``tastebud.evaluate(model, test, metrics=[...])``: one call for rating and ranking metrics.

Metric names (case-insensitive): ``rmse``, ``mae`` (via ``model.predict``);
``precision@k``, ``recall@k``, ``ndcg@k``, ``map@k``, ``mrr@k``, ``hit_rate@k`` (aliases ``hr@k``,
``hit@k``), ``coverage@k`` (full ranking via ``model.recommend``: every item except the user's training
items is a candidate); ``sampled_ndcg@k``, ``sampled_hit_rate@k``, ``sampled_mrr@k``, ``sampled_auc``
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
from . import metrics as M

logger = logging.getLogger("tastebud")

__all__ = ["evaluate", "parse_metric"]

_RANKING = {"precision", "recall", "ndcg", "map", "mrr", "hit_rate", "coverage"}
_SAMPLED = {"sampled_ndcg", "sampled_hit_rate", "sampled_mrr", "sampled_auc"}
_ALIASES = {"hr": "hit_rate", "hit": "hit_rate", "hitrate": "hit_rate", "hit_ratio": "hit_rate",
            "sampled_hr": "sampled_hit_rate", "sampled_hit": "sampled_hit_rate", "auc": "sampled_auc",
            "prec": "precision", "p": "precision"}


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
) -> dict[str, float]:
    """Evaluate a fitted ``model`` on ``test`` (Interactions sharing the model's external ids).

    Rating metrics predict every test pair (unseen users/items get the model's fallback, counted in
    ``model.n_fallbacks_``). Ranking metrics rank all items for each test user, excluding the user's
    training items (``filter_seen``); a test item is relevant when its value is at least
    ``relevance_threshold`` (default: every test interaction). Users without a relevant test item are
    skipped; test users unknown to the model are skipped with a warning. Every relevant test item
    counts, including items the model has never seen: they are misses, but they count in R (recall's
    denominator, the ideal DCG, MAP's normaliser) and, for sampled metrics, as cases ranked below all
    their negatives. Returns ``{name: value}`` in the order asked.
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

    rating = [p for p in parsed if p[1] in ("rmse", "mae")]
    if rating:
        if not hasattr(model, "predict"):
            raise ValueError(f"{type(model).__name__} does not predict ratings; cannot compute {[p[0] for p in rating]}")
        u, i, r, _ = test.coo()
        yhat = model.predict(test.users.ids[u], test.items.ids[i])
        for name, base, _ in rating:
            out[name] = M.rmse(r, yhat) if base == "rmse" else M.mae(r, yhat)

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
            vals = M.ranking_metrics(ranked, rel, ks, n_relevant=n_rel) if ks else {}
            for name, base, kk in ranking:
                out[name] = M.coverage(ranked[:, :kk], len(model.items_)) if base == "coverage" else vals[f"{base}@{kk}"]
        if sampled:
            out.update(_sampled(model, users, rel, n_unseen, sampled, n_negatives, ties, batch_size, random_state))
    return {name: out[name] for name, _, _ in parsed}


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


def _sampled(model, users, rel, n_unseen, wanted, n_negatives, ties, batch_size, random_state) -> dict[str, float]:
    """Each (user, relevant test item) against ``n_negatives`` items drawn uniformly (with replacement,
    as in SASRec's evaluation code) from the items the user has neither in training nor in test.
    The ``n_unseen`` relevant pairs whose item the model has never seen cannot be scored: each is a
    case ranked below all its negatives (hit, NDCG, MRR and AUC 0), so every metric is the sum over
    the scored cases divided by all cases."""
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
    pos_all, neg_all = [], []
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
    n_scored = int(sum(len(p) for p in pos_all))
    share = n_scored / (n_scored + n_unseen) if n_scored + n_unseen else 0.0
    if n_scored:
        pos, neg = np.concatenate(pos_all), np.concatenate(neg_all)
    for name, base, kk in wanted:
        key = {"sampled_ndcg": f"ndcg@{kk}", "sampled_hit_rate": f"hit_rate@{kk}", "sampled_mrr": f"mrr@{kk}",
               "sampled_auc": "auc"}[base]
        out[name] = M.sampled_rank_metrics(pos, neg, k=kk or 10, ties=ties)[key] * share if n_scored else 0.0
    return out
