"""PyTorch parts of :class:`~tastebud.models.multimodal.model.MultimodalModel`: the network and the batches.

Imports torch at module level; :mod:`tastebud.models.multimodal.model` imports this module only
after checking that torch is installed.

The network (DeepFM-like; Guo et al., "DeepFM", IJCAI 2017; FM term from Rendle, ICDM 2010)
turns each of the F fields into a ``dim``-vector eᶠ:

* numeric field f with standardised value z:  eᶠ = z · vᶠ            (first order: w_f · z)
* categorical / id field with index c:         eᶠ = Eᶠ[c]             (nn.Embedding; first order bᶠ[c])
* multi-hot / hashed-text bag S:               eᶠ = mean_{s∈S} Eᶠ[s]  (nn.EmbeddingBag; empty S → 0)
* MiniLM text embedding x (frozen, 384-d):     eᶠ = Pᶠ x              (trainable projection)

and predicts

    ŷ = b + Σ_f first_order_f + ½ Σ_k [(Σ_f eᶠ_k)² − Σ_f (eᶠ_k)²]  +  MLP([e¹; …; eᶠ; z])

where the middle term is the FM pairwise interaction Σ_{f<g} ⟨eᶠ, eᵍ⟩ and the MLP (ReLU,
dropout) sees the concatenated field vectors and the raw numeric values.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .schema import Encoded, take_bag


class MultimodalNet(nn.Module):
    """Per-field embeddings + first-order terms + FM interaction + MLP (see module docstring)."""

    def __init__(self, n_numeric: int, cat_sizes: Sequence[int], bag_sizes: Sequence[int], dense_dims: Sequence[int],
                 dim: int = 16, hidden: Sequence[int] = (64, 32), dropout: float = 0.1, init_bias: float = 0.0,
                 init_std: float = 0.01):
        super().__init__()
        self.n_numeric = int(n_numeric)
        self.n_fields = self.n_numeric + len(cat_sizes) + len(bag_sizes) + len(dense_dims)
        if self.n_fields == 0:
            raise ValueError("the network needs at least one field")
        self.dim = int(dim)
        self.bias = nn.Parameter(torch.tensor(float(init_bias)))
        self.num_vec = nn.Parameter(torch.randn(self.n_numeric, dim) * init_std)
        self.num_w = nn.Parameter(torch.zeros(self.n_numeric))
        self.cat_emb = nn.ModuleList(nn.Embedding(n, dim) for n in cat_sizes)
        self.cat_w = nn.ModuleList(nn.Embedding(n, 1) for n in cat_sizes)
        self.bag_emb = nn.ModuleList(nn.EmbeddingBag(n, dim, mode="mean") for n in bag_sizes)
        self.bag_w = nn.ModuleList(nn.EmbeddingBag(n, 1, mode="mean") for n in bag_sizes)
        self.dense_proj = nn.ModuleList(nn.Linear(d, dim, bias=False) for d in dense_dims)
        self.dense_w = nn.ModuleList(nn.Linear(d, 1, bias=False) for d in dense_dims)
        layers: list[nn.Module] = []
        width = self.n_fields * dim + self.n_numeric
        for h in hidden:
            layers += [nn.Linear(width, int(h)), nn.ReLU(), nn.Dropout(dropout)]
            width = int(h)
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)
        with torch.no_grad():
            for m in [*self.cat_emb, *self.bag_emb]:
                m.weight.normal_(0.0, init_std)
            for m in [*self.cat_w, *self.bag_w]:
                m.weight.zero_()
            for m in self.dense_w:
                m.weight.zero_()
            self.mlp[-1].weight.mul_(0.1)
            self.mlp[-1].bias.zero_()

    def forward(self, num: torch.Tensor, cat: torch.Tensor, bags: Sequence[tuple[torch.Tensor, torch.Tensor]],
                dense: Sequence[torch.Tensor], with_penalty: bool = False):
        """Predictions (B,) (logits for a binary task); with ``with_penalty`` also the batch's
        mean squared norm of the field embeddings and first-order weights it used (for L2)."""
        B = num.shape[0]
        vecs: list[torch.Tensor] = []
        first = self.bias.expand(B)
        penalty = num.new_zeros(())
        if self.n_numeric:
            vecs.append(num.unsqueeze(2) * self.num_vec.unsqueeze(0))  # (B, n_num, d)
            first = first + num @ self.num_w
        for j, (emb, w) in enumerate(zip(self.cat_emb, self.cat_w)):
            e = emb(cat[:, j])
            b = w(cat[:, j]).squeeze(1)
            vecs.append(e.unsqueeze(1))
            first = first + b
            if with_penalty:
                penalty = penalty + (e * e).sum(1).mean() + (b * b).mean()
        for (idx, off), emb, w in zip(bags, self.bag_emb, self.bag_w):
            e = emb(idx, off)
            b = w(idx, off).squeeze(1)
            vecs.append(e.unsqueeze(1))
            first = first + b
            if with_penalty:
                penalty = penalty + (e * e).sum(1).mean() + (b * b).mean()
        for x, proj, w in zip(dense, self.dense_proj, self.dense_w):
            vecs.append(proj(x).unsqueeze(1))
            first = first + w(x).squeeze(1)
        E = torch.cat(vecs, dim=1)  # (B, F, d)
        s = E.sum(1)
        fm = 0.5 * (s * s - (E * E).sum(1)).sum(1)
        deep = self.mlp(torch.cat([E.reshape(B, -1), num], dim=1)).squeeze(1)
        out = first + fm + deep
        if with_penalty:
            return out, penalty
        return out


class EncodedDataset(Dataset):
    """A torch ``Dataset`` over the rows of an :class:`Encoded` frame (and optional targets).

    Items are row numbers; :meth:`collate` gathers a batch of rows into the tensors
    :meth:`MultimodalNet.forward` takes (bags as ``EmbeddingBag`` indices + offsets).
    """

    def __init__(self, enc: Encoded, y: np.ndarray | None = None):
        self.enc = enc
        self.y = None if y is None else np.asarray(y, dtype=np.float32)

    def __len__(self) -> int:
        return self.enc.n

    def __getitem__(self, i: int) -> int:
        return i

    def collate(self, rows: list[int]):
        r = np.asarray(rows, dtype=np.int64)
        return batch_tensors(self.enc, r), (None if self.y is None else torch.from_numpy(self.y[r]))


def batch_tensors(enc: Encoded, rows: np.ndarray) -> dict:
    """Tensors for ``rows`` of ``enc``: num, cat, bags [(indices, offsets)], dense."""
    bags = []
    for b in enc.bags:
        ptr, ind = take_bag(b, rows)
        bags.append((torch.from_numpy(ind), torch.from_numpy(ptr[:-1].copy())))
    return {"num": torch.from_numpy(np.ascontiguousarray(enc.num[rows])),
            "cat": torch.from_numpy(np.ascontiguousarray(enc.cat[rows])),
            "bags": bags,
            "dense": [torch.from_numpy(np.ascontiguousarray(d[rows])) for d in enc.dense]}


def to_device(batch: dict, device: torch.device) -> dict:
    if device.type == "cpu":
        return batch
    return {"num": batch["num"].to(device), "cat": batch["cat"].to(device),
            "bags": [(i.to(device), o.to(device)) for i, o in batch["bags"]],
            "dense": [d.to(device) for d in batch["dense"]]}


def make_loader(enc: Encoded, y: np.ndarray | None, batch_size: int, shuffle: bool, seed: int = 0) -> DataLoader:
    """A single-process, seeded ``DataLoader`` over ``enc`` (same seed → same batch order)."""
    ds = EncodedDataset(enc, y)
    gen = torch.Generator()
    gen.manual_seed(int(seed))
    return DataLoader(ds, batch_size=int(batch_size), shuffle=shuffle, collate_fn=ds.collate, generator=gen, num_workers=0)


def predict_encoded(net: MultimodalNet, enc: Encoded, device: torch.device, batch_size: int = 8192) -> np.ndarray:
    """Raw network outputs for every row of ``enc`` (eval mode, no grad)."""
    net.eval()
    out = np.empty(enc.n, dtype=np.float32)
    with torch.no_grad():
        for start in range(0, enc.n, batch_size):
            rows = np.arange(start, min(enc.n, start + batch_size))
            b = to_device(batch_tensors(enc, rows), device)
            out[rows] = net(b["num"], b["cat"], b["bags"], b["dense"]).float().cpu().numpy()
    return out
