"""PyTorch modules and the training ``Dataset`` behind :class:`tastebud.models.sequential.sasrec.SASRec`.

Conventional PyTorch style: layers are built in ``__init__`` and the computation lives in
``forward``. Item index 0 is the padding item; real items are ``1..n_items``. Sequences are
*left*-padded. Positions (``positions=``) are counted either from the newest item
(``"recency"``, the default: the newest item is position 0, which is what the reference code's
fixed-width left-padded rows amount to) or from the oldest item read (``"first"``). Both are
counted over real items only, so a sequence gives the same outputs whatever amount of left
padding surrounds it. With ``"first"`` the output after the first t items of a training sequence
is exactly the output for a t-item history at inference; with ``"recency"`` the query position of
every inference is position 0, which training sees at the end of every sequence.

Architecture (Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018, §III):

    E⁰ₜ = √H · M[sₜ] + Pₜ                                   (item + learned position embedding)
    for each block b = 1..B:
        Q   = LN₁(Eᵇ⁻¹)
        A   = Q + MultiHeadAttn(Q, Eᵇ⁻¹, Eᵇ⁻¹; causal + key-padding mask)
        Z   = LN₂(A)
        Eᵇ  = Z + Dropout(W₂ · Dropout(ReLU(W₁ Z + b₁)) + b₂)
        Eᵇ *= (sₜ ≠ pad)
    Fₜ = LN(Eᴮₜ);   r(i | s₁..ₜ) = Fₜ · Mᵢ                   (shared input/output item embedding)

ALBERT (Lan et al., ICLR 2020) compression:
  * factorized embedding: Mᵢ = W eᵢ with eᵢ ∈ ℝᴱ, W ∈ ℝᴴˣᴱ, so the item table costs
    (n_items + 1)·E + E·H parameters instead of (n_items + 1)·H;
  * cross-layer sharing: one block's weights applied B times.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset, Sampler


class ItemEmbedding(nn.Module):
    """Item table with padding index 0, optionally factorized (ALBERT): E-dim table projected to H.

    Parameters: ``(n_items + 1) * H`` when ``embedding_dim`` is None or equals ``hidden``;
    ``(n_items + 1) * E + E * H`` (projection without bias) when ``E < H``.
    """

    def __init__(self, n_items: int, hidden: int, embedding_dim: int | None = None):
        super().__init__()
        e = hidden if embedding_dim is None else int(embedding_dim)
        self.factorized = e < hidden
        self.table = nn.Embedding(n_items + 1, e, padding_idx=0)
        self.proj = nn.Linear(e, hidden, bias=False) if self.factorized else None
        nn.init.normal_(self.table.weight, std=1.0 / math.sqrt(e))
        with torch.no_grad():
            self.table.weight[0].zero_()

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.table(idx)
        return self.proj(x) if self.proj is not None else x

    def score(self, h: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        """Dot products ``h · Mᵢ`` for ``items`` (same leading shape as ``h`` plus a trailing
        candidates axis) or for every item including padding (last axis ``n_items + 1``)."""
        if self.proj is not None:
            h = h @ self.proj.weight  # (…, H) → (…, E): h · (W e) = (Wᵀ h) · e
        if items is None:
            return h @ self.table.weight.T
        return (self.table(items) * h.unsqueeze(-2)).sum(-1)


class CausalSelfAttention(nn.Module):
    """Multi-head scaled dot-product attention; queries from ``q_in``, keys/values from ``kv_in``."""

    def __init__(self, hidden: int, heads: int, dropout: float):
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden={hidden} must be divisible by heads={heads}")
        self.heads = heads
        self.q = nn.Linear(hidden, hidden)
        self.k = nn.Linear(hidden, hidden)
        self.v = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, hidden)
        self.dropout = dropout

    def forward(self, q_in: torch.Tensor, kv_in: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        # allowed: bool (B, 1, L, L), True where query t may attend to key s
        b, L, h = q_in.shape
        d = h // self.heads

        def split(x: torch.Tensor) -> torch.Tensor:
            return x.view(b, L, self.heads, d).transpose(1, 2)

        q, k, v = split(self.q(q_in)), split(self.k(kv_in)), split(self.v(kv_in))
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.out(o.transpose(1, 2).reshape(b, L, h))


class PointWiseFeedForward(nn.Module):
    """FFN(x) = x + Dropout(W₂ Dropout(ReLU(W₁ x + b₁)) + b₂), applied at every position."""

    def __init__(self, hidden: int, dropout: float):
        super().__init__()
        self.fc1 = nn.Linear(hidden, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.drop1 = nn.Dropout(dropout)
        self.drop2 = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop2(self.fc2(self.drop1(F.relu(self.fc1(x)))))


class SASRecBlock(nn.Module):
    """One self-attention block as in the SASRec reference code (pre-LN on queries)."""

    def __init__(self, hidden: int, heads: int, dropout: float):
        super().__init__()
        self.attn_norm = nn.LayerNorm(hidden, eps=1e-8)
        self.attn = CausalSelfAttention(hidden, heads, dropout)
        self.ffn_norm = nn.LayerNorm(hidden, eps=1e-8)
        self.ffn = PointWiseFeedForward(hidden, dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        q = self.attn_norm(x)
        x = q + self.attn(q, x, allowed)
        x = self.ffn(self.ffn_norm(x))
        return x * keep


class SASRecNet(nn.Module):
    """Embedding → ``layers`` blocks (``share_layers``: one block reused) → final layer norm."""

    def __init__(self, n_items: int, hidden: int = 64, layers: int = 2, heads: int = 1, max_len: int = 50,
                 dropout: float = 0.2, embedding_dim: int | None = None, share_layers: bool = False,
                 positions: str = "recency"):
        super().__init__()
        if positions not in ("recency", "first"):
            raise ValueError(f"positions must be 'recency' or 'first', got {positions!r}")
        self.positions = positions
        self.n_items, self.hidden, self.layers, self.max_len = n_items, hidden, layers, max_len
        self.share_layers = share_layers
        self.item_emb = ItemEmbedding(n_items, hidden, embedding_dim)
        self.pos_emb = nn.Embedding(max_len, hidden)
        self.emb_drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList([SASRecBlock(hidden, heads, dropout) for _ in range(1 if share_layers else layers)])
        self.final_norm = nn.LayerNorm(hidden, eps=1e-8)

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        """Hidden states (B, L, H) for left-padded item indices ``seq`` (B, L), L ≤ max_len."""
        b, L = seq.shape
        if L > self.max_len:
            raise ValueError(f"sequence length {L} exceeds max_len={self.max_len}")
        real = seq != 0
        keep = real.unsqueeze(-1)
        if self.positions == "recency":
            # position = how many items came after this one (the newest item is 0); rows are
            # left-padded, so this is the column counted from the right, whatever the padding
            pos = torch.arange(L - 1, -1, -1, device=seq.device).expand(b, L)
        else:
            # "first": positions count from the oldest real item, so a prefix s₁..sₜ of a training
            # sequence and a t-item history at inference get the same positions
            pos = (real.long().cumsum(1) - 1).clamp_(min=0)
        x = self.item_emb(seq) * math.sqrt(self.hidden) + self.pos_emb(pos)
        x = self.emb_drop(x) * keep
        # query t may attend to key s iff s ≤ t and s is a real item; every position may attend to
        # itself so that all-padding rows stay finite (their outputs are zeroed by ``keep``)
        causal = torch.ones(L, L, dtype=torch.bool, device=seq.device).tril()
        allowed = causal & (seq != 0)[:, None, :]
        allowed = allowed | torch.eye(L, dtype=torch.bool, device=seq.device)
        allowed = allowed.unsqueeze(1)
        for layer in range(self.layers):
            block = self.blocks[0 if self.share_layers else layer]
            x = block(x, allowed, keep)
        return self.final_norm(x)

    def last_hidden(self, seq: torch.Tensor) -> torch.Tensor:
        """Hidden state at the last (most recent) position: the user's next-item query (B, H)."""
        return self.forward(seq)[:, -1, :]

    def score_all(self, seq: torch.Tensor) -> torch.Tensor:
        """Scores (B, n_items) of every real item as the next item after ``seq``."""
        return self.item_emb.score(self.last_hidden(seq))[:, 1:]


class SequenceDataset(Dataset):
    """Padded next-item training examples, one per user sequence (Kang & McAuley's sampler).

    For a sequence s (item indices ≥ 1) the example is the last ``max_len`` steps of
    ``input = s[:-1]``, ``target = s[1:]`` left-padded with 0, plus ``n_negatives`` items per
    position drawn uniformly from the items not in s (0 at padding positions).

    ``dataset[j]`` gives one example padded to ``max_len``; ``dataset.__getitems__(indices)``
    (used by ``DataLoader`` with :class:`LengthBucketSampler`) gives a whole batch, trimmed to
    its longest sequence, with negatives from a per-(seed, epoch, batch) random stream, so the
    batches of an epoch do not depend on timing. Call :meth:`set_epoch` between epochs.
    """

    def __init__(self, sequences: Sequence[np.ndarray], n_items: int, max_len: int, n_negatives: int = 1,
                 seed: int = 0):
        self.n_items, self.max_len, self.n_negatives, self.seed = n_items, max_len, n_negatives, seed
        self.sequences = [np.asarray(s, dtype=np.int64) for s in sequences if len(s) >= 2]
        n = len(self.sequences)
        self.inputs = np.zeros((n, max_len), dtype=np.int64)
        self.targets = np.zeros((n, max_len), dtype=np.int64)
        self.lengths = np.zeros(n, dtype=np.int64)
        for j, s in enumerate(self.sequences):
            inp, tgt = s[:-1][-max_len:], s[1:][-max_len:]
            self.inputs[j, max_len - len(inp):] = inp
            self.targets[j, max_len - len(tgt):] = tgt
            self.lengths[j] = len(inp)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.sequences)

    def _negatives(self, rows: np.ndarray, tgt: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        b, w = tgt.shape
        neg = rng.integers(1, self.n_items + 1, size=(b, w, self.n_negatives))
        # rejection sampling against each user's own items, vectorised with (row, item) keys
        span = self.n_items + 1
        own = np.unique(np.concatenate([j * span + np.unique(self.sequences[r]) for j, r in enumerate(rows)]))
        full = np.array([len(np.unique(self.sequences[r])) >= self.n_items for r in rows])
        row_key = (np.arange(b) * span)[:, None, None]
        for _ in range(100):
            bad = np.isin(row_key + neg, own) & ~full[:, None, None]
            if not bad.any():
                break
            neg[bad] = rng.integers(1, self.n_items + 1, size=int(bad.sum()))
        neg[tgt == 0] = 0
        return neg

    def __getitem__(self, j: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        inp, tgt, neg = self.__getitems__([j], trim=False)
        return inp[0], tgt[0], neg[0]

    def __getitems__(self, indices: Sequence[int], trim: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rows = np.asarray(indices, dtype=np.int64)
        w = int(self.lengths[rows].max()) if trim and len(rows) else self.max_len
        inp, tgt = self.inputs[rows, self.max_len - w:], self.targets[rows, self.max_len - w:]
        if self.n_negatives > 0:
            rng = np.random.default_rng([self.seed, self.epoch, *rows[:4].tolist(), len(rows)])
            neg = self._negatives(rows, tgt, rng)
        else:
            neg = np.zeros((len(rows), w, 0), dtype=np.int64)
        return torch.from_numpy(np.ascontiguousarray(inp)), torch.from_numpy(np.ascontiguousarray(tgt)), torch.from_numpy(neg)


class LengthBucketSampler(Sampler):
    """Batches of sequences of similar length (so little padding is computed), in random order.

    Each epoch: order the examples by (length, random key), cut into batches of ``batch_size``,
    shuffle the batches. Seeded by ``(seed, epoch)``; call :meth:`set_epoch` between epochs.
    """

    def __init__(self, lengths: np.ndarray, batch_size: int, seed: int = 0):
        self.lengths = np.asarray(lengths)
        self.batch_size = int(batch_size)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return (len(self.lengths) + self.batch_size - 1) // self.batch_size

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch, 7])
        order = np.lexsort((rng.random(len(self.lengths)), self.lengths))
        batches = [order[s:s + self.batch_size] for s in range(0, len(order), self.batch_size)]
        for b in rng.permutation(len(batches)):
            yield batches[b].tolist()


def collate_batch(batch: Any) -> Any:
    """``collate_fn`` for a dataset whose ``__getitems__`` already returns stacked tensors."""
    return batch


def left_pad(histories: Sequence[np.ndarray], max_len: int) -> np.ndarray:
    """The last ``max_len`` items of each history, left-padded with 0 to a common width
    (the longest kept history, at least 1)."""
    width = max(1, min(max_len, max((len(h) for h in histories), default=1)))
    out = np.zeros((len(histories), width), dtype=np.int64)
    for j, h in enumerate(histories):
        h = np.asarray(h, dtype=np.int64)[-width:]
        if len(h):
            out[j, width - len(h):] = h
    return out
