"""``Item2Vec``: item embeddings by skip-gram with negative sampling over sequences or baskets."""

from __future__ import annotations

import logging
import time
from typing import Any, Literal, Mapping

import numpy as np
import scipy.sparse as sp

from ..._progress import progress
from ...array_specs import ArraySpec, floats
from ..._threads import numba_threads, single_threaded_blas
from ...data.baskets import Baskets, as_baskets
from ...data.idmap import IdMap
from ...data.sequences import Sequences, as_sequences
from ...exceptions import DataError, MissingExtraError
from ...kernels import sgns as K
from ..history import HistoryRecommender

logger = logging.getLogger("tastebud")

Mode = Literal["sequence", "basket"]
RATE_BLOCK_ITEMS = 10_000  # the learning rate is updated once per block of this many items (gensim's batch_words)


class Item2Vec(HistoryRecommender):
    """item2vec (Barkan & Koenigstein, "Item2Vec: Neural Item Embedding for Collaborative
    Filtering", MLSP 2016): word2vec's skip-gram with negative sampling (Mikolov et al.,
    "Distributed Representations of Words and Phrases and their Compositionality", NIPS 2013)
    applied to item sequences (sessions, a user's history in time order) or baskets.

    Every (input item w, target item t) pair that co-occurs in a context minimises

        L(w, t) = -log σ(u_w · v_t) - Σ_{k=1..n_negatives} log σ(-u_w · v_{n_k}),   n_k ~ P(i) ∝ c_i^0.75

    by SGD with a learning rate decaying linearly from ``lr`` to ``min_lr`` over training, by the
    fraction of sentences (sequences/baskets) processed and updated once per block of about 10,000
    items: sentence s of n in epoch e (0-based, of E) trains at ``lr - (lr - min_lr)·(e·n + b)/(E·n)``
    with b the first sentence of its block. This is gensim's schedule when it is given the corpus
    (one rate per job of ≤ 10,000 words; word2vec.c also updates its rate every 10,000 words but
    counts words, which on a corpus whose long sequences come first decays faster and trained
    worse here, see ``benchmarks/results/item2vec.md``)
    (u = ``item_vectors_``, v = ``context_vectors_``). The context of a position is

    * ``mode="sequence"``: the items within ``b`` positions on each side, ``b`` drawn uniformly
      from 1..``window`` for every position (word2vec's window shrink);
    * ``mode="basket"``: every other item of the same basket/sequence (item2vec's set context).

    Before each epoch, an occurrence of item i is dropped with word2vec's subsampling rule:
    kept with probability min(1, (sqrt(c_i/(s·N)) + 1)·s·N/c_i), s = ``sample``, N = total count.
    Items seen fewer than ``min_count`` times are removed (they are then unknown to the model).

    Training runs Hogwild-style in a parallel numba kernel (``num_threads``, default
    ``TASTEBUD_NUM_THREADS`` or all cores); each sentence has its own random stream, so a fixed
    ``random_state`` with one thread gives identical vectors run after run.

    Recommendations for a history i_1..i_n (most recent last) use the recency-weighted mean of
    its item vectors, weight ``history_decay**(n-1-j)`` for the j-th item (1 for the most recent;
    all weights 1 in basket mode), h = Σ_j w_j u_{i_j} / Σ_j w_j, and score item x by

    * ``scoring="context"`` (default): h · v_x, the SGNS logit of x appearing in the context of
      the history (input vectors against output vectors; best next-item accuracy on amazon-games
      validation);
    * ``scoring="cosine"``: cos(h', u_x) with h' the weighted mean of unit input vectors
      (the usual "similar to what you had" item2vec recommender).

    History items are excluded by default. ``similar_items`` is always the cosine of input vectors.

    Parameters
    ----------
    factors : length of the item vectors (gensim's ``vector_size``; called ``dim`` before).
    window : largest context half-width in ``mode="sequence"``.
    n_negatives : negative samples per (input, target) pair (gensim's ``negative``).
    epochs : passes over the sequences/baskets.
    sample : subsampling threshold s of frequent items (0 disables subsampling).
    lr : initial learning rate (decays linearly to ``min_lr``).
    min_lr : final learning rate.
    mode : ``"sequence"`` (a window around each position) or ``"basket"`` (every other item of the basket).
    min_count : items seen fewer times are dropped (unknown to the model).
    ns_exponent : exponent of the negative-sampling distribution P(i) ∝ cᵢ^ns_exponent.
    history_decay : weight of the j-th most recent history item is ``history_decay**j`` (sequence mode).
    scoring : ``"context"`` (input · output vectors) or ``"cosine"`` (cosine of input vectors) for recommendations.
    random_state : seed of the initial vectors and the sampling; one thread gives identical vectors run after run.
    num_threads : numba threads (None: ``TASTEBUD_NUM_THREADS``, else all cores).
    verbose : progress bar over epochs (None: on a terminal only).
    """

    registry_name = "item2vec"
    demo_params: dict[str, Any] = {"factors": 32, "epochs": 3}
    renamed_params = {"dim": "factors", "negative": "n_negatives"}
    accepts_baskets = True  # fits on Baskets too (mode="basket"): the CLI reads basket files for it

    def __init__(
        self,
        factors: int = 64,
        window: int = 5,
        n_negatives: int = 5,
        epochs: int = 5,
        sample: float = 1e-3,
        lr: float = 0.025,
        min_lr: float = 1e-4,
        mode: Mode = "sequence",
        min_count: int = 1,
        ns_exponent: float = 0.75,
        history_decay: float = 0.5,
        scoring: Literal["context", "cosine"] = "context",
        random_state: int | None = 0,
        num_threads: int | None = None,
        verbose: bool | None = None,
    ):
        self.factors = factors
        self.window = window
        self.n_negatives = n_negatives
        self.epochs = epochs
        self.sample = sample
        self.lr = lr
        self.min_lr = min_lr
        self.mode = mode
        self.min_count = min_count
        self.ns_exponent = ns_exponent
        self.history_decay = history_decay
        self.scoring = scoring
        self.random_state = random_state
        self.num_threads = num_threads
        self.verbose = verbose

    # ------------------------------------------------------------------ validation
    def _check_params(self) -> None:
        def pos_int(name: str, lo: int = 1) -> None:
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < lo:
                raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")

        for name in ("factors", "window", "n_negatives", "epochs", "min_count"):
            pos_int(name)
        if self.mode not in ("sequence", "basket"):
            raise ValueError(f"mode must be 'sequence' or 'basket', got {self.mode!r}")
        if not (np.isfinite(self.sample) and self.sample >= 0):
            raise ValueError(f"sample must be >= 0 (0 disables subsampling), got {self.sample!r}")
        if not (np.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if not (np.isfinite(self.min_lr) and 0 <= self.min_lr <= self.lr):
            raise ValueError(f"min_lr must be in [0, lr={self.lr}], got {self.min_lr!r}")
        if not np.isfinite(self.ns_exponent):
            raise ValueError(f"ns_exponent must be finite, got {self.ns_exponent!r}")
        if self.scoring not in ("context", "cosine"):
            raise ValueError(f"scoring must be 'context' or 'cosine', got {self.scoring!r}")
        if not (np.isfinite(self.history_decay) and 0 < self.history_decay <= 1):
            raise ValueError(f"history_decay must be in (0, 1], got {self.history_decay!r}")

    def _corpus(self, data: Any) -> tuple[np.ndarray, np.ndarray, IdMap, IdMap]:
        """(indptr, indices, users, items) of the training sentences."""
        if isinstance(data, Baskets):
            b = data
        elif isinstance(data, Sequences):
            s = data
            return s.indptr, s.indices, s.users, s.items
        elif self.mode == "basket" and not isinstance(data, Mapping):
            b = as_baskets(data)
        else:
            s = as_sequences(data)
            return s.indptr, s.indices, s.users, s.items
        m = b.matrix
        return m.indptr.astype(np.int64), m.indices.astype(np.int64), IdMap(np.arange(m.shape[0]), "user"), b.items

    # ------------------------------------------------------------------ fit
    def fit(self, data: Any) -> "Item2Vec":
        """Learn item vectors from ``Sequences``, ``Baskets``, or their plain forms (a list of item
        lists, a dict {user: items}, a long DataFrame). For sequences, ``users_`` are the sequences'
        users and ``seen_`` each user's items; for baskets, users are the basket numbers 0..n-1."""
        self._check_params()
        t0 = time.perf_counter()
        indptr, indices, users, items = self._corpus(data)
        if len(indices) == 0:
            raise DataError("Item2Vec.fit: the training data has no items (empty sequences/baskets)")
        counts = np.bincount(indices, minlength=len(items))
        vocab = counts >= self.min_count
        if not vocab.any():
            raise DataError(f"Item2Vec.fit: no item occurs at least min_count={self.min_count} times")
        if not vocab.all():  # drop rare (and absent) items before windowing, as word2vec does
            new = np.full(len(items), -1, dtype=np.int64)
            new[vocab] = np.arange(int(vocab.sum()))
            keep = vocab[indices]
            owner = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))[keep]
            indices = new[indices[keep]]
            indptr = np.concatenate([[0], np.cumsum(np.bincount(owner, minlength=len(indptr) - 1))]).astype(np.int64)
            items = IdMap(items.ids[vocab], "item")
            counts = counts[vocab]
        lens = np.diff(indptr)
        if not (lens >= 2).any():
            raise DataError("Item2Vec.fit: no sequence/basket holds two or more items, so no item has a context")
        n_items = len(items)
        indices = np.ascontiguousarray(indices, dtype=np.int64)
        rows = np.repeat(np.arange(len(users)), lens)
        seen = sp.csr_matrix((np.ones(len(indices), dtype=np.float32), (rows, indices)), shape=(len(users), n_items))
        seen.sum_duplicates()
        self._set_interactions(users, items, seen)
        self._set_histories(indptr, indices)

        rng = np.random.default_rng(self.random_state)
        seed = int(rng.integers(0, 2**63 - 1))
        dim = int(self.factors)
        syn0 = ((rng.random((n_items, dim), dtype=np.float32) * np.float32(2.0) - np.float32(1.0)) / np.float32(dim)).astype(np.float32)
        syn1 = np.zeros((n_items, dim), dtype=np.float32)
        prob, alias = K.build_alias(counts.astype(np.float64) ** float(self.ns_exponent))
        keep_prob = K.keep_probabilities(counts, float(self.sample))
        n_sent = len(indptr) - 1
        chunks = K.balanced_chunks(indptr, max(1, min(n_sent, 512)))
        n_tok = int(len(indices))
        sents_total = float(n_sent) * int(self.epochs)
        rate_from = K.rate_blocks(indptr, RATE_BLOCK_ITEMS)
        basket = self.mode == "basket"
        pairs = 0
        with numba_threads(self.num_threads) as nt, single_threaded_blas():
            for epoch in progress(range(int(self.epochs)), verbose=self.verbose, desc="Item2Vec", unit="epoch"):
                pairs += int(K.sgns_epoch(syn0, syn1, indices, indptr, chunks, keep_prob, prob, alias,
                                          int(self.window), int(self.n_negatives), basket, float(self.lr),
                                          float(self.min_lr), float(epoch * n_sent), sents_total, rate_from, seed, epoch, nt))
        if not np.isfinite(syn0).all():
            raise FloatingPointError("Item2Vec.fit diverged (non-finite vectors); lower lr")
        self.item_vectors_ = syn0
        self.context_vectors_ = syn1
        self.n_pairs_ = pairs
        self.fit_seconds_ = time.perf_counter() - t0
        self._unit = None
        logger.info("Item2Vec: %d items, %d tokens, %d epochs, %d pairs, %d threads, %.2fs",
                    n_items, n_tok, self.epochs, pairs, nt, self.fit_seconds_)
        self.fitted_ = True
        return self

    # ------------------------------------------------------------------ scoring
    def item_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.item_vectors_

    def _unit_vectors(self) -> np.ndarray:
        if getattr(self, "_unit", None) is None or self._unit.shape != self.item_vectors_.shape:
            V = self.item_vectors_.astype(np.float32)
            n = np.linalg.norm(V, axis=1, keepdims=True)
            n[n == 0] = 1.0
            self._unit = np.ascontiguousarray(V / n)
        return self._unit

    def _history_scores(self, indptr: np.ndarray, indices: np.ndarray) -> np.ndarray:
        decay = 1.0 if self.mode == "basket" else float(self.history_decay)
        indptr = np.asarray(indptr, dtype=np.int64)
        indices = np.asarray(indices, dtype=np.int64)
        empty = np.diff(indptr) == 0
        if self.scoring == "context":
            H = K.history_vectors(self.item_vectors_, indptr, indices, decay, False)
            with single_threaded_blas():
                S = H @ self.context_vectors_.T
        else:
            U = self._unit_vectors()
            H = K.history_vectors(U, indptr, indices, decay, False)
            hn = np.linalg.norm(H, axis=1, keepdims=True)
            hn[hn == 0] = 1.0
            with single_threaded_blas():
                S = (H / hn) @ U.T
        if empty.any():
            S[empty] = self.item_counts_.astype(np.float32) / max(1.0, float(self.item_counts_.max()))
        return S

    def explain_history(self, items: Any, targets: Any) -> list[dict[str, Any]]:
        """Why each of ``targets`` scores as it does after the history ``items`` (oldest first).

        The history vector is a weighted mean h = Σⱼ ωⱼ uⱼ (ωⱼ = decay^(n-1-j) / Σ decay), so the
        score splits over the history: ``scoring="context"`` ŝₓ = Σⱼ ωⱼ uⱼ·vₓ, ``"cosine"``
        ŝₓ = Σⱼ ωⱼ ûⱼ·ûₓ / ‖h'‖. Each history item's term is its ``value`` (the terms add up to the
        :meth:`recommend_for_history` score up to float32 rounding) and ``similarity`` is the
        cosine of its vector with the target's (the nearest history items). Unknown history ids
        are skipped. One dict per target: ``{"item", "score", "contributions": [{"item",
        "value", "similarity"}, ...]}`` (largest value first)."""
        self._check_fitted()
        indptr, idx = self._map_histories([list(items)], "skip")
        t = self.items_.index(list(targets))
        n = len(idx)
        decay = 1.0 if self.mode == "basket" else float(self.history_decay)
        w = decay ** np.arange(n - 1, -1, -1, dtype=np.float64)
        w = w / w.sum() if n else w
        U = self._unit_vectors().astype(np.float64)
        if self.scoring == "context":
            C = (self.context_vectors_[t].astype(np.float64) @ self.item_vectors_[idx].astype(np.float64).T) * w
        else:
            hn = np.linalg.norm(w @ U[idx]) or 1.0
            C = (U[t] @ U[idx].T) * w / hn
        sim = U[t] @ U[idx].T
        hist, tids = self.items_.ids[idx].tolist(), self.items_.ids[t].tolist()
        return [{"item": ti, "score": float(C[r].sum()),
                 "contributions": [{"item": hist[j], "value": float(C[r, j]), "similarity": float(sim[r, j])}
                                   for j in np.argsort(-C[r], kind="stable")]}
                for r, ti in enumerate(tids)]

    # ------------------------------------------------------------------ export
    def to_torch_embedding(self, freeze: bool = False, padding: bool = False) -> tuple[Any, IdMap]:
        """The item vectors as a ``torch.nn.Embedding`` and the id map (row ``items_.index(id)``).

        ``padding=True`` prepends a zero row used as ``padding_idx=0``; item index i then sits at
        row i + 1. ``freeze`` is passed to ``Embedding.from_pretrained``."""
        self._check_fitted()
        try:
            import torch
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise MissingExtraError("torch", "torch", "Item2Vec.to_torch_embedding") from e
        V = np.array(self.item_vectors_, dtype=np.float32, copy=True)
        if padding:
            V = np.vstack([np.zeros((1, V.shape[1]), dtype=np.float32), V])
            emb = torch.nn.Embedding.from_pretrained(torch.from_numpy(V), freeze=freeze, padding_idx=0)
        else:
            emb = torch.nn.Embedding.from_pretrained(torch.from_numpy(V), freeze=freeze)
        return emb, self.items_

    # ------------------------------------------------------------------ persistence
    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {**super()._get_arrays(), "item_vectors": self.item_vectors_, "context_vectors": self.context_vectors_}

    def _get_extra(self) -> dict[str, Any]:
        return {"n_pairs": int(self.n_pairs_)}

    @classmethod
    def _extra_spec(cls, params: dict[str, Any]) -> dict[str, Any]:
        return {"n_pairs": "~int"}

    @classmethod
    def _array_specs(cls, params: dict[str, Any], extra: dict[str, Any], shapes: Any) -> dict[str, ArraySpec]:
        return {**super()._array_specs(params, extra, shapes), "item_vectors": floats("n_items", "dim"),
                "context_vectors": floats("n_items", "dim")}

    def _set_arrays(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        super()._set_arrays(arrays, extra)
        self.item_vectors_ = np.asarray(arrays["item_vectors"], dtype=np.float32)
        self.context_vectors_ = np.asarray(arrays["context_vectors"], dtype=np.float32)
        self.n_pairs_ = int(extra.get("n_pairs", 0))
        self._unit = None
