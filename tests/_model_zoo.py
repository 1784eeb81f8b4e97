"""One small fitted model of every registered class (and the data it was fitted on), for the tests
that save, mangle and reload model files (test_model_files.py, test_fuzz.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

# hyperparameter names before and after the vocabulary change of issue #14 (item 7)
_ALIASES = {"factors": ("factors", "n_factors", "rank", "dim"), "epochs": ("epochs", "n_epochs", "iterations", "n_iter")}


def kw(cls: type, **params: Any) -> dict[str, Any]:
    """``params`` under the names ``cls`` accepts (``factors``/``epochs`` or their old names)."""
    names = set(cls._param_names())
    out = {}
    for k, v in params.items():
        for cand in _ALIASES.get(k, (k,)):
            if cand in names:
                out[cand] = v
                break
        else:
            raise KeyError(f"{cls.__name__} has no parameter like {k!r}")
    return out


def datasets() -> dict[str, Any]:
    from tastebud.data import synthetic as S

    rat, _ = S.low_rank_ratings(n_users=25, n_items=15, n_ratings=200, integer=True, random_state=0)
    imp, _ = S.powerlaw_implicit(n_users=25, n_items=15, n_interactions=150, random_state=0)
    seqs, _ = S.planted_sequences(n_users=30, n_items=12, min_length=4, max_length=8, random_state=0)
    bask, _ = S.planted_baskets(n_baskets=200, n_items=12, n_rules=2, random_state=0)
    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame({"user": rng.integers(0, 20, n), "item": [f"m{j}" for j in rng.integers(0, 15, n)],
                          "age": rng.normal(30, 5, n), "genres": rng.choice(["a|b", "b", "c|a"], n),
                          "title": rng.choice(["good film", "bad film", "space war"], n),
                          "rating": rng.integers(1, 6, n).astype(float)})
    return {"rating": rat, "topn": imp, "sequence": seqs, "baskets": bask, "features": frame}


def make(name: str, data: dict[str, Any]) -> Any:
    """A small fitted model registered as ``name``."""
    import tastebud as tb
    from tastebud.models import registry

    cls = registry.get(name)
    task, _ = registry.info(name)
    p: dict[str, Any] = {}
    if name in ("mf", "svdpp", "als"):
        p = kw(cls, factors=3, epochs=3)
    elif name in ("implicit-als", "bpr"):
        p = {**kw(cls, factors=3, epochs=3), "num_threads": 1}
    elif name == "puresvd":
        p = kw(cls, factors=3)
    elif name == "fm":
        p = {**kw(cls, factors=3, epochs=6), "num_threads": 1}
    elif name == "ffm":
        p = {"factors": 3, "epochs": 3, "num_threads": 1}
    elif name == "bpr-fm":
        p = {"factors": 3, "epochs": 3, "num_threads": 1}
    elif name == "item2vec":
        p = {**kw(cls, factors=4, epochs=2), "num_threads": 1}
    elif name == "fpgrowth":
        p = {"min_support": 0.05}
    elif name == "rules":
        p = {"min_support": 0.05, "min_confidence": 0.1}
    elif name == "sasrec":
        p = {"hidden": 8, "layers": 1, "heads": 1, "max_len": 8, "epochs": 1, "num_threads": 1, "device": "cpu"}
    elif name == "multimodal":
        p = {"fields": {"user": "id", "item": "id", "age": "numeric", "genres": "multi_hot", "title": "text"},
             "epochs": 1, "factors": 4, "hidden": [8], "n_buckets": 64, "device": "cpu"}
    model = cls(**p)
    model.fit(data[task])
    assert isinstance(model, tb.models.base.Model)
    return model


def exercise(model: Any, data: dict[str, Any]) -> None:
    """Call what a user calls on a loaded model: recommend, predict, similar items, histories."""
    from tastebud.models import registry

    name = model.registry_name
    task, _ = registry.info(name)
    if name == "fpgrowth":
        model.itemsets()
        model.rules(min_threshold=0.1)
        return
    if name == "rules":
        model.recommend([list(model.items_.ids[:2])], k=3)
        return
    if name == "multimodal":
        model.predict(data["features"].head(20))
        model.recommend(list(model.schema_.vocab["user"][:2].astype(int)), k=3)
        return
    users = list(model.users_.ids[:3])
    items = list(model.items_.ids[:3])
    model.recommend(users, k=3)
    if hasattr(model, "predict") and task == "rating":
        model.predict(users, items)
    if model.item_vectors() is not None or name in ("ease", "transitions"):
        try:
            model.similar_items(items[0], k=3)
        except NotImplementedError:
            pass
    if hasattr(model, "recommend_for_history"):
        model.recommend_for_history(items[:2], k=3)
