"""Explicit ALS half-step with weighted-λ regularisation (Zhou, Wilkinson, Schreiber & Pan,
"Large-scale parallel collaborative filtering for the Netflix prize", AAIM 2008).

For every row r (a user, or an item on the transposed matrix) with observed entries J(r), given
the fixed factors yⱼ of the other side, solve in closed form::

    x_r = argmin_x Σⱼ∈J(r) (t_rj − x·ỹⱼ)² + λ·|J(r)|·‖x‖²
        = (Σⱼ ỹⱼ ỹⱼᵀ + λ |J(r)| I)⁻¹ Σⱼ t_rj ỹⱼ

Without biases ỹⱼ = yⱼ, t_rj = r_rj − offset. With biases the unknown is [x_r; b_r] and
ỹⱼ = [yⱼ; 1], t_rj = r_rj − μ − bⱼ (the other side's bias), so one solve gives factors and bias.
Rows are independent: the loop is a ``prange`` over static chunks of rows, so the result does
not depend on the thread count. Rows without entries get zeros. Each system is solved by a
Cholesky factorisation written out here (no LAPACK call inside the parallel region).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .linalg import cholesky_solve_inplace


@njit(cache=True, fastmath=False, parallel=True)
def als_half_step(indptr, indices, data, Y, ybias, offset, reg, biased, X, xbias, n_chunks):
    """Solve every row of ``X`` (and ``xbias`` when ``biased``) given ``Y``/``ybias``.

    ``data`` are the ratings; the target is ``data − offset − ybias[j]`` (biased) or
    ``data − offset`` (unbiased). Writes X, xbias in place and returns nothing.
    """
    m = indptr.shape[0] - 1
    k = Y.shape[1]
    d = k + 1 if biased else k
    for c in prange(n_chunks):
        A = np.empty((d, d))
        b = np.empty(d)
        yt = np.empty(d)
        for r in range(c * m // n_chunks, (c + 1) * m // n_chunks):
            s, e = indptr[r], indptr[r + 1]
            if s == e:
                for f in range(k):
                    X[r, f] = 0.0
                if biased:
                    xbias[r] = 0.0
                continue
            for p in range(d):
                b[p] = 0.0
                for q in range(d):
                    A[p, q] = 0.0
            for t in range(s, e):
                j = indices[t]
                for f in range(k):
                    yt[f] = Y[j, f]
                tgt = data[t] - offset
                if biased:
                    yt[k] = 1.0
                    tgt -= ybias[j]
                for p in range(d):
                    yp = yt[p]
                    b[p] += tgt * yp
                    for q in range(p + 1):
                        A[p, q] += yp * yt[q]
            lam = reg * (e - s)
            for p in range(d):
                A[p, p] += lam
                for q in range(p + 1, d):
                    A[p, q] = A[q, p]
            if not cholesky_solve_inplace(A, b, d):  # cannot happen: reg > 0 makes A positive definite
                b[:d] = 0.0
            for f in range(k):
                X[r, f] = b[f]
            if biased:
                xbias[r] = b[k]


@njit(cache=True, fastmath=False, parallel=True)
def sse_ratings(indptr, indices, data, P, Q, bu, bi, offset, biased, n_chunks):
    """Σ (r − r̂)² over the observed ratings (r̂ = offset [+ bᵤ + bᵢ] + pᵤ·qᵢ), parallel over users."""
    m = indptr.shape[0] - 1
    k = P.shape[1]
    out = np.zeros(n_chunks)
    for c in prange(n_chunks):
        s_ = 0.0
        for u in range(c * m // n_chunks, (c + 1) * m // n_chunks):
            for t in range(indptr[u], indptr[u + 1]):
                i = indices[t]
                est = offset
                if biased:
                    est += bu[u] + bi[i]
                for f in range(k):
                    est += P[u, f] * Q[i, f]
                err = data[t] - est
                s_ += err * err
        out[c] = s_
    return out.sum()
