"""numba kernels for factorization machines on relational designs (Rendle, "Scaling factorization
machines to relational data", VLDB 2013; myFM's ``RelationBlock``).

A relational design is a plain part X (n × p₀) and blocks B_b (R_b × p_b) with an index r_b(n): row
n of the flat design is [X_n | B_1[r_1(n)] | B_2[r_2(n)] | …]. When many rows share a block row (a
user's features repeat in all of the user's ratings), the Gibbs/ALS statistics of a block feature
can be summed per block row instead of per training row.

For feature j of block B with value x in block row r, and q_n = Σ_i v_i x_{n,i} split as
q_n = qB_r + qR_n (the block's share and the rest), the "features" of its k+1 coordinates are
h_0 = x and h_f = x(u_f + qR_{n,f}) with u_f = qB_{r,f} − v_{j,f}x. So with per-block-row sums over
the rows n of r — c_r = |r|, E_r = Σ e_n, M_r = Σ qR_n, C_r = Σ qR_n qR_nᵀ, T_r = Σ e_n qR_n —

    H_00 = Σ_r x² c_r,  H_0f = Σ_r x²(c_r u_f + M_rf),
    H_fg = Σ_r x²(c_r u_f u_g + u_f M_rg + u_g M_rf + C_rfg),
    s_0 = Σ_r x E_r,    s_f = Σ_r x(u_f E_r + T_rf),

which are exactly the sums the flat sweep forms over the feature's column; the update of the
feature (``joint_solve``/``sequential_solve``, same order and random draws as the flat sweep) then
moves E_r, T_r and qB_r in O(k²) per block row. After the block, e and Q are brought up to date row by
row from the change of the block's parts. Cost per block and sweep: O(n k² + nnz(B) k²) instead of
O(nnz of the block's columns in the flat design · k²).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .fm import joint_solve, row_parts, sequential_solve


@njit(cache=True, fastmath=False)
def block_parts(indptr, indices, data, w, V, bias, Q):  # pragma: no cover - compiled
    """``fm_parts`` in one thread (the sweep's kernels are serial: a parallel region costs more than
    these passes on a loaded machine): bias[r] = Σ wᵢxᵢ + pairs within row r, Q[r] = Σ vᵢxᵢ."""
    for r in range(len(indptr) - 1):
        a0 = indptr[r]
        a1 = indptr[r + 1]
        bias[r] = row_parts(indices[a0:a1], data[a0:a1], w, V, Q[r])


@njit(cache=True, fastmath=False)
def block_caches(rptr, rrows, Q, e, qB, cnt, E, M, C, T):  # pragma: no cover - compiled
    """Per block row r (its training rows ``rrows[rptr[r]:rptr[r+1]]``): c_r, E_r, M_r, C_r, T_r
    with qR_n = Q_n − qB_r (see the module docstring)."""
    R = len(rptr) - 1
    k = Q.shape[1]
    for r in range(R):
        E[r] = 0.0
        for f in range(k):
            M[r, f] = 0.0
            T[r, f] = 0.0
            for g in range(k):
                C[r, f, g] = 0.0
        cnt[r] = rptr[r + 1] - rptr[r]
        for p in range(rptr[r], rptr[r + 1]):
            n = rrows[p]
            en = e[n]
            E[r] += en
            for f in range(k):
                qf = Q[n, f] - qB[r, f]
                M[r, f] += qf
                T[r, f] += en * qf
                for g in range(f + 1):
                    C[r, f, g] += qf * (Q[n, g] - qB[r, g])
        for f in range(k):
            for g in range(f):
                C[r, g, f] = C[r, f, g]


@njit(cache=True, fastmath=False)
def block_sweep(bptr, brow, bval, col0, groups, w, V, qB, cnt, E, M, C, T, alpha, lam_w, lam_v, mu_w, mu_v,
                use_w, sample, joint):  # pragma: no cover - compiled
    """Update every feature of one block in column order (global index ``col0 + j``): the Gram of
    its coordinates from the block-row sums, ``joint_solve`` (``joint``) or ``sequential_solve``,
    then the sums E, T and the block's share qB of the rows it appears in. The block's columns in
    CSC over its rows: ``bptr, brow, bval``."""
    p_b = len(bptr) - 1
    k = V.shape[1]
    m = k + 1
    s = np.zeros(m)
    H = np.zeros((m, m))
    d = np.zeros(m)
    buf = np.zeros((3, m, m))
    u = np.zeros(k)
    z = np.zeros(k)
    for jl in range(p_b):
        j = col0 + jl
        gr = groups[j]
        for a in range(m):
            s[a] = 0.0
            for b in range(m):
                H[a, b] = 0.0
        for p in range(bptr[jl], bptr[jl + 1]):
            r = brow[p]
            x = bval[p]
            x2 = x * x
            c = cnt[r]
            Er = E[r]
            for f in range(k):
                u[f] = qB[r, f] - V[j, f] * x
                z[f] = c * u[f] + M[r, f]  # c u_f u_g + u_f M_g + u_g M_f = u_f z_g + u_g M_f
            H[0, 0] += x2 * c
            s[0] += x * Er
            for f in range(k):
                uf = u[f]
                Mf = M[r, f]
                H[0, f + 1] += x2 * z[f]
                s[f + 1] += x * (uf * Er + T[r, f])
                Hf = H[f + 1]
                Cf = C[r, f]
                for g in range(f + 1):
                    Hf[g + 1] += x2 * (uf * z[g] + u[g] * Mf + Cf[g])
        for f in range(k):
            H[f + 1, 0] = H[0, f + 1]
            for g in range(f):
                H[g + 1, f + 1] = H[f + 1, g + 1]
        if joint:
            changed = joint_solve(j, w, V, s, H, d, buf, alpha, lam_w[gr], mu_w[gr], lam_v[gr], mu_v[gr], use_w, sample)
        else:
            changed = sequential_solve(j, w, V, s, H, d, alpha, lam_w[gr], mu_w[gr], lam_v[gr], mu_v[gr], use_w, sample)
        if not changed:
            continue
        # Δe_n = −(d_0 x + Σ_f d_f x (u_f + qR_nf)) summed over the rows of each block row
        # (u_f = qB_rf − v_jf x is the same with the old and the new v_j and qB_r)
        for p in range(bptr[jl], bptr[jl + 1]):
            r = brow[p]
            x = bval[p]
            c = cnt[r]
            du = 0.0  # Σ_f d_f u_f
            dM = 0.0  # Σ_f d_f M_rf
            for f in range(k):
                u[f] = qB[r, f] - (V[j, f] - d[f + 1]) * x
                du += d[f + 1] * u[f]
                dM += d[f + 1] * M[r, f]
            E[r] -= x * (d[0] * c + du * c + dM)
            for g in range(k):
                dC = 0.0
                for f in range(k):
                    dC += d[f + 1] * C[r, f, g]
                T[r, g] -= x * ((d[0] + du) * M[r, g] + dC)
            for f in range(k):
                qB[r, f] += d[f + 1] * x


@njit(cache=True, fastmath=False)
def propagate(ridx, e, Q, dbias, dq, qB_old):  # pragma: no cover - compiled
    """After a block's features moved: for each row n (block row r = ridx[n]),
    ŷ_n changes by Δbias_r + Σ_f Δq_{r,f}·qR_{n,f} (qR_n = Q_n − qB_old_r): e_n −= that, Q_n += Δq_r."""
    k = Q.shape[1]
    for n in range(len(ridx)):
        r = ridx[n]
        dy = dbias[r]
        for f in range(k):
            dy += dq[r, f] * (Q[n, f] - qB_old[r, f])
            Q[n, f] += dq[r, f]
        e[n] -= dy


@njit(cache=True, parallel=True, fastmath=False)
def add_block_scores(ridx, bias, qB, yhat, Q):  # pragma: no cover - compiled
    """Add a block's share to the scores: ŷ_n += bias_r + ⟨Q_n, qB_r⟩ (Q_n: the q of the parts
    added so far), then Q_n += qB_r. Starting from the plain part (ŷ = w₀ + its bias, Q = its q),
    adding every block gives the flat design's ŷ and q."""
    k = Q.shape[1]
    for n in prange(len(ridx)):
        r = ridx[n]
        s = bias[r]
        for f in range(k):
            s += Q[n, f] * qB[r, f]
            Q[n, f] += qB[r, f]
        yhat[n] += s
