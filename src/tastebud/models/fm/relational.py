"""Relational designs for factorization machines: feature blocks whose rows repeat across examples.

In a rating data set every rating of user u repeats u's features (id, side features, the items u
rated...). myFM's ``RelationBlock`` (after Rendle, "Scaling factorization machines to relational
data", VLDB 2013) stores such a block once — a matrix B of R distinct rows and, per example n, the
index r(n) of its row — and the design row n is the concatenation [X_n | B_1[r_1(n)] | B_2[r_2(n)] …].

``FactorizationMachine.fit(X, y, groups, relations=[RelationBlock(index, B), ...])`` trains on
that design without building it: the MCMC/ALS sweep sums each block feature's statistics per block
row (:mod:`tastebud.kernels.fm_relational`) and visits the features in the flat design's column
order with the same random draws, so the fitted model equals the one fitted on
:func:`flat_design` up to floating-point rounding — only faster when block rows repeat (setting
``X`` to None leaves only the blocks). ``groups`` has one entry per column of the flat design.
SGD visits examples one by one and trains on the flat rows.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np
import scipy.sparse as sp

from ...exceptions import DataError
from ...kernels import fm as K
from ...kernels import fm_relational as KR
from .design import check_design, int64_indices


class RelationBlock:
    """One relation block: ``index[n]`` is the row of ``X`` (R × p_b, sparse or dense) that example n
    holds (myFM's ``RelationBlock(original_to_block, data)``)."""

    def __init__(self, index: Any, X: Any):
        self.index = index
        self.X = X

    def __repr__(self) -> str:
        return f"RelationBlock(index=<{len(np.asarray(self.index))} rows>, X=<{getattr(self.X, 'shape', '?')}>)"


def _canonical(M: sp.spmatrix, name: str) -> sp.csr_matrix:
    if M.shape[1] == 0:
        return sp.csr_matrix((M.shape[0], 0), dtype=np.float64)
    return check_design(M, name)


class RelationalDesign:
    """A plain part X (n × p₀, possibly no column) and relation blocks, validated; the flat
    design's columns are [X | B_1 | B_2 | …]."""

    def __init__(self, X: Any, blocks: Sequence[RelationBlock], n_features: int | None = None):
        if isinstance(blocks, RelationBlock):
            blocks = [blocks]
        blocks = list(blocks)
        n = None
        if X is not None:
            X = _canonical(X if sp.issparse(X) else check_design(X, "X"), "X")
            n = X.shape[0]
        self.blocks: list[dict[str, Any]] = []
        col = 0 if X is None else X.shape[1]
        for b, blk in enumerate(blocks):
            if not isinstance(blk, RelationBlock):
                raise DataError(f"relations[{b}] must be a RelationBlock, got {type(blk).__name__}")
            idx = np.asarray(blk.index)
            if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
                raise DataError(f"relations[{b}].index must be a 1-D integer array, got dtype {idx.dtype} shape {idx.shape}")
            if n is None:
                n = len(idx)
            if len(idx) != n:
                raise DataError(f"relations[{b}].index has {len(idx)} entries but the design has {n} rows")
            B = blk.X if sp.issparse(blk.X) else sp.csr_matrix(np.asarray(blk.X, dtype=np.float64))
            if B.ndim != 2:
                raise DataError(f"relations[{b}].X must be 2-D")
            B = _canonical(B, f"relations[{b}].X")
            R = B.shape[0]
            if idx.size and (idx.min() < 0 or idx.max() >= R):
                bad = int(idx[(idx < 0) | (idx >= R)][0])
                raise DataError(f"relations[{b}].index holds {bad}, out of range for its {R} block rows")
            idx = idx.astype(np.int64)
            order = np.argsort(idx, kind="stable")
            rptr = np.zeros(R + 1, dtype=np.int64)
            np.cumsum(np.bincount(idx, minlength=R), out=rptr[1:])
            Bc = B.tocsc()
            Bc.sort_indices()
            self.blocks.append({"index": idx, "B": B, "col0": col, "rptr": rptr, "rrows": order.astype(np.int64),
                                "bptr": Bc.indptr.astype(np.int64), "brow": Bc.indices.astype(np.int64),
                                "bval": Bc.data.astype(np.float64)})
            col += B.shape[1]
        if n is None:
            raise DataError("a relational design needs X or at least one relation block")
        if n == 0:
            raise DataError("the design has no rows")
        self.n = n
        self.n_features = col
        if n_features is not None and col != n_features:
            raise DataError(f"X and the relation blocks have {col} columns in all but the model was fitted with "
                            f"{n_features} features")
        p = col
        X0 = sp.csr_matrix((n, 0)) if X is None else X
        # every part as CSR over the global columns (so kernels index w, V directly)
        self.X = int64_indices(sp.csr_matrix((X0.data.astype(np.float64), X0.indices.astype(np.int64),
                                              X0.indptr.astype(np.int64)), shape=(n, p)))
        for blk in self.blocks:
            B = blk["B"]
            blk["Bg"] = int64_indices(sp.csr_matrix((B.data, (B.indices + blk["col0"]).astype(np.int64),
                                                     B.indptr.astype(np.int64)), shape=(B.shape[0], p)))
        self.p0 = X0.shape[1]
        self.shape = (n, p)
        self._buffers: dict[int, tuple[np.ndarray, ...]] = {}

    def plain_csc(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The plain part X in CSC (its p₀ columns): ``cptr, crow, cval``."""
        C = self.X.tocsc()
        C.sort_indices()
        return (C.indptr[:self.p0 + 1].astype(np.int64), C.indices.astype(np.int32 if self.n < 2**31 - 1 else np.int64),
                C.data)

    # ------------------------------------------------------------------ flat view
    def flat(self) -> sp.csr_matrix:
        """The flat design [X | B_1[r_1] | …] as one CSR matrix."""
        parts = [self.X] + [blk["Bg"][blk["index"]] for blk in self.blocks]
        M = parts[0]
        for P in parts[1:]:
            M = M + P
        return check_design(M)

    @property
    def nnz_flat(self) -> int:
        return int(self.X.nnz + sum(np.diff(b["B"].indptr)[b["index"]].sum() for b in self.blocks))

    # ------------------------------------------------------------------ scores
    def scores(self, w0: float, w: np.ndarray, V: np.ndarray, yhat: np.ndarray, Q: np.ndarray) -> None:
        """ŷ of every row into ``yhat`` and q_n = Σ v_i x_{n,i} into ``Q`` (n × k)."""
        K.fm_parts(self.X.indptr, self.X.indices, self.X.data, w, V, yhat, Q)
        yhat += w0
        k = V.shape[1]
        for blk in self.blocks:
            B = blk["Bg"]
            bias, qB = np.empty(B.shape[0]), np.empty((B.shape[0], k))
            K.fm_parts(B.indptr, B.indices, B.data, w, V, bias, qB)
            KR.add_block_scores(blk["index"], bias, qB, yhat, Q)

    def sample_scores(self, samples: Iterator[tuple[float, np.ndarray, np.ndarray]]) -> Iterator[np.ndarray]:
        """ŷ of every row for each parameter set of ``samples`` (the same buffer, refilled)."""
        yhat = np.empty(self.n)
        Q = None
        for w0, w, V in samples:
            if Q is None or Q.shape[1] != V.shape[1]:
                Q = np.empty((self.n, V.shape[1]))
            self.scores(w0, w, V, yhat, Q)
            yield yhat

    # ------------------------------------------------------------------ one sweep
    def sweep(self, cptr, crow, cval, groups, w0, w, V, Q, e, alpha, reg_w0, lam_w, lam_v, mu_w, mu_v,
              use_w0, use_w, sample, gram_min=256, joint=False) -> None:
        """One MCMC/ALS sweep over the flat design's parameters in its order — w₀, X's columns
        (``cptr, crow, cval``: X in CSC), then each block's — with the same draws as the flat sweep."""
        p0 = self.p0
        K.cd_sweep(cptr, crow, cval, groups[:p0], w0, w[:p0], V[:p0], Q, e, alpha, reg_w0, lam_w, lam_v, mu_w, mu_v,
                   use_w0, use_w, sample, gram_min, joint)
        k = V.shape[1]
        for b, blk in enumerate(self.blocks):
            B = blk["Bg"]
            R = B.shape[0]
            if b not in self._buffers:
                self._buffers[b] = (np.zeros(R), np.zeros((R, k)), np.zeros(R, dtype=np.int64), np.zeros(R),
                                    np.zeros((R, k)), np.zeros((R, k, k)), np.zeros((R, k)), np.zeros(R), np.zeros((R, k)))
            bias_old, q_old, cnt, E, M, C, T, bias_new, q_new = self._buffers[b]
            KR.block_parts(B.indptr, B.indices, B.data, w, V, bias_old, q_old)
            KR.block_caches(blk["rptr"], blk["rrows"], Q, e, q_old, cnt, E, M, C, T)
            qW = q_old.copy()
            KR.block_sweep(blk["bptr"], blk["brow"], blk["bval"], blk["col0"], groups, w, V, qW, cnt, E, M, C, T,
                           alpha, lam_w, lam_v, mu_w, mu_v, use_w, sample, joint)
            KR.block_parts(B.indptr, B.indices, B.data, w, V, bias_new, q_new)
            KR.propagate(blk["index"], e, Q, bias_new - bias_old, q_new - q_old, q_old)

    def cache_bytes(self, k: int) -> int:
        """Memory of the per-block-row sums one sweep keeps (dominated by R·k² per block)."""
        return int(sum(b["B"].shape[0] * (k * k + 6 * k + 4) * 8 for b in self.blocks))


def flat_design(X: Any, relations: Sequence[RelationBlock]) -> sp.csr_matrix:
    """The flat design matrix [X | B_1[index_1] | B_2[index_2] | …] of a relational design."""
    return RelationalDesign(X, relations).flat()


__all__ = ["RelationBlock", "RelationalDesign", "flat_design"]
