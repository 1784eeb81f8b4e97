"""tastebud: one coherent, fast, tested toolkit for recommender systems.

Public names are imported lazily, so ``import tastebud`` stays fast and never imports torch.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

__version__ = "0.1.0"

logging.getLogger("tastebud").addHandler(logging.NullHandler())

# public name -> module that defines it
_LAZY: dict[str, str] = {
    # data layer
    "IdMap": "tastebud.data.idmap",
    "Interactions": "tastebud.data.interactions",
    "Baskets": "tastebud.data.baskets",
    "Sequences": "tastebud.data.sequences",
    # exceptions
    "TastebudError": "tastebud.exceptions",
    "UnknownIdError": "tastebud.exceptions",
    "DataError": "tastebud.exceptions",
    "NotFittedError": "tastebud.exceptions",
    "MissingExtraError": "tastebud.exceptions",
    "FormatError": "tastebud.exceptions",
    # evaluation
    "evaluate": "tastebud.evaluation.evaluate",
    # models
    "BaselinePredictor": "tastebud.models.baseline",
    "Popularity": "tastebud.models.baseline",
    "MatrixFactorization": "tastebud.models.mf",
    "SVDpp": "tastebud.models.svdpp",
    "ALS": "tastebud.models.als",
    "ImplicitALS": "tastebud.models.implicit_als",
    "BPR": "tastebud.models.bpr",
    "PureSVD": "tastebud.models.puresvd",
    "EASE": "tastebud.models.ease",
    "FactorizationMachine": "tastebud.models.fm",
    "FMFeatures": "tastebud.models.fm_features",
    "FPGrowth": "tastebud.models.fpgrowth",
    "Apriori": "tastebud.models.apriori",
    "association_rules": "tastebud.models.rules",
    "RuleRecommender": "tastebud.models.rule_recommender",
    "Item2Vec": "tastebud.models.item2vec",
    "MultimodalModel": "tastebud.models.multimodal",
    "SASRec": "tastebud.models.sasrec",
    "ItemTransitions": "tastebud.models.transitions",
}

# submodules reachable as attributes: tb.datasets, tb.split, tb.metrics, tb.synthetic
_SUBMODULES = {
    "datasets": "tastebud.data.datasets",
    "split": "tastebud.split",
    "metrics": "tastebud.evaluation.metrics",
    "synthetic": "tastebud.data.synthetic",
    "data": "tastebud.data",
    "models": "tastebud.models",
}

__all__ = sorted([*_LAZY, *_SUBMODULES, "load", "__version__"])


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(_SUBMODULES[name])
    raise AttributeError(f"module 'tastebud' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__


def load(path: str) -> Any:
    """Load any model saved with ``model.save(path)``."""
    from .models.base import Model

    return Model.load(path)
