"""Implicit-feedback ALS kernels (Hu, Koren & Volinsky 2008; CG solver: Takács, Pilászy & Tikk 2011).

One half-step solves, for every row u of a CSR matrix whose values are the *confidences*
``c_ui`` of the observed (preferred, p_ui = 1) entries,

    x_u = (YᵀY + λI + Yᵀ(Cᵤ − I)Y)⁻¹ Yᵀ Cᵤ p(u)

where YᵀY + λI is precomputed once (the trick that makes the half-step O(nnz·k² + n·k³) instead
of O(n·m·k²)). Rows are independent: ``prange`` over rows with static partitioning, so results
do not depend on the thread count. Rows with no entries get x_u = 0 (the exact solution).

``solve_cholesky`` builds A explicitly and solves it exactly (hand-written Cholesky: no BLAS, so
no BLAS threads fight numba's). ``solve_cg`` runs a few conjugate-gradient steps warm-started at
the current x_u, never forming A: A·p = (YᵀY + λI)·p + Σᵢ (cᵤᵢ − 1)(yᵢ·p) yᵢ.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .linalg import cholesky_solve_inplace

_BLOCK = 64  # rows per parallel work unit (static partitioning; results do not depend on it)


# Dot products are the one place that needs reassociation to vectorise: this function alone
# allows it ("reassoc", "contract" — no nnan/ninf/nsz, so NaN/inf propagate as usual). The
# summation order is fixed at compile time, so results stay deterministic and independent of
# the thread count.
@njit(cache=True, fastmath={"reassoc", "contract"})
def _dot(a, b, k):
    """a[:k]·b[:k], accumulated in the arrays' precision."""
    s = a[0] * b[0]
    for f in range(1, k):
        s += a[f] * b[f]
    return s


def gramian(Y: np.ndarray, reg: float) -> np.ndarray:
    """YᵀY + reg·I in float64 (k × k), by BLAS outside any parallel region."""
    G = (Y.T @ Y).astype(np.float64)
    G[np.diag_indices_from(G)] += reg
    return G


@njit(cache=True, fastmath=False)
def solve_row_cholesky(G, Y, idx, conf, out):
    """Exact solution for one row: items ``idx`` with confidences ``conf``; writes ``out``.
    Returns False if the system is singular."""
    k = Y.shape[1]
    A = G.copy()
    b = np.zeros(k, dtype=np.float64)
    for n in range(len(idx)):
        i = idx[n]
        c = np.float64(conf[n])
        w = c - 1.0
        for a in range(k):
            ya = np.float64(Y[i, a])
            b[a] += c * ya
            wa = w * ya
            for bb in range(a + 1):
                A[a, bb] += wa * Y[i, bb]
    # only the lower triangle of A is read by the factorisation (G is symmetric)
    ok = cholesky_solve_inplace(A, b, k)
    for a in range(k):
        out[a] = b[a]
    return ok


@njit(cache=True, fastmath=False, parallel=True)
def solve_cholesky(indptr, indices, conf, X, Y, G):
    """Exact half-step: X[u] ← (G + Yᵀ(Cᵤ−I)Y)⁻¹ YᵀCᵤp(u) for every row u, G = YᵀY + λI
    (from :func:`gramian`). Returns the number of rows whose system was singular (left unchanged)."""
    n = X.shape[0]
    k = X.shape[1]
    bad = np.zeros(n, dtype=np.int64)
    for u in prange(n):
        s, e = indptr[u], indptr[u + 1]
        if s == e:
            for f in range(k):
                X[u, f] = 0.0
            continue
        tmp = np.empty(k, dtype=np.float64)
        if solve_row_cholesky(G, Y, indices[s:e], conf[s:e], tmp):
            for f in range(k):
                X[u, f] = tmp[f]
        else:
            bad[u] = 1
    return bad.sum()


@njit(cache=True, fastmath=False, parallel=True)
def solve_cg(indptr, indices, conf, X, Y, G, cg_steps):
    """Conjugate-gradient half-step (Takács et al. 2011), warm-started at the current X rows,
    ``cg_steps`` iterations per row, in the precision of ``X`` (pass G = YᵀY + λI cast to the
    factors' dtype; ``conf`` in the same dtype)."""
    k = X.shape[1]
    n = X.shape[0]
    n_blocks = (n + _BLOCK - 1) // _BLOCK
    for blk in prange(n_blocks):
        # scratch allocated once per block of rows, not per row
        r = np.empty(k, dtype=X.dtype)
        p = np.empty(k, dtype=X.dtype)
        Ap = np.empty(k, dtype=X.dtype)
        sc = np.empty(2, dtype=X.dtype)  # scalars in the factors' precision (keeps loops single-precision)
        for u in range(blk * _BLOCK, min(n, (blk + 1) * _BLOCK)):
            _cg_row(indptr, indices, conf, X, Y, G, cg_steps, u, r, p, Ap, sc)


@njit(cache=True, fastmath=False, inline="always")
def _cg_row(indptr, indices, conf, X, Y, G, cg_steps, u, r, p, Ap, sc):
    k = X.shape[1]
    s, e = indptr[u], indptr[u + 1]
    if s == e:
        for f in range(k):
            X[u, f] = 0.0
        return
    x = X[u]
    for f in range(k):
        r[f] = 0.0
    # r = b − A x = −(YᵀY + λI) x + Σᵢ (cᵢ − (cᵢ − 1)(yᵢ·x)) yᵢ
    for a in range(k):
        xa = x[a]
        for f in range(k):
            r[f] -= G[a, f] * xa
    for m in range(s, e):
        yi = Y[indices[m]]
        c = conf[m]
        sc[0] = c - (c - 1) * _dot(yi, x, k)
        w = sc[0]
        for f in range(k):
            r[f] += w * yi[f]
    rsold = np.float64(_dot(r, r, k))
    if rsold < 1e-20:
        return
    for f in range(k):
        p[f] = r[f]
    for _ in range(cg_steps):
        # Ap = (YᵀY + λI) p + Σᵢ (cᵢ − 1)(yᵢ·p) yᵢ
        for f in range(k):
            Ap[f] = 0.0
        for a in range(k):
            pa = p[a]
            for f in range(k):
                Ap[f] += G[a, f] * pa
        for m in range(s, e):
            yi = Y[indices[m]]
            sc[0] = (conf[m] - 1) * _dot(yi, p, k)
            w = sc[0]
            for f in range(k):
                Ap[f] += w * yi[f]
        pAp = np.float64(_dot(p, Ap, k))
        if pAp <= 0.0:
            break
        sc[0] = rsold / pAp
        alpha = sc[0]
        for f in range(k):
            x[f] += alpha * p[f]
            r[f] -= alpha * Ap[f]
        rsnew = np.float64(_dot(r, r, k))
        if rsnew < 1e-20:
            break
        sc[1] = rsnew / rsold
        beta = sc[1]
        for f in range(k):
            p[f] = r[f] + beta * p[f]
        rsold = rsnew


@njit(cache=True, fastmath=False, parallel=True)
def implicit_loss(indptr, indices, conf, X, Y, G, reg):
    """Σᵤᵢ cᵤᵢ (pᵤᵢ − xᵤ·yᵢ)² + λ(‖X‖² + ‖Y‖²) over ALL pairs (observed c from ``conf``, others c = 1, p = 0),
    computed with the same Gramian trick (G = YᵀY): Σᵤ xᵤᵀ G xᵤ + Σ_observed [c(1 − s)² − s²]."""
    n = X.shape[0]
    k = X.shape[1]
    per = np.zeros(n, dtype=np.float64)
    for u in prange(n):
        x = X[u]
        t = 0.0
        for a in range(k):
            ga = 0.0
            for b in range(k):
                ga += G[a, b] * x[b]
            t += x[a] * ga
        for m in range(indptr[u], indptr[u + 1]):
            sc = 0.0
            for f in range(k):
                sc += np.float64(x[f]) * Y[indices[m], f]
            c = np.float64(conf[m])
            t += c * (1.0 - sc) ** 2 - sc * sc
        nx = 0.0
        for f in range(k):
            nx += np.float64(x[f]) * x[f]
        per[u] = t + reg * nx
    ny = 0.0
    for i in range(Y.shape[0]):
        for f in range(k):
            ny += np.float64(Y[i, f]) * Y[i, f]
    return per.sum() + reg * ny
