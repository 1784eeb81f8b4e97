"""Feature schema and fitted preprocessing for :class:`~tastebud.models.multimodal.model.MultimodalModel`.

The user declares each input column's kind once:

=============  ==========================================================================
``numeric``    a number; standardised ``z = (x − mean) / std`` with train statistics,
               missing values become 0 (the mean)
``categorical`` one value from a set; vocabulary of training values (those seen at least
               ``min_count`` times), index 0 is the out-of-vocabulary / missing bucket
``id``         like ``categorical`` (a user or item id); the model can recommend over them
``multi_hot``  a set of values: a list/tuple/array or a ``|``-separated string; vocabulary
               as above, unknown members map to bucket 0, an empty set gives an empty bag
``text``       free text; hashed word n-grams (``text_encoder="hashed"``) or a frozen
               MiniLM sentence embedding (``text_encoder="minilm"``)
=============  ==========================================================================

Everything fitted here is JSON (field kinds, numeric statistics, encoder settings) or a numpy
string array (vocabularies), so it is saved with the model with no pickling. Torch is not
imported here.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ...exceptions import DataError, FormatError
from .text_encoders import MINILM_DIM, _clean, get_sentence_encoder, hash_ngrams

KINDS = ("numeric", "categorical", "id", "multi_hot", "text")
TEXT_ENCODERS = ("hashed", "minilm")


def check_fields(fields: Any) -> dict[str, str]:
    """Validate the declared schema: a non-empty mapping column → kind."""
    if not isinstance(fields, Mapping) or not fields:
        raise ValueError(f"fields must be a non-empty dict column -> kind ({', '.join(KINDS)}), got {fields!r}")
    out: dict[str, str] = {}
    for col, kind in fields.items():
        k = str(kind).lower().replace("-", "_")
        if k == "multihot":
            k = "multi_hot"
        if k not in KINDS:
            raise ValueError(f"fields[{col!r}] = {kind!r} is not a field kind; use one of {', '.join(KINDS)}")
        out[str(col)] = k
    return out


def _key(v: Any) -> str:
    """Canonical string of a categorical value ('' for missing; 3.0 → '3')."""
    if isinstance(v, (float, np.floating)):
        if v != v:
            return ""
        if float(v).is_integer():
            return str(int(v))
    return _clean(v)


def split_multi(v: Any) -> list[str]:
    """Members of a multi-hot cell: list-like as is, strings split on ``|``, missing → []."""
    if isinstance(v, (list, tuple, set, frozenset, np.ndarray, pd.Series)):
        members = [_key(x) for x in v]
    else:
        s = _key(v)
        members = s.split("|") if s else []
    return [m.strip() for m in members if m is not None and m.strip()]


def _lookup(vocab: np.ndarray, keys: list[str] | np.ndarray) -> np.ndarray:
    """Index of each key in ``vocab`` plus one; 0 for unknown keys (the OOV bucket)."""
    if len(vocab) == 0:
        return np.zeros(len(keys), dtype=np.int64)
    idx = pd.Index(vocab).get_indexer(pd.Index(np.asarray(keys, dtype=object)))
    return (idx + 1).astype(np.int64)


@dataclass
class Encoded:
    """A DataFrame turned into arrays the network eats (all with ``n`` rows).

    ``num`` (n, n_numeric) float32; ``cat`` (n, n_categorical) int64 vocabulary indices;
    ``bags`` one ``(indptr, indices)`` per bag field (multi-hot and hashed text);
    ``dense`` one (n, d) float32 array per dense field (MiniLM text).
    """

    n: int
    num: np.ndarray
    cat: np.ndarray
    bags: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    dense: list[np.ndarray] = field(default_factory=list)

    def take(self, rows: np.ndarray) -> "Encoded":
        rows = np.asarray(rows, dtype=np.int64)
        return Encoded(len(rows), self.num[rows], self.cat[rows],
                       [take_bag(b, rows) for b in self.bags], [d[rows] for d in self.dense])


def take_bag(bag: tuple[np.ndarray, np.ndarray], rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``rows`` of a CSR-style bag (indptr, indices), as a new (indptr, indices)."""
    indptr, indices = bag
    start = indptr[rows]
    lengths = indptr[rows + 1] - start
    new_ptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=new_ptr[1:])
    total = int(new_ptr[-1])
    gather = np.repeat(start - new_ptr[:-1], lengths) + np.arange(total, dtype=np.int64)
    return new_ptr, indices[gather]


class Schema:
    """Declared fields plus the preprocessing fitted on training data.

    Field order inside the network: numeric fields, then categorical and id fields, then bag
    fields (multi-hot, hashed text), then dense fields (MiniLM text) — see :attr:`layout`.
    """

    def __init__(self, fields: Mapping[str, str], text_encoder: str = "hashed", n_buckets: int = 2**16,
                 ngram_range: tuple[int, int] = (1, 2), min_count: int = 1):
        self.fields = check_fields(fields)
        if text_encoder not in TEXT_ENCODERS:
            raise ValueError(f"text_encoder must be one of {TEXT_ENCODERS}, got {text_encoder!r}")
        if int(min_count) < 1:
            raise ValueError(f"min_count must be >= 1, got {min_count!r}")
        self.text_encoder = text_encoder
        self.n_buckets = int(n_buckets)
        self.ngram_range = (int(ngram_range[0]), int(ngram_range[1]))
        self.min_count = int(min_count)
        self.stats: dict[str, tuple[float, float]] = {}
        self.vocab: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------------ layout
    def names(self, *kinds: str) -> list[str]:
        return [c for c, k in self.fields.items() if k in kinds]

    @property
    def numeric(self) -> list[str]:
        return self.names("numeric")

    @property
    def categorical(self) -> list[str]:
        return self.names("categorical", "id")

    @property
    def bag_fields(self) -> list[str]:
        return self.names("multi_hot") + (self.names("text") if self.text_encoder == "hashed" else [])

    @property
    def dense_fields(self) -> list[str]:
        return self.names("text") if self.text_encoder == "minilm" else []

    @property
    def layout(self) -> list[str]:
        return self.numeric + self.categorical + self.bag_fields + self.dense_fields

    def cardinalities(self) -> dict[str, list[int]]:
        """Sizes the network's embedding tables need (vocabulary + the OOV bucket)."""
        bags = [len(self.vocab[c]) + 1 if self.fields[c] == "multi_hot" else self.n_buckets for c in self.bag_fields]
        return {"cat": [len(self.vocab[c]) + 1 for c in self.categorical], "bag": bags,
                "dense": [MINILM_DIM for _ in self.dense_fields]}

    # ------------------------------------------------------------------ fit / transform
    def check_columns(self, df: pd.DataFrame, source: str) -> None:
        missing = [c for c in self.fields if c not in df.columns]
        if missing:
            raise DataError(f"{source}: declared field column(s) {missing} not found; columns are {list(df.columns)}")

    def fit(self, df: pd.DataFrame) -> "Schema":
        self.check_columns(df, "fit")
        for c in self.numeric:
            x = pd.to_numeric(df[c], errors="coerce")
            bad = x.isna() & df[c].notna()
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise DataError(f"numeric field {c!r} has a non-numeric value {df[c].iloc[row]!r} at row {row}")
            x = x.to_numpy(dtype=np.float64)
            if np.isinf(x).any():
                raise DataError(f"numeric field {c!r} holds infinite values")
            ok = x[~np.isnan(x)]
            mean = float(ok.mean()) if len(ok) else 0.0
            std = float(ok.std()) if len(ok) else 1.0
            self.stats[c] = (mean, std if std > 0 else 1.0)
        for c in self.categorical:
            counts = Counter(_key(v) for v in df[c].tolist())
            self.vocab[c] = self._vocab_from(counts)
        for c in self.names("multi_hot"):
            counts = Counter(m for v in df[c].tolist() for m in split_multi(v))
            self.vocab[c] = self._vocab_from(counts)
        return self

    def _vocab_from(self, counts: Counter) -> np.ndarray:
        keep = sorted(k for k, n in counts.items() if k != "" and n >= self.min_count)
        return np.asarray(keep, dtype=str) if keep else np.zeros(0, dtype="<U1")

    def transform(self, df: pd.DataFrame) -> Encoded:
        self.check_columns(df, "predict")
        n = len(df)
        num = np.zeros((n, len(self.numeric)), dtype=np.float32)
        for j, c in enumerate(self.numeric):
            x = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=np.float64)
            mean, std = self.stats[c]
            z = (x - mean) / std
            num[:, j] = np.where(np.isfinite(z), z, 0.0)
        cat = np.zeros((n, len(self.categorical)), dtype=np.int64)
        for j, c in enumerate(self.categorical):
            cat[:, j] = _lookup(self.vocab[c], [_key(v) for v in df[c].tolist()])
        bags = []
        for c in self.bag_fields:
            if self.fields[c] == "multi_hot":
                members = [split_multi(v) for v in df[c].tolist()]
                indptr = np.zeros(n + 1, dtype=np.int64)
                np.cumsum([len(m) for m in members], out=indptr[1:])
                flat = [x for m in members for x in m]
                idx = _lookup(self.vocab[c], flat)
                # members outside the vocabulary fall into the OOV bucket 0
                bags.append((indptr, idx))
            else:
                bags.append(hash_ngrams(df[c].tolist(), self.n_buckets, self.ngram_range))
        dense = []
        for c in self.dense_fields:
            dense.append(get_sentence_encoder().encode(df[c].tolist()))
        return Encoded(n, num, cat, bags, dense)

    # ------------------------------------------------------------------ persistence
    def to_json(self) -> dict[str, Any]:
        # field order matters (network layout); meta.json is written with sorted keys, so keep a list
        return {"fields": [[c, k] for c, k in self.fields.items()], "text_encoder": self.text_encoder, "n_buckets": self.n_buckets,
                "ngram_range": list(self.ngram_range), "min_count": self.min_count,
                "stats": {c: list(v) for c, v in self.stats.items()}}

    def to_arrays(self) -> dict[str, np.ndarray]:
        names = list(self.fields)
        return {f"vocab.{names.index(c)}": v for c, v in self.vocab.items()}

    @classmethod
    def check_saved(cls, meta: dict[str, Any]) -> "Schema":
        """The schema of a saved model's ``extra["schema"]`` (without vocabularies), checked field by
        field; a defect raises :class:`FormatError`."""
        fields = meta["fields"]
        if not fields or not all(isinstance(f, list) and len(f) == 2 and all(isinstance(x, str) for x in f) for f in fields):
            raise FormatError("extra.schema.fields must be a non-empty list of [column, kind] pairs")
        if len({c for c, _ in fields}) != len(fields) or any(k not in KINDS for _, k in fields):
            raise FormatError(f"extra.schema.fields must name distinct columns with kinds in {KINDS}")
        ng = meta["ngram_range"]
        if not (len(ng) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in ng) and 1 <= ng[0] <= ng[1]):
            raise FormatError(f"extra.schema.ngram_range must be [lo, hi] with 1 <= lo <= hi, got {ng!r}")
        if meta["n_buckets"] < 1 or meta["min_count"] < 1:
            raise FormatError("extra.schema.n_buckets and min_count must be >= 1")
        s = cls(dict(fields), meta["text_encoder"], meta["n_buckets"], tuple(ng), meta["min_count"])
        for c in s.numeric:
            v = meta["stats"].get(c)
            if not (isinstance(v, list) and len(v) == 2 and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                                for x in v) and np.isfinite(v).all() and v[1] > 0):
                raise FormatError(f"extra.schema.stats[{c!r}] must be [mean, std] with finite numbers and std > 0, got {v!r}")
        return s

    @classmethod
    def from_saved(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> "Schema":
        s = cls(dict((c, k) for c, k in meta["fields"]), meta["text_encoder"], meta["n_buckets"], tuple(meta["ngram_range"]), meta["min_count"])
        s.stats = {c: (float(v[0]), float(v[1])) for c, v in meta["stats"].items()}
        names = list(s.fields)
        for c in s.categorical + s.names("multi_hot"):
            s.vocab[c] = np.asarray(arrays[f"vocab.{names.index(c)}"], dtype=str)
        return s
