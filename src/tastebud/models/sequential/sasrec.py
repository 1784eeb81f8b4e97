"""SASRec: self-attentive sequential recommendation, with ALBERT-style compression and in-context
recommendation for users never seen in training. Requires the ``torch`` extra.

Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018.
Lan et al., "ALBERT: A Lite BERT for Self-supervised Learning of Language Representations", ICLR 2020.

The network (see :mod:`tastebud.models.sequential.sasrec_nn`) reads a user's item sequence s₁..sₜ and
outputs a vector Fₜ; the score of item i as the next item is r(i) = Fₜ · Mᵢ with Mᵢ the (shared)
item embedding. Training objectives, over every non-padding position t of every sequence:

* ``loss="bce"`` (the paper): −log σ(Fₜ·M_{sₜ₊₁}) − Σⱼ log(1 − σ(Fₜ·M_{nⱼ})), with ``n_negatives``
  items nⱼ drawn uniformly from the items the user never touched;
* ``loss="gbce"``: generalised BCE (gSASRec; Petrov & Macdonald, "gSASRec: Reducing
  Overconfidence in Sequential Recommendation Trained with Negative Sampling", RecSys 2023):
  −β·log σ(Fₜ·M_{sₜ₊₁}) − Σⱼ log(1 − σ(Fₜ·M_{nⱼ})) with β = α(t(1 − 1/α) + 1/α), α = K/(|I| − 1)
  the negative sampling rate (K = ``n_negatives``) and t = ``gbce_t`` (t = 0 is plain BCE;
  t → 1 approaches the calibration of the full softmax);
* ``loss="sampled_ce"``: softmax cross-entropy over the target and its ``n_negatives`` sampled
  negatives, −Fₜ·M_{sₜ₊₁} + log(e^{Fₜ·M_{sₜ₊₁}} + Σⱼ e^{Fₜ·M_{nⱼ}}) (uniform negatives, so no
  log-Q correction is needed);
* ``loss="ce"``: full softmax cross-entropy −log softmax(Fₜ·M)_{sₜ₊₁} over all items.
"""

from __future__ import annotations

import copy
import logging
import time
import warnings
from typing import Any, Literal, Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from ...exceptions import DataError, FormatError, MissingExtraError, UnknownIdError

try:
    import torch
    import torch.nn.functional as F
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise MissingExtraError("torch", "torch", "SASRec") from e

from ..._progress import progress
from ..._threads import num_threads as _num_threads
from ..._threads import torch_threads
from ...array_specs import ArraySpec, index, indptr
from ...data.idmap import IdMap
from ...data.interactions import Interactions
from ...data.sequences import Sequences, as_sequences
from ..base import Recommender, torch_state_specs
from .sasrec_nn import LengthBucketSampler, SASRecNet, SequenceDataset, collate_batch, left_pad

logger = logging.getLogger("tastebud")

_NET_PREFIX = "net."
_VALID_MAX_USERS = 5_000
_HOLDOUT_MIN_USERS = 1_000  # the internal hold-out takes at least this many users (or all)
_LOSSES = ("bce", "gbce", "sampled_ce", "ce")
# Item2Vec epochs of init_embeddings="item2vec": on amazon-games 20 epochs gave the E=12 ALBERT
# variant sampled NDCG@10 0.551 (mean of 3 seeds) against 0.533-0.544 with 5 (2 seeds), and
# SASRec 0.560 (3 seeds) against 0.550 (1 seed) (benchmarks/results/sequential.md)
_ITEM2VEC_INIT_EPOCHS = 20


def _resolve_device(device: Any) -> "torch.device":
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    d = torch.device(device)
    if d.type == "cuda" and not torch.cuda.is_available():
        warnings.warn(f"device={device!r} requested but CUDA is not available; using the CPU", stacklevel=3)
        return torch.device("cpu")
    return d


class SASRec(Recommender):
    """Self-attentive sequential recommender (Kang & McAuley 2018) with optional ALBERT compression.

    The defaults are the best settings measured on amazon-games (docs/sasrec.md): the paper's
    architecture (H = 50, 2 blocks, 1 head, dropout 0.5), BCE with 32 negatives per position,
    Adam lr 2e-3, the item table started from Item2Vec, and early stopping on an internal hold-out
    (the last item of a sample of training users, ``validation_fraction``). ``SASRec.paper()``
    gives the paper's own settings.

    Parameters
    ----------
    hidden : model width H (the paper's 50).
    layers : number of self-attention blocks B (paper: 2).
    heads : attention heads (paper: 1).
    max_len : longest history the model reads (paper: 50 on Amazon); older items are dropped.
    dropout : dropout rate (the paper's 0.5 for the sparse Amazon sets; it used 0.2 on MovieLens-1M).
    embedding_dim : E; ``E < hidden`` turns on ALBERT's factorized item embedding
        (an E-dim table projected to H by a bias-free linear map). None: no factorization.
    share_layers : ALBERT cross-layer sharing: one block's weights used in all ``layers`` blocks.
    positions : what the learned position embedding encodes. ``"recency"`` (default, as in the
        reference code, whose left-padded rows always put the newest item in the last column):
        how many items came after this one, so the newest item always has position 0.
        ``"first"``: the index counted from the oldest item read.
    loss : ``"bce"`` (sampled negatives, as in the paper), ``"gbce"`` (gSASRec's generalised
        BCE), ``"sampled_ce"`` (softmax over the target and the sampled negatives) or ``"ce"``
        (full softmax over all items; costs O(|I|) per position). Equations in the module docstring.
    n_negatives : negatives per position for every loss but ``"ce"`` (32; the paper used 1).
    gbce_t : calibration parameter t ∈ [0, 1] of ``"gbce"`` (gSASRec's default 0.75).
    init : ``"item2vec"`` (default): start the item table from an Item2Vec fitted on the training
        sequences (see :meth:`fit`); ``"random"``: the paper's random initialisation.
    epochs : maximum training epochs (Adam; early stopping usually ends training far sooner).
    batch_size : sequences per mini-batch.
    lr : Adam learning rate (β = (0.9, 0.98) as in the reference code; the paper used 1e-3).
    patience : stop after this many epochs without a better validation NDCG@10 and restore the
        best epoch's weights.
    validation_fraction : when ``fit`` gets no ``valid``, the share of training users (those with
        at least 3 items) whose last item is held out for early stopping — at least 1,000 users
        (all of them when fewer) and at most 5,000. Those items are left out of training but kept
        in the stored histories that ``recommend`` reads. 0 turns early stopping off (all
        ``epochs`` on all data).
    random_state : seed of initialisation, shuffling, negative sampling and the hold-out.
    device : ``"cpu"``, ``"cuda"``, ... ; None picks CUDA when available.
    num_threads : CPU threads for torch (None: 1, the fastest on the measured 2-core machine;
        Item2Vec's numba kernels use ``TASTEBUD_NUM_THREADS``, else all cores).
    verbose : progress bar over epochs (None: on a terminal only).

    Learned state: ``net_`` (the :class:`~tastebud.models.sequential.sasrec_nn.SASRecNet`), ``users_``,
    ``items_``, ``seen_`` (each user's items), the ordered histories (see :meth:`history`),
    ``history_`` (per-epoch loss/validation log), ``best_epoch_``.
    """

    registry_name = "sasrec"
    demo_params = {"hidden": 32, "max_len": 20, "epochs": 10, "init": "random"}

    def __init__(
        self,
        hidden: int = 50,
        layers: int = 2,
        heads: int = 1,
        max_len: int = 50,
        dropout: float = 0.5,
        embedding_dim: int | None = None,
        share_layers: bool = False,
        positions: Literal["recency", "first"] = "recency",
        loss: Literal["bce", "gbce", "sampled_ce", "ce"] = "bce",
        n_negatives: int = 32,
        gbce_t: float = 0.75,
        init: Literal["item2vec", "random"] = "item2vec",
        epochs: int = 200,
        batch_size: int = 128,
        lr: float = 2e-3,
        patience: int = 15,
        validation_fraction: float = 0.1,
        random_state: int = 0,
        device: str | None = None,
        num_threads: int | None = None,
        verbose: bool | None = None,
    ):
        self.hidden = hidden
        self.layers = layers
        self.heads = heads
        self.max_len = max_len
        self.dropout = dropout
        self.embedding_dim = embedding_dim
        self.share_layers = share_layers
        self.positions = positions
        self.loss = loss
        self.n_negatives = n_negatives
        self.gbce_t = gbce_t
        self.init = init
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.device = device
        self.num_threads = num_threads
        self.verbose = verbose

    # ------------------------------------------------------------------ validation of params
    def _check_params(self) -> None:
        def pos_int(name: str) -> None:
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")

        for name in ("hidden", "layers", "heads", "max_len", "epochs", "batch_size", "patience"):
            pos_int(name)
        if self.hidden % self.heads:
            raise ValueError(f"hidden={self.hidden} must be divisible by heads={self.heads}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if self.embedding_dim is not None:
            pos_int("embedding_dim")
            if self.embedding_dim > self.hidden:
                raise ValueError(f"embedding_dim={self.embedding_dim} must be <= hidden={self.hidden}")
        if self.positions not in ("recency", "first"):
            raise ValueError(f"positions must be 'recency' or 'first', got {self.positions!r}")
        if self.loss not in _LOSSES:
            raise ValueError(f"loss must be one of {', '.join(map(repr, _LOSSES))}, got {self.loss!r}")
        if self.loss != "ce":
            pos_int("n_negatives")
        if not 0.0 <= float(self.gbce_t) <= 1.0:
            raise ValueError(f"gbce_t must be in [0, 1], got {self.gbce_t!r}")
        if not float(self.lr) > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if self.init not in ("item2vec", "random"):
            raise ValueError(f"init must be 'item2vec' or 'random', got {self.init!r}")
        vf = self.validation_fraction
        if isinstance(vf, bool) or not isinstance(vf, (int, float, np.integer, np.floating)) or not 0.0 <= float(vf) < 1.0:
            raise ValueError(f"validation_fraction must be a number in [0, 1), got {vf!r}")

    @classmethod
    def paper(cls, dense: bool = False, **overrides: Any) -> "SASRec":
        """The settings of Kang & McAuley (2018) and their reference code: H = 50, 2 blocks, 1
        head, BCE with one sampled negative per position, Adam lr 1e-3, batch 128, random
        initialisation, 200 epochs without early stopping, and max_len 50 with dropout 0.5 for
        sparse data (Amazon, Steam) or, with ``dense=True``, max_len 200 with dropout 0.2
        (MovieLens-1M). ``overrides`` replace any of these. On amazon-games these trained far
        slower than the defaults (docs/sasrec.md)."""
        params: dict[str, Any] = {"hidden": 50, "layers": 2, "heads": 1, "max_len": 200 if dense else 50,
                                  "dropout": 0.2 if dense else 0.5, "loss": "bce", "n_negatives": 1, "init": "random",
                                  "epochs": 200, "batch_size": 128, "lr": 1e-3, "validation_fraction": 0.0}
        params.update(overrides)
        return cls(**params)

    def _build_net(self, n_items: int) -> SASRecNet:
        return SASRecNet(n_items, hidden=int(self.hidden), layers=int(self.layers), heads=int(self.heads),
                         max_len=int(self.max_len), dropout=float(self.dropout),
                         embedding_dim=None if self.embedding_dim is None else int(self.embedding_dim),
                         share_layers=bool(self.share_layers), positions=str(self.positions))

    # ------------------------------------------------------------------ fit
    def fit(self, data: Any, valid: Any = None, init_embeddings: Any = None, append_valid: bool = True) -> "SASRec":
        """Train on ``data``: :class:`~tastebud.data.sequences.Sequences`, a list of item lists,
        a dict ``{user: [items...]}``, Interactions with timestamps or a long DataFrame.

        ``valid`` (optional) holds each user's next item after its training sequence: the
        ``valid`` part of :func:`tastebud.split.leave_last_out` (Interactions), a dict
        ``{user: item}``, a DataFrame with ``user``/``item`` columns, or ``"last"`` to hold out the
        last item of every training sequence (of length ≥ 3) here. It is used for early stopping
        on full-ranking NDCG@10 (up to 5,000 users). With ``append_valid`` (default) the
        validation item is appended to the user's stored history after training, so
        ``recommend(users)`` then predicts the item *after* it: the leave-last-out test.
        Without ``valid``, the last item of a ``validation_fraction`` sample of the training users
        is held out for early stopping (and kept in their stored histories); with
        ``validation_fraction=0`` all ``epochs`` run on all the data.

        ``init_embeddings`` (optional) initialises the item table from pretrained vectors: a
        fitted model with ``item_vectors()`` and ``items_`` (e.g. :class:`tastebud.Item2Vec`),
        a dict ``{item: vector}`` or a DataFrame indexed by item id. Their width must equal the
        table's (``embedding_dim`` or ``hidden``); they are rescaled to the default init scale.
        ``"item2vec"`` (what ``init="item2vec"``, the default, does when ``init_embeddings`` is
        not given) fits :class:`tastebud.Item2Vec` (skip-gram, the table's width, 20 epochs,
        the model's ``random_state`` and ``num_threads``) on the training sequences first (6–19 s
        on amazon-games on one thread, where it lifted sampled NDCG@10 from 0.549 to 0.560 for SASRec
        and from 0.498 to 0.551 for the factorized ALBERT variant; docs/sasrec.md).
        ``"random"`` keeps the random initialisation.
        """
        self._check_params()
        seqs = as_sequences(data)
        if seqs.n_interactions == 0:
            raise DataError("SASRec.fit: the training sequences are empty")
        n_items = seqs.n_items
        hist = [seqs.sequence(u).copy() for u in range(seqs.n_users)]

        # ---- validation targets (user index -> item index)
        held_out = valid is None or isinstance(valid, str)  # the targets are the users' own last items
        if valid is None:
            val_u, val_i = self._holdout_targets(hist)
        else:
            val_u, val_i = self._validation_targets(valid, seqs, hist)
        train_hist = hist
        if held_out and len(val_u):  # train without the held-out items
            vset = set(val_u.tolist())
            train_hist = [h[:-1] if u in vset else h for u, h in enumerate(hist)]
        if init_embeddings is None and self.init == "item2vec":
            init_embeddings = "item2vec"
        elif isinstance(init_embeddings, str) and init_embeddings == "random":
            init_embeddings = None

        dev = _resolve_device(self.device)
        torch.manual_seed(int(self.random_state))
        with torch_threads(self.num_threads):
            net = self._build_net(n_items).to(dev)
            if init_embeddings is not None:
                self._init_from(net, init_embeddings, seqs.items, train_hist)
            self.net_, self._device = net, dev
            self._train(net, train_hist, n_items, val_u, val_i, dev)

        # ---- stored state: ordered histories (+ validation item) and the seen matrix
        final = [h.copy() for h in hist]
        if append_valid and not held_out:
            for u, i in zip(val_u.tolist(), val_i.tolist()):
                final[u] = np.append(final[u], i)
        self._set_histories(final, seqs.users, seqs.items)
        self.fitted_ = True
        return self

    def _holdout_targets(self, hist: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """The internal hold-out: (users, their last items) for a seeded ``validation_fraction``
        sample of the users with ≥ 3 items, at least 1,000 (or all) and at most 5,000."""
        frac = float(self.validation_fraction)
        eligible = np.array([j for j, h in enumerate(hist) if len(h) >= 3], dtype=np.int64)
        if frac <= 0 or len(eligible) == 0:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        n = int(round(frac * len(eligible)))
        n = min(max(n, min(_HOLDOUT_MIN_USERS, len(eligible))), _VALID_MAX_USERS, len(eligible))
        rng = np.random.default_rng([int(self.random_state), 1])
        u = np.sort(rng.choice(eligible, n, replace=False)) if n < len(eligible) else eligible
        logger.info("SASRec: early stopping on the last item of %d of %d training users (validation_fraction=%g)",
                    len(u), len(hist), frac)
        return u, np.array([hist[j][-1] for j in u], dtype=np.int64)

    def _validation_targets(self, valid: Any, seqs: Sequences, hist: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(valid, str):
            if valid != "last":
                raise ValueError(f"valid must be None, 'last', Interactions, a dict or a DataFrame; got {valid!r}")
            u = np.array([j for j, h in enumerate(hist) if len(h) >= 3], dtype=np.int64)
            return u, np.array([hist[j][-1] for j in u], dtype=np.int64)
        if isinstance(valid, Interactions):
            uu, ii, _, _ = valid.coo()
            ue, ie = valid.users.ids[uu], valid.items.ids[ii]
        elif isinstance(valid, Mapping):
            ue, ie = list(valid.keys()), list(valid.values())
        else:
            from ...data._frames import to_pandas

            df = to_pandas(valid, "valid")
            if not {"user", "item"} <= set(df.columns):
                raise DataError(f"valid DataFrame needs columns 'user' and 'item', got {list(df.columns)}")
            ue, ie = df["user"].to_numpy(), df["item"].to_numpy()
        u = seqs.users.index(ue, missing="mask") if len(ue) else np.empty(0, np.int64)
        i = seqs.items.index(ie, missing="mask") if len(ie) else np.empty(0, np.int64)
        ok = (u >= 0) & (i >= 0)
        if (~ok).any():
            logger.info("SASRec.fit: %d validation pair(s) with ids unknown to the training data ignored", int((~ok).sum()))
        u, i = u[ok], i[ok]
        _, first = np.unique(u, return_index=True)  # one target per user
        return u[first], i[first]

    def _item2vec_vectors(self, name: str, train_hist: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(item indices, vectors) of an Item2Vec of the item table's width fitted on the training
        sequences; it is fitted on item indices, so its ids are the model's item indices."""
        if name != "item2vec":
            raise ValueError(f"init_embeddings must be 'item2vec', pretrained vectors or None; got {name!r}")
        from ..embeddings.item2vec import Item2Vec

        width = int(self.embedding_dim) if self.embedding_dim is not None else int(self.hidden)
        t0 = time.perf_counter()
        i2v = Item2Vec(factors=width, epochs=_ITEM2VEC_INIT_EPOCHS, random_state=int(self.random_state),
                       num_threads=self.num_threads).fit([h for h in train_hist if len(h)])
        logger.info("SASRec: Item2Vec init (dim %d) fitted in %.1f s", width, time.perf_counter() - t0)
        return np.asarray(i2v.items_.ids, dtype=np.int64), np.asarray(i2v.item_vectors(), dtype=np.float32)

    def _init_from(self, net: SASRecNet, src: Any, items: IdMap, train_hist: list[np.ndarray]) -> None:
        idx = None  # model item indices; pretrained vectors come keyed by external ids instead
        if isinstance(src, str):
            idx, V = self._item2vec_vectors(src, train_hist)
        elif hasattr(src, "item_vectors") and hasattr(src, "items_"):
            V = np.asarray(src.item_vectors(), dtype=np.float32)
            ids = src.items_.ids
        elif isinstance(src, Mapping):
            ids = list(src.keys())
            V = np.asarray([np.asarray(v, dtype=np.float32) for v in src.values()])
        else:
            from ...data._frames import to_pandas

            df = to_pandas(src, "init_embeddings")
            ids, V = df.index.to_numpy(), df.to_numpy(dtype=np.float32)
        table = net.item_emb.table.weight
        if V.ndim != 2 or V.shape[1] != table.shape[1]:
            raise ValueError(f"init_embeddings have width {V.shape[1] if V.ndim == 2 else V.shape}, "
                             f"but the item table has width {table.shape[1]} (embedding_dim or hidden)")
        if idx is None:
            idx = items.index(ids, missing="mask")
        ok = idx >= 0
        if not ok.any():
            warnings.warn("init_embeddings share no item with the training data; keeping random init", stacklevel=3)
            return
        V = V[ok]
        V = V / (float(np.sqrt(np.mean(V ** 2))) + 1e-12) * float(table[1:].detach().pow(2).mean().sqrt())  # same RMS as the init
        with torch.no_grad():
            table[torch.as_tensor(idx[ok] + 1, device=table.device)] = torch.as_tensor(V, device=table.device)
        logger.info("SASRec: initialised %d of %d item embeddings from pretrained vectors", int(ok.sum()), len(items))

    def _loss(self, net: SASRecNet, inp: "torch.Tensor", tgt: "torch.Tensor", neg: "torch.Tensor",
              norm: float) -> "torch.Tensor":
        """Sum of the per-position losses of the batch divided by ``norm``, the mean number of
        target positions per batch over the epoch. Batches group sequences of similar length
        (:class:`LengthBucketSampler`); a per-batch *mean* would give each position of a batch of
        short sequences many times the weight of a position in a batch of long ones, whereas
        this keeps every position's weight equal, as with randomly mixed batches."""
        h = net(inp)
        mask = tgt != 0
        if self.loss == "ce":
            hv = h[mask]
            logits = net.item_emb.score(hv)
            logits[:, 0] = float("-inf")  # the padding item is never a target
            return F.cross_entropy(logits, tgt[mask], reduction="sum") / norm
        pos = net.item_emb.score(h, tgt.unsqueeze(-1)).squeeze(-1)
        negl = net.item_emb.score(h, neg)
        if self.loss == "sampled_ce":
            per = torch.logsumexp(torch.cat([pos.unsqueeze(-1), negl], -1), -1) - pos
        else:
            per = self._beta(net.n_items) * F.softplus(-pos) + F.softplus(negl).sum(-1)
        return per[mask].sum() / norm

    def _beta(self, n_items: int) -> float:
        """Weight β of the positive term: 1 for ``"bce"``; gSASRec's α(t(1 − 1/α) + 1/α) with
        α = K/(|I| − 1) for ``"gbce"``."""
        if self.loss != "gbce":
            return 1.0
        alpha = min(1.0, int(self.n_negatives) / max(n_items - 1, 1))
        t = float(self.gbce_t)
        return alpha * (t * (1.0 - 1.0 / alpha) + 1.0 / alpha)

    def _train(self, net: SASRecNet, train_hist: list[np.ndarray], n_items: int, val_u: np.ndarray,
               val_i: np.ndarray, dev: "torch.device") -> None:
        from torch.utils.data import DataLoader

        ds = SequenceDataset([h + 1 for h in train_hist], n_items, int(self.max_len),
                             int(self.n_negatives) if self.loss != "ce" else 0, seed=int(self.random_state))
        if len(ds) == 0:
            raise DataError("SASRec.fit: no training sequence has 2 or more items")
        sampler = LengthBucketSampler(ds.lengths, int(self.batch_size), seed=int(self.random_state))
        loader = DataLoader(ds, batch_sampler=sampler, collate_fn=collate_batch, num_workers=0)
        opt = torch.optim.Adam(net.parameters(), lr=float(self.lr), betas=(0.9, 0.98))

        # validation users: those with a target and a non-empty training history (≤ 5,000, seeded)
        has = np.array([len(train_hist[u]) > 0 for u in val_u], dtype=bool)
        val_u, val_i = val_u[has], val_i[has]
        if len(val_u) > _VALID_MAX_USERS:
            pick = np.sort(np.random.default_rng(int(self.random_state)).choice(len(val_u), _VALID_MAX_USERS, replace=False))
            val_u, val_i = val_u[pick], val_i[pick]
        do_val = len(val_u) > 0

        self.history_: list[dict[str, float]] = []
        bar = progress(range(1, int(self.epochs) + 1), verbose=self.verbose, desc="SASRec", unit="epoch")
        # the best epoch so far, filled in by _epochs as it goes, so that Ctrl-C still keeps it
        best: dict[str, Any] = {"state": None, "epoch": 0}
        try:
            self._epochs(net, bar, ds, sampler, loader, opt, train_hist, val_u, val_i, do_val, dev, best)
        except KeyboardInterrupt:  # Ctrl-C stops training early; the best epoch so far is kept
            warnings.warn(f"SASRec training interrupted after {len(self.history_)} complete epoch(s); "
                          "keeping the best weights so far", stacklevel=3)
        bar.close()
        if best["state"] is not None:
            net.load_state_dict(best["state"])
        self.best_epoch_ = best["epoch"] if do_val and best["epoch"] > 0 else len(self.history_)
        net.eval()

    def _epochs(self, net: SASRecNet, bar: Any, ds: Any, sampler: Any, loader: Any, opt: Any,
                train_hist: list[np.ndarray], val_u: np.ndarray, val_i: np.ndarray, do_val: bool,
                dev: "torch.device", best: dict[str, Any]) -> None:
        best_ndcg, bad = -np.inf, 0
        norm = float(ds.lengths.sum()) / max(len(sampler), 1)  # mean target positions per batch
        for epoch in bar:
            t0 = time.perf_counter()
            ds.set_epoch(epoch)
            sampler.set_epoch(epoch)
            net.train()
            total, nb = 0.0, 0
            for inp, tgt, neg in loader:
                inp, tgt, neg = inp.to(dev), tgt.to(dev), neg.to(dev)
                loss = self._loss(net, inp, tgt, neg, norm)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                with torch.no_grad():  # keep the padding row at zero
                    net.item_emb.table.weight[0].zero_()
                total += float(loss.detach())
                nb += 1
            rec: dict[str, float] = {"epoch": epoch, "loss": total / max(nb, 1), "seconds": time.perf_counter() - t0}
            if do_val:
                hr, ndcg = self._evaluate_next(net, [train_hist[u] for u in val_u], val_i, dev)
                rec.update({"val_hr@10": hr, "val_ndcg@10": ndcg})
                if ndcg > best_ndcg:
                    best_ndcg, bad = ndcg, 0
                    best["state"], best["epoch"] = copy.deepcopy(net.state_dict()), epoch
                else:
                    bad += 1
            self.history_.append(rec)
            bar.set_postfix({k: round(v, 4) for k, v in rec.items() if k not in ("epoch", "seconds")})
            logger.debug("SASRec epoch %d: %s", epoch, rec)
            if do_val and bad >= int(self.patience):
                logger.info("SASRec: early stop at epoch %d (best %d, val ndcg@10 %.4f)", epoch, best["epoch"], best_ndcg)
                break

    def _evaluate_next(self, net: SASRecNet, hists: list[np.ndarray], targets: np.ndarray,
                       dev: "torch.device") -> tuple[float, float]:
        """Full-ranking HR@10 / NDCG@10 of ``targets`` after ``hists`` (history items excluded)."""
        ranks = np.empty(len(hists), dtype=np.int64)
        for s in range(0, len(hists), 1024):
            S = self._sorted_scores(net, hists[s:s + 1024], dev)
            for j, h in enumerate(hists[s:s + 1024]):
                row = S[j]
                ts = row[targets[s + j]]
                row[h] = -np.inf
                ranks[s + j] = int((row > ts).sum())
        hit = ranks < 10
        return float(hit.mean()), float(np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0).mean())

    # ------------------------------------------------------------------ state
    def _set_histories(self, hist: list[np.ndarray], users: IdMap, items: IdMap) -> None:
        lens = np.fromiter((len(h) for h in hist), dtype=np.int64, count=len(hist))
        self.hist_indptr_ = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        self.hist_indices_ = np.concatenate(hist).astype(np.int64) if len(hist) else np.empty(0, np.int64)
        rows = np.repeat(np.arange(len(hist)), lens)
        seen = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, self.hist_indices_)), shape=(len(users), len(items)))
        self._set_interactions(users, items, seen)

    def _user_history(self, u: int) -> np.ndarray:
        return self.hist_indices_[self.hist_indptr_[u]:self.hist_indptr_[u + 1]]

    def history(self, user: Any) -> np.ndarray:
        """The ordered item history (external ids) the model reads for a known ``user``."""
        self._check_fitted()
        u = int(self.users_.index([user])[0])
        return self.items_.ids[self._user_history(u)]

    def n_parameters(self) -> int:
        """Number of trainable parameters of the network."""
        self._check_fitted()
        return int(sum(p.numel() for p in self.net_.parameters()))

    # ------------------------------------------------------------------ scoring
    def _net_scores(self, net: SASRecNet, hists: Sequence[np.ndarray], dev: "torch.device") -> np.ndarray:
        """Scores (len(hists), n_items) float32 for 0-based item-index histories; an empty history
        is scored by training popularity when known, else by the network on an empty input."""
        net.eval()
        x = torch.as_tensor(left_pad([np.asarray(h, dtype=np.int64) + 1 for h in hists], int(self.max_len)), device=dev)
        with torch.no_grad():
            S = net.score_all(x).float().cpu().numpy()
        empty = np.array([len(h) == 0 for h in hists], dtype=bool)
        if empty.any() and getattr(self, "item_counts_", None) is not None:
            S[empty] = self.item_counts_.astype(np.float32)
        return S

    def _history_scores(self, hists: Sequence[np.ndarray], batch: int = 1024) -> np.ndarray:
        return self._sorted_scores(self.net_, hists, self._device, batch)

    def _sorted_scores(self, net: SASRecNet, hists: Sequence[np.ndarray], dev: "torch.device", batch: int = 1024) -> np.ndarray:
        # batches of similar length: little padding is computed (outputs do not depend on padding)
        out = np.empty((len(hists), net.n_items), dtype=np.float32)
        order = np.argsort([min(len(h), int(self.max_len)) for h in hists], kind="stable")
        for s in range(0, len(hists), batch):
            rows = order[s:s + batch]
            out[rows] = self._net_scores(net, [hists[r] for r in rows], dev)
        return out

    def _scores(self, user_idx: np.ndarray) -> np.ndarray:
        return self._history_scores([self._user_history(int(u)) for u in user_idx])

    def _map_history(self, items: Any, unknown: str) -> np.ndarray:
        if unknown not in ("skip", "raise"):
            raise ValueError(f"unknown must be 'skip' or 'raise', got {unknown!r}")
        if isinstance(items, (str, bytes)) or not hasattr(items, "__iter__"):
            raise ValueError(f"a history must be a list of item ids, got {items!r}")
        items = list(items)
        if len(items) == 0:
            return np.empty(0, np.int64)
        idx = self.items_.index(list(items), missing="mask")
        if (idx < 0).any():
            bad = np.asarray(list(items), dtype=object)[idx < 0].tolist()
            if unknown == "raise":
                raise UnknownIdError("item", bad)
            shown = ", ".join(repr(b) for b in bad[:5])
            warnings.warn(f"skipping {len(bad)} item id(s) unknown to the model in the history: {shown}", stacklevel=4)
            idx = idx[idx >= 0]
        return idx

    def history_scores(self, histories: Sequence[Sequence[Any]], unknown: Literal["skip", "raise"] = "skip") -> np.ndarray:
        """Next-item scores (len(histories), n_items), columns in ``items_`` order, for histories
        of external item ids (oldest first). No parameter is updated."""
        self._check_fitted()
        return self._history_scores([self._map_history(h, unknown) for h in histories])

    def recommend_for_histories(self, histories: Sequence[Sequence[Any]], k: int = 10, filter_seen: bool = True,
                                items: Sequence[Any] | None = None, unknown: Literal["skip", "raise"] = "skip",
                                batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        """Batch form of :meth:`recommend_for_history`: ``(ids, scores)`` of shape (len(histories), k)."""
        self._check_fitted()
        hists = [self._map_history(h, unknown) for h in histories]
        cand = self._candidates(items)
        k = self._check_k(k, len(self.items_) if cand is None else len(cand))
        out_idx = np.empty((len(hists), k), dtype=np.int64)
        out_sc = np.empty((len(hists), k), dtype=np.float32)
        for s in range(0, len(hists), batch_size):
            hb = hists[s:s + batch_size]
            S = self._history_scores(hb)
            if filter_seen:
                rows = np.repeat(np.arange(len(hb)), [len(h) for h in hb])
                if len(rows):
                    S[rows, np.concatenate(hb)] = -np.inf
            idx, sc = self._select(S, cand, k)
            out_idx[s:s + len(hb)] = idx
            out_sc[s:s + len(hb)] = sc
        return self._to_external(out_idx, out_sc)

    def recommend_for_history(self, items: Sequence[Any], k: int = 10, filter_seen: bool = True,
                              unknown: Literal["skip", "raise"] = "skip",
                              candidates: Sequence[Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` next items after the history ``items`` (external ids, oldest first) — for any
        user, including one never seen in training: the model reads the history in context, with
        no parameter update. History items are excluded when ``filter_seen``; ``candidates``
        restricts the ranking. Item ids unknown to the model are skipped with a warning
        (``unknown="skip"``) or raise :class:`UnknownIdError` (``unknown="raise"``). Only the last
        ``max_len`` items are read. An empty history is answered by training popularity.
        Returns 1-D ``(ids, scores)``, best first; ``items`` may also be a list of histories
        (list of lists), giving 2-D arrays as :meth:`recommend_for_histories` does.
        """
        if isinstance(items, (str, bytes)) or not hasattr(items, "__iter__"):
            raise ValueError(f"items must be a list of item ids (or a list of such lists), got {items!r}")
        items = list(items)
        if items and all(isinstance(h, (list, tuple, np.ndarray)) for h in items):
            return self.recommend_for_histories(items, k, filter_seen, candidates, unknown)
        ids, sc = self.recommend_for_histories([items], k, filter_seen, candidates, unknown)
        return ids[0], sc[0]

    def explain_history(self, items: Sequence[Any], unknown: Literal["skip", "raise"] = "skip") -> dict[str, Any]:
        """Attention weights of the next-item query over the history ``items`` (oldest first).

        The query is the last position's hidden state; in block b it attends to the history with
        weights softmax(q·kⱼ/√d) (causal, padding masked), averaged over heads. Returns
        ``{"items": [...], "weights": [...], "layers": [[...], ...]}``: the history items the
        model read (the last ``max_len``), the last block's weights (summing to 1, the strongest
        influence on the ranking) and each block's weights. The same weights explain every
        recommended item, since the query does not depend on the candidate."""
        self._check_fitted()
        idx = self._map_history(items, unknown)[-int(self.max_len):]
        if len(idx) == 0:
            return {"items": [], "weights": [], "layers": []}
        net = self.net_.eval()
        seen: list[tuple[Any, Any, Any, Any]] = []

        def grab(mod, args, out):
            seen.append((mod, args[0], args[1], args[2]))

        hooks = [b.attn.register_forward_hook(grab) for b in net.blocks]
        try:
            x = torch.as_tensor(np.asarray(idx, dtype=np.int64)[None, :] + 1, device=self._device)
            with torch.no_grad():
                net(x)
                layers = []
                for mod, q_in, kv_in, allowed in seen:
                    L, d = q_in.shape[1], q_in.shape[2] // mod.heads
                    q = mod.q(q_in[:, -1:]).view(1, 1, mod.heads, d).transpose(1, 2)
                    k = mod.k(kv_in).view(1, L, mod.heads, d).transpose(1, 2)
                    att = (q @ k.transpose(-1, -2)) / d ** 0.5
                    att = att.masked_fill(~allowed[:, :, -1:, :], float("-inf")).softmax(-1)
                    layers.append(att.mean(1)[0, 0].float().cpu().numpy().astype(np.float64))
        finally:
            for h in hooks:
                h.remove()
        return {"items": self.items_.ids[idx].tolist(), "weights": layers[-1].tolist(),
                "layers": [w.tolist() for w in layers]}

    def item_vectors(self) -> np.ndarray:
        """Item output embeddings Mᵢ (n_items, hidden) (projected when factorized)."""
        self._check_fitted()
        with torch.no_grad():
            idx = torch.arange(1, len(self.items_) + 1, device=self._device)
            return self.net_.item_emb(idx).float().cpu().numpy()

    # ------------------------------------------------------------------ persistence
    def _get_arrays(self) -> dict[str, np.ndarray]:
        arrays = {**super()._get_arrays(), "hist_indptr": self.hist_indptr_, "hist_indices": self.hist_indices_}
        for name, t in self.net_.state_dict().items():
            arrays[_NET_PREFIX + name] = t.detach().cpu().numpy()
        return arrays

    def _get_extra(self) -> dict[str, Any]:
        return {"best_epoch": int(getattr(self, "best_epoch_", 0)), "history": getattr(self, "history_", []),
                "positions": str(self.positions)}

    @classmethod
    def _extra_spec(cls, params: dict[str, Any]) -> dict[str, Any]:
        return {"best_epoch": "~int", "history": "~list", "positions": ("recency", "first")}

    @classmethod
    def _array_specs(cls, params: dict[str, Any], extra: dict[str, Any], shapes: Any) -> dict[str, ArraySpec]:
        n_items = shapes["items_ids"][0] if len(shapes.get("items_ids", ())) == 1 else 0
        blocks = {k.split(".")[2] for k in shapes if k.startswith(_NET_PREFIX + "blocks.")}
        want = 1 if params["share_layers"] else int(params["layers"])
        if len(blocks) != want:  # checked before building anything with `layers` blocks
            raise FormatError(f"the file holds {len(blocks)} attention block(s) (net.blocks.*), "
                              f"the parameters say {want}")
        net = torch_state_specs(lambda: SASRecNet(
            n_items, hidden=int(params["hidden"]), layers=int(params["layers"]), heads=int(params["heads"]),
            max_len=int(params["max_len"]), dropout=0.0,
            embedding_dim=None if params["embedding_dim"] is None else int(params["embedding_dim"]),
            share_layers=bool(params["share_layers"]), positions=str(extra.get("positions", "first"))), _NET_PREFIX)
        return {**super()._array_specs(params, extra, shapes), "hist_indptr": indptr("n_users", of="hist_indices"),
                "hist_indices": index(None, hi="n_items"), **net}

    def _set_arrays(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        super()._set_arrays(arrays, extra)
        # files written before the ``positions`` option existed used positions counted from the first item
        self.positions = str(extra.get("positions", "first"))
        self.hist_indptr_ = np.asarray(arrays["hist_indptr"], dtype=np.int64)
        self.hist_indices_ = np.asarray(arrays["hist_indices"], dtype=np.int64)
        dev = _resolve_device(self.device)
        net = self._build_net(len(self.items_))
        state = {k[len(_NET_PREFIX):]: torch.from_numpy(np.array(v)) for k, v in arrays.items() if k.startswith(_NET_PREFIX)}
        net.load_state_dict(state, strict=True)
        self.net_, self._device = net.to(dev).eval(), dev
        self.best_epoch_ = int(extra.get("best_epoch", 0))
        self.history_ = list(extra.get("history", []))
