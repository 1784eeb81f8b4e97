"""Name → model class registry, used by ``tastebud.load``, the CLI and the demo.

Entries are ``"module:Class"`` strings so that listing models never imports torch. A model
module may also call :func:`register` for classes defined outside this table (plugins).
"""

from __future__ import annotations

import importlib
from typing import Any

# name: (import path, task, one-line description)
#   task: "rating" (explicit ratings, predict), "topn" (implicit top-N on Interactions),
#         "sequence" (Sequences), "baskets" (Baskets), "features" (DataFrame/feature matrix)
_BUILTIN: dict[str, tuple[str, str, str]] = {
    "baseline": ("tastebud.models.baselines.baseline:BaselinePredictor", "rating", "global mean + regularised user/item biases (Koren)"),
    "popularity": ("tastebud.models.baselines.baseline:Popularity", "topn", "most popular items"),
    "mf": ("tastebud.models.mf.matrix_factorization:MatrixFactorization", "rating", "biased matrix factorization by SGD (Funk; Koren et al. 2009)"),
    "svdpp": ("tastebud.models.mf.svdpp:SVDpp", "rating", "SVD++ (Koren 2008)"),
    "als": ("tastebud.models.mf.als:ALS", "rating", "explicit ALS with weighted-λ regularisation (Zhou et al. 2008)"),
    "implicit-als": ("tastebud.models.mf.implicit_als:ImplicitALS", "topn", "implicit-feedback ALS (Hu, Koren & Volinsky 2008)"),
    "bpr": ("tastebud.models.mf.bpr:BPR", "topn", "Bayesian personalised ranking (Rendle et al. 2009)"),
    "puresvd": ("tastebud.models.mf.puresvd:PureSVD", "topn", "PureSVD (Cremonesi et al. 2010)"),
    "ease": ("tastebud.models.neighbours.ease:EASE", "topn", "EASE closed-form item-item model (Steck 2019)"),
    "itemknn": ("tastebud.models.neighbours.knn:ItemKNN", "topn", "item-based k-nearest neighbours, sparse top-k (Sarwar et al. 2001)"),
    "userknn": ("tastebud.models.neighbours.knn:UserKNN", "topn", "user-based k-nearest neighbours, sparse top-k (Herlocker et al. 1999)"),
    "sar": ("tastebud.models.neighbours.sar:SAR", "topn", "Smart Adaptive Recommendations: co-occurrence similarity x time-decayed affinity"),
    "knn-basic": ("tastebud.models.neighbours.knn_rating:KNNBasic", "rating", "k-NN rating prediction, similarity-weighted mean (Surprise KNNBasic)"),
    "knn-means": ("tastebud.models.neighbours.knn_rating:KNNWithMeans", "rating", "k-NN rating prediction on mean-centred ratings (Surprise KNNWithMeans)"),
    "knn-zscore": ("tastebud.models.neighbours.knn_rating:KNNWithZScore", "rating", "k-NN rating prediction on z-scores (Surprise KNNWithZScore)"),
    "knn-baseline": ("tastebud.models.neighbours.knn_rating:KNNBaseline", "rating", "k-NN rating prediction on baseline residuals (Koren 2010)"),
    "slope-one": ("tastebud.models.neighbours.slope_one:SlopeOne", "rating", "Slope One rating prediction (Lemire & Maclachlan 2005)"),
    "fm": ("tastebud.models.fm.factorization_machine:FactorizationMachine", "rating", "factorization machine (Rendle 2010): SGD, ALS, MCMC"),
    "ffm": ("tastebud.models.fm.ffm:FieldAwareFM", "rating", "field-aware factorization machine (Juan et al. 2016): SGD/AdaGrad"),
    "bpr-fm": ("tastebud.models.fm.bpr_fm:BPRFactorizationMachine", "topn", "factorization machine trained with BPR (Rendle et al. 2009)"),
    "item2vec": ("tastebud.models.embeddings.item2vec:Item2Vec", "sequence", "item2vec skip-gram with negative sampling (Barkan & Koenigstein 2016)"),
    "transitions": ("tastebud.models.embeddings.transitions:ItemTransitions", "sequence", "first-order item-to-item transition counts (Markov chain baseline)"),
    "sasrec": ("tastebud.models.sequential.sasrec:SASRec", "sequence", "self-attentive sequential recommendation (Kang & McAuley 2018)"),
    "multimodal": ("tastebud.models.multimodal.model:MultimodalModel", "features", "multimodal DeepFM-style PyTorch model"),
    "fpgrowth": ("tastebud.models.rules.fpgrowth:FPGrowth", "baskets", "FP-Growth frequent itemsets (Han, Pei & Yin 2000)"),
    "rules": ("tastebud.models.rules.recommender:RuleRecommender", "baskets", "association-rule basket recommender"),
}

_EXTRA: dict[str, tuple[Any, str, str]] = {}


def register(name: str, task: str, description: str = ""):
    """Class decorator registering a model under ``name`` (for plugins outside the builtin table)."""

    def deco(cls):
        _EXTRA[name] = (cls, task, description)
        cls.registry_name = name
        return cls

    return deco


def names(task: str | None = None) -> list[str]:
    """Registered names, optionally only those of one task."""
    all_ = {**{k: v[1] for k, v in _BUILTIN.items()}, **{k: v[1] for k, v in _EXTRA.items()}}
    return [k for k, t in all_.items() if task is None or t == task]


def info(name: str) -> tuple[str, str]:
    """(task, description) of a registered model."""
    if name in _EXTRA:
        return _EXTRA[name][1], _EXTRA[name][2]
    if name in _BUILTIN:
        return _BUILTIN[name][1], _BUILTIN[name][2]
    raise KeyError(f"unknown model {name!r}; registered models: {', '.join(names())}")


def get(name: str) -> type:
    """The model class registered under ``name`` (imports its module)."""
    if name in _EXTRA:
        return _EXTRA[name][0]
    if name not in _BUILTIN:
        raise KeyError(f"unknown model {name!r}; registered models: {', '.join(names())}")
    mod, _, cls = _BUILTIN[name][0].partition(":")
    return getattr(importlib.import_module(mod), cls)


def available(name: str) -> bool:
    """Whether the model's module imports (its code exists and its optional extras are installed)."""
    try:
        get(name)
        return True
    except (ImportError, AttributeError):
        return False
