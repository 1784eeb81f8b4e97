"""Reasons beside recommendations: the service asks the model for its explanation (a model
capability, computed in the model's own module) and formats it for JSON and the page.

Kinds (``"kind"`` of each explanation):

* ``contributions`` — ImplicitALS/EASE/Item2Vec: one term per history item; ``score`` is the sum
  of all terms (the served score when the recommendation came from the history), ``top`` the
  largest terms and ``rest`` the sum of the others.
* ``rule`` — RuleRecommender: antecedent → consequent with support, confidence and lift
  (``rule`` is null for a popularity fill-in).
* ``attention`` — SASRec: the next-item query's attention over the history (the same for every
  recommended item of one request).
* ``terms`` — FactorizationMachine: bias, largest linear and pairwise terms, ``rest``.
* ``similar`` — any other model with item vectors (MF, BPR, PureSVD, SVD++…): the history items
  nearest to the recommended item by cosine of the model's item vectors. Not a decomposition of
  the score; named so.
* ``none`` — the model has no explanation for this request (``reason`` says why).
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np


def _has_param(fn: Any, name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def explain(model: Any, targets: list[Any], history: list[Any], weights: list[float] | None,
            user: Any = None, top: int = 5) -> list[dict[str, Any]]:
    """One explanation per id of ``targets`` (``None`` padding entries get ``None``)."""
    real = [t for t in targets if t is not None]
    if not real:
        return [None for _ in targets]  # type: ignore[misc]
    by_item = _explain_real(model, real, history, weights, user, top)
    return [by_item.get(_k(t)) if t is not None else None for t in targets]  # type: ignore[misc]


def _k(v: Any) -> str:
    return str(v)


def _top(contribs: list[dict[str, Any]], top: int, key: str = "value") -> tuple[list[dict[str, Any]], float]:
    merged: dict[str, dict[str, Any]] = {}
    for c in contribs:  # a history item read twice (sequence models) is one reason
        m = merged.get(_k(c["item"]))
        if m is None:
            merged[_k(c["item"])] = dict(c)
        else:
            m[key] += c[key]
    vals = sorted(merged.values(), key=lambda c: -c[key])
    head = vals[:top]
    return head, float(sum(c[key] for c in vals[top:]))


def _explain_real(model: Any, targets: list[Any], history: list[Any], weights: list[float] | None,
                  user: Any, top: int) -> dict[str, dict[str, Any]]:
    if hasattr(model, "explain") and hasattr(model, "fp_"):  # RuleRecommender
        return {_k(e["item"]): {"kind": "rule", "rule": e["rule"]} for e in model.explain(history, targets)}
    if hasattr(model, "explain_pair"):
        if user is None:
            return {_k(t): {"kind": "none", "reason": "a factorization machine explains known users only"} for t in targets}
        out = {}
        for t in targets:
            e = model.explain_pair(user, t, top=top)
            out[_k(t)] = {"kind": "terms", "score": e["score"], "bias": e["bias"], "linear": e["linear"],
                          "pairwise": e["pairwise"], "rest": e["rest"]}
        return out
    fn = getattr(model, "explain_history", None)
    if fn is not None and not history:
        return {_k(t): {"kind": "none", "reason": "no history to explain from"} for t in targets}
    if fn is not None and _has_param(fn, "targets"):
        kw = {"weights": weights} if weights is not None and _has_param(fn, "weights") else {}
        out = {}
        for e in fn(history, targets, **kw):
            head, rest = _top(e["contributions"], top)
            out[_k(e["item"])] = {"kind": "contributions", "score": e["score"], "top": head, "rest": rest}
        return out
    if fn is not None:  # SASRec: attention over the history, shared by every target
        e = fn(history)
        att = [{"item": i, "weight": w} for i, w in zip(e["items"], e["weights"])]
        head, rest = _top(att, top, key="weight")
        ex = {"kind": "attention", "top": head, "rest": rest}
        return {_k(t): ex for t in targets}
    return _similar(model, targets, history, top)


def _similar(model: Any, targets: list[Any], history: list[Any], top: int) -> dict[str, dict[str, Any]]:
    try:
        V = model.item_vectors() if hasattr(model, "item_vectors") else None
    except Exception:  # noqa: BLE001 - a model without usable vectors just has no reasons
        V = None
    if V is None:
        return {_k(t): {"kind": "none", "reason": f"{type(model).__name__} has no item vectors"} for t in targets}
    if not history:
        return {_k(t): {"kind": "none", "reason": "no history to explain from"} for t in targets}
    h = model.items_.index(list(history), missing="mask")
    h = np.unique(h[h >= 0])
    t = model.items_.index(list(targets))
    V = np.asarray(V, dtype=np.float64)
    n = np.linalg.norm(V[np.concatenate([t, h])], axis=1)
    n[n == 0] = 1.0
    Vt, Vh = V[t] / n[: len(t), None], V[h] / n[len(t):, None]
    S = Vt @ Vh.T
    hid = model.items_.ids[h].tolist()
    out = {}
    for r, ti in enumerate(model.items_.ids[t].tolist()):
        o = np.argsort(-S[r], kind="stable")[:top]
        out[_k(ti)] = {"kind": "similar", "top": [{"item": hid[j], "similarity": float(S[r, j])} for j in o]}
    return out
