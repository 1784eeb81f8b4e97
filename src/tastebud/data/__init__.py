"""The data layer: id maps, interactions, baskets, sequences, readers, datasets, synthetic data."""

from .baskets import Baskets, as_baskets
from .idmap import IdMap
from .interactions import Interactions, as_interactions
from .sequences import Sequences, as_sequences

__all__ = ["IdMap", "Interactions", "Baskets", "Sequences", "as_interactions", "as_baskets", "as_sequences"]
