"""tastebud: one coherent, fast, tested toolkit for recommender systems.

Public names are imported lazily, so ``import tastebud`` stays fast and never imports torch.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from ._version import __version__

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
    "BaselinePredictor": "tastebud.models.baselines.baseline",
    "Popularity": "tastebud.models.baselines.baseline",
    "MatrixFactorization": "tastebud.models.mf.matrix_factorization",
    "SVDpp": "tastebud.models.mf.svdpp",
    "ALS": "tastebud.models.mf.als",
    "ImplicitALS": "tastebud.models.mf.implicit_als",
    "BPR": "tastebud.models.mf.bpr",
    "PureSVD": "tastebud.models.mf.puresvd",
    "EASE": "tastebud.models.neighbours.ease",
    "ItemKNN": "tastebud.models.neighbours.knn",
    "UserKNN": "tastebud.models.neighbours.knn",
    "SAR": "tastebud.models.neighbours.sar",
    "KNNBasic": "tastebud.models.neighbours.knn_rating",
    "KNNWithMeans": "tastebud.models.neighbours.knn_rating",
    "KNNWithZScore": "tastebud.models.neighbours.knn_rating",
    "KNNBaseline": "tastebud.models.neighbours.knn_rating",
    "SlopeOne": "tastebud.models.neighbours.slope_one",
    "FactorizationMachine": "tastebud.models.fm.factorization_machine",
    "FMFeatures": "tastebud.models.fm.features",
    "FieldAwareFM": "tastebud.models.fm.ffm",
    "BPRFactorizationMachine": "tastebud.models.fm.bpr_fm",
    "RelationBlock": "tastebud.models.fm.relational",
    "FPGrowth": "tastebud.models.rules.fpgrowth",
    "Apriori": "tastebud.models.rules.apriori",
    "association_rules": "tastebud.models.rules.association",
    "RuleRecommender": "tastebud.models.rules.recommender",
    "Item2Vec": "tastebud.models.embeddings.item2vec",
    "MultimodalModel": "tastebud.models.multimodal.model",
    "SASRec": "tastebud.models.sequential.sasrec",
    "ItemTransitions": "tastebud.models.embeddings.transitions",
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


def load(path: str, max_uncompressed: int | None = None) -> Any:
    """Load any model saved with ``model.save(path)``.

    The file is validated before use (a malformed or hostile file raises ``FormatError``);
    ``max_uncompressed`` caps the bytes it may expand to (default 16x its size, at least 64 MiB;
    also ``$TASTEBUD_MAX_UNCOMPRESSED``)."""
    from .models.base import Model

    return Model.load(path, max_uncompressed=max_uncompressed)
