"""numba kernels for factorization machines trained with BPR (Rendle, Freudenthaler, Gantner &
Schmidt-Thieme, UAI 2009; Rendle, "Factorization machines with libFM", TIST 2012).

A context row c (a user, a (user, item) post, a (user, previous basket) pair…) and a candidate row
z (an item, a tag…) live in one feature space with disjoint columns; the FM score of their
concatenation splits as

    ŷ(c ⊕ z) = w₀ + b(c) + b(z) + ⟨q(c), q(z)⟩,   b(r) = Σ w_a x_a + Σ_{a<b in r} ⟨v_a, v_b⟩ x_a x_b,
    q(r) = Σ_a v_a x_a.

For a positive i and a sampled negative j of context c, x_cij = ŷ(c ⊕ i) − ŷ(c ⊕ j) =
b(i) − b(j) + ⟨q(c), q(i) − q(j)⟩ (w₀ and the context's own terms cancel), and the loss is
ℓ = −ln σ(x_cij) + L2 on the parameters the sample touches. With g = ∂ℓ/∂x = −σ(−x):

    ∂x/∂w_b = x_b (b in i), −x_b (b in j);
    ∂x/∂v_b = x_b (q(c) + q(i) − v_b x_b) (b in i),  −x_b (q(c) + q(j) − v_b x_b) (b in j);
    ∂x/∂v_a = x_a (q(i) − q(j))  (a in c).

Sampling as in ``kernels.bpr``: an epoch draws nnz(positives) samples in a fixed number of blocks,
each with its own seeded stream (so the samples never depend on the thread count); blocks run in
parallel without locks (Hogwild); one thread is exactly reproducible.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .bpr import draw_triple, stream_seed
from .fm import row_parts


@njit(cache=True, fastmath=False)
def pair_gradient(c_ind, c_dat, i_ind, i_dat, j_ind, j_dat, w, V, qc, qi, qj, gwi, gVi, gwj, gVj, gVc):  # pragma: no cover - compiled
    """x_cij and the gradient of ℓ = −ln σ(x_cij) (no regularisation): ∂ℓ/∂w and ∂ℓ/∂v of the
    positions of i (``gwi``, ``gVi``), of j (``gwj``, ``gVj``) and ∂ℓ/∂v of the context (``gVc``).
    A feature present in both i and j receives both of its entries."""
    k = V.shape[1]
    row_parts(c_ind, c_dat, w, V, qc)
    x = row_parts(i_ind, i_dat, w, V, qi) - row_parts(j_ind, j_dat, w, V, qj)
    for f in range(k):
        x += qc[f] * (qi[f] - qj[f])
    g = -1.0 / (1.0 + np.exp(x))  # −σ(−x)
    for p in range(len(i_ind)):
        xb = i_dat[p]
        b = i_ind[p]
        gwi[p] = g * xb
        for f in range(k):
            gVi[p, f] = g * xb * (qc[f] + qi[f] - V[b, f] * xb)
    for p in range(len(j_ind)):
        xb = j_dat[p]
        b = j_ind[p]
        gwj[p] = -g * xb
        for f in range(k):
            gVj[p, f] = -g * xb * (qc[f] + qj[f] - V[b, f] * xb)
    for p in range(len(c_ind)):
        xa = c_dat[p]
        for f in range(k):
            gVc[p, f] = g * xa * (qi[f] - qj[f])
    return x


@njit(cache=True, fastmath=False)
def _max_row(indptr):  # pragma: no cover - compiled
    m = 0
    for r in range(len(indptr) - 1):
        m = max(m, indptr[r + 1] - indptr[r])
    return m


@njit(cache=True, fastmath=False, parallel=True)
def bpr_fm_epoch(c_ptr, c_ind, c_dat, z_ptr, z_ind, z_dat, p_ptr, p_ind, p_rows, w, V, lr, reg_w, reg_v,
                 seed, epoch, n_blocks, verify_negative):  # pragma: no cover - compiled
    """One epoch of nnz(positives) BPR samples (see the module docstring): contexts in CSR
    (``c_*``), candidates in CSR (``z_*``), positives (context × candidate, sorted indices) in
    CSR (``p_ptr``, ``p_ind``) with ``p_rows`` the context of each stored positive. Returns
    (samples with x_cij > 0, samples skipped because the context has no negative)."""
    nnz = len(p_ind)
    n_cand = len(z_ptr) - 1
    k = V.shape[1]
    mc = _max_row(c_ptr)
    mz = _max_row(z_ptr)
    correct = np.zeros(n_blocks, dtype=np.int64)
    skipped = np.zeros(n_blocks, dtype=np.int64)
    for blk in prange(n_blocks):
        qc = np.zeros(k)
        qi = np.zeros(k)
        qj = np.zeros(k)
        gwi = np.zeros(mz)
        gwj = np.zeros(mz)
        gVi = np.zeros((mz, k))
        gVj = np.zeros((mz, k))
        gVc = np.zeros((mc, k))
        lo = (nnz * blk) // n_blocks
        hi = (nnz * (blk + 1)) // n_blocks
        state = stream_seed(seed, epoch, blk)
        for _ in range(lo, hi):
            state, c, i, j = draw_triple(state, p_rows, p_ptr, p_ind, n_cand, verify_negative)
            if j < 0:
                skipped[blk] += 1
                continue
            ci = c_ind[c_ptr[c]:c_ptr[c + 1]]
            cd = c_dat[c_ptr[c]:c_ptr[c + 1]]
            ii = z_ind[z_ptr[i]:z_ptr[i + 1]]
            idd = z_dat[z_ptr[i]:z_ptr[i + 1]]
            ji = z_ind[z_ptr[j]:z_ptr[j + 1]]
            jd = z_dat[z_ptr[j]:z_ptr[j + 1]]
            x = pair_gradient(ci, cd, ii, idd, ji, jd, w, V, qc, qi, qj, gwi, gVi, gwj, gVj, gVc)
            if x > 0:
                correct[blk] += 1
            for p in range(len(ii)):
                b = ii[p]
                w[b] -= lr * (gwi[p] + reg_w * w[b])
                for f in range(k):
                    V[b, f] -= lr * (gVi[p, f] + reg_v * V[b, f])
            for p in range(len(ji)):
                b = ji[p]
                w[b] -= lr * (gwj[p] + reg_w * w[b])
                for f in range(k):
                    V[b, f] -= lr * (gVj[p, f] + reg_v * V[b, f])
            for p in range(len(ci)):
                a = ci[p]
                for f in range(k):
                    V[a, f] -= lr * (gVc[p, f] + reg_v * V[a, f])
    return correct.sum(), skipped.sum()
