"""numba kernels for factorization machines (Rendle, ICDM 2010).

Model:  ŷ(x) = w₀ + Σᵢ wᵢxᵢ + ½ Σ_f [(Σᵢ v_{i,f} xᵢ)² − Σᵢ v_{i,f}² xᵢ²]     (O(k·nnz(x)))

* ``fm_predict`` / ``fm_q``: rows in CSR (``indptr, indices, data``).
* ``sgd_epoch``: one pass of SGD over the rows (squared loss or logistic loss), per-group L2,
  optional AdaGrad steps; the per-row gradient is ``row_gradient`` (checked numerically in tests).
* ``cd_sweep``: one sweep of coordinate descent (ALS, Rendle et al. SIGIR 2011) or of Gibbs
  sampling (MCMC, Freudenthaler et al. 2011) over w₀, all wⱼ and all v_{j,f}, on the columns in
  CSC (``cptr, crow, cval``). As in libFM it keeps the residuals ``e = target − ŷ`` and the
  caches ``Q[n, f] = Σᵢ v_{i,f} x_{n,i}`` up to date, so a sweep costs O(k·nnz).
  Each coordinate θ with "feature" h_n = ∂ŷ_n/∂θ has the closed-form conditional

      precision = α Σ h² + λ,   mean = (α Σ (e_n + θ h_n) h_n + λ μ) / precision

  ALS sets θ to the mean (the exact minimiser of the regularised squared error in θ, so no
  update can increase the objective); MCMC draws θ ~ N(mean, 1/precision).

No I/O, no ids: only contiguous integer indices.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange


@njit(cache=True, parallel=True, fastmath=False)
def fm_predict(indptr, indices, data, w0, w, V, out):  # pragma: no cover - compiled
    """out[r] = ŷ(x_r) for every CSR row r (the O(k·nnz) identity)."""
    n = len(indptr) - 1
    k = V.shape[1]
    for r in prange(n):
        s = w0
        a0 = indptr[r]
        a1 = indptr[r + 1]
        for p in range(a0, a1):
            s += w[indices[p]] * data[p]
        for f in range(k):
            a = 0.0
            b = 0.0
            for p in range(a0, a1):
                t = V[indices[p], f] * data[p]
                a += t
                b += t * t
            s += 0.5 * (a * a - b)
        out[r] = s


@njit(cache=True, parallel=True, fastmath=False)
def fm_q(indptr, indices, data, V, Q):  # pragma: no cover - compiled
    """Q[r, f] = Σᵢ v_{i,f} x_{r,i}  (Q has shape (n, k))."""
    n = len(indptr) - 1
    k = V.shape[1]
    for r in prange(n):
        for f in range(k):
            a = 0.0
            for p in range(indptr[r], indptr[r + 1]):
                a += V[indices[p], f] * data[p]
            Q[r, f] = a


@njit(cache=True, fastmath=False)
def row_parts(ind, dat, w, V, q):  # pragma: no cover - compiled
    """One sparse row (``ind``, ``dat``): returns b = Σ wᵢxᵢ + ½Σ_f[(Σ v x)² − Σ v²x²] and writes
    q[f] = Σ v_{i,f} xᵢ."""
    k = V.shape[1]
    s = 0.0
    for p in range(len(ind)):
        s += w[ind[p]] * dat[p]
    for f in range(k):
        a = 0.0
        b = 0.0
        for p in range(len(ind)):
            t = V[ind[p], f] * dat[p]
            a += t
            b += t * t
        q[f] = a
        s += 0.5 * (a * a - b)
    return s


@njit(cache=True, parallel=True, fastmath=False)
def fm_parts(indptr, indices, data, w, V, bias, Q):  # pragma: no cover - compiled
    """For a block of features (e.g. the user block): bias[r] = Σ wᵢxᵢ + ½Σ_f[(Σ v x)² − Σ v²x²]
    and Q[r, f] = Σ v_{i,f} xᵢ. Then ŷ(x_u ⊕ x_i) = w₀ + bias_u + bias_i + ⟨Q_u, Q_i⟩."""
    for r in prange(len(indptr) - 1):
        a0 = indptr[r]
        a1 = indptr[r + 1]
        bias[r] = row_parts(indices[a0:a1], data[a0:a1], w, V, Q[r])


@njit(cache=True, fastmath=False)
def loss_derivative(s, y, classification):  # pragma: no cover - compiled
    """∂ℓ/∂ŷ of ½(ŷ − y)² (regression) or of log(1 + exp(−yŷ)), y ∈ {−1, 1} (classification)."""
    if classification:
        z = y * s
        if z > 0:
            ez = np.exp(-z)
            return -y * ez / (1.0 + ez)
        return -y / (1.0 + np.exp(z))
    return s - y


# ---------------------------------------------------------------------------------- SGD
@njit(cache=True, fastmath=False)
def row_gradient(indices, data, y, classification, w0, w, V, q, gw, gV):  # pragma: no cover - compiled
    """Loss gradient of one row (indices/data) with label y.

    Loss: ½(ŷ − y)² (regression) or log(1 + exp(−yŷ)) with y ∈ {−1, 1} (classification).
    Writes ∂ℓ/∂w_j for the row's features into ``gw[p]`` (position p of the row), ∂ℓ/∂v_{j,f}
    into ``gV[p, f]``, uses ``q`` (length k) as scratch; returns (∂ℓ/∂w₀, ŷ).
    Regularisation is not included (the caller adds it).
    """
    k = V.shape[1]
    nz = len(indices)
    s = w0 + row_parts(indices, data, w, V, q)
    dl = loss_derivative(s, y, classification)
    for p in range(nz):
        x = data[p]
        j = indices[p]
        gw[p] = dl * x
        for f in range(k):
            gV[p, f] = dl * x * (q[f] - V[j, f] * x)
    return dl, s


@njit(cache=True, fastmath=False)
def sgd_epoch(indptr, indices, data, y, order, groups, classification, w0, w, V,
              lr, reg_w0, lam_w, lam_v, use_w0, use_w, adagrad, G0, Gw, GV,
              y_min, y_max):  # pragma: no cover - compiled
    """One SGD pass over rows in ``order``. ``w0`` is a length-1 array. Per-group L2:
    λ_w[groups[j]], λ_v[groups[j]]. AdaGrad: step lr/√(G+ε) with G the sum of squared gradients.
    Returns the mean training loss of the pass (before each row's update)."""
    k = V.shape[1]
    maxnz = 0
    for r in range(len(indptr) - 1):
        if indptr[r + 1] - indptr[r] > maxnz:
            maxnz = indptr[r + 1] - indptr[r]
    q = np.zeros(k)
    gw = np.zeros(maxnz)
    gV = np.zeros((maxnz, k))
    eps = 1e-8
    total = 0.0
    for t in range(len(order)):
        r = order[t]
        a0 = indptr[r]
        a1 = indptr[r + 1]
        ind = indices[a0:a1]
        dat = data[a0:a1]
        dl, s = row_gradient(ind, dat, y[r], classification, w0[0], w, V, q, gw, gV)
        if classification:
            z = y[r] * s
            total += np.log1p(np.exp(-z)) if z > -30 else -z
        else:
            # libFM clips predictions to the training range; the gradient uses the clipped value
            sc = min(max(s, y_min), y_max)
            dl = sc - y[r]
            for p in range(a1 - a0):
                x = dat[p]
                j = ind[p]
                gw[p] = dl * x
                for f in range(k):
                    gV[p, f] = dl * x * (q[f] - V[j, f] * x)
            total += 0.5 * (s - y[r]) ** 2
        if use_w0:
            g = dl + reg_w0 * w0[0]
            if adagrad:
                G0[0] += g * g
                w0[0] -= lr * g / np.sqrt(G0[0] + eps)
            else:
                w0[0] -= lr * g
        for p in range(a1 - a0):
            j = ind[p]
            gr = groups[j]
            if use_w:
                g = gw[p] + lam_w[gr] * w[j]
                if adagrad:
                    Gw[j] += g * g
                    w[j] -= lr * g / np.sqrt(Gw[j] + eps)
                else:
                    w[j] -= lr * g
            for f in range(k):
                g = gV[p, f] + lam_v[gr] * V[j, f]
                if adagrad:
                    GV[j, f] += g * g
                    V[j, f] -= lr * g / np.sqrt(GV[j, f] + eps)
                else:
                    V[j, f] -= lr * g
    return total / max(len(order), 1)


# ---------------------------------------------------------------------- ALS / MCMC
@njit(cache=True, fastmath=False)
def seed_numba(seed):  # pragma: no cover - compiled
    np.random.seed(seed)


@njit(cache=True, fastmath=False)
def update_w0(w0, e, alpha, reg_w0, sample):  # pragma: no cover - compiled
    """Coordinate update of the global bias (h_n = 1); returns the new value, updates e."""
    n = len(e)
    se = 0.0
    for r in range(n):
        se += e[r]
    prec = alpha * n + reg_w0
    mean = alpha * (w0 * n + se) / prec
    new = mean
    if sample:
        new += np.random.standard_normal() / np.sqrt(prec)
    d = new - w0
    for r in range(n):
        e[r] -= d
    return new


@njit(cache=True, fastmath=False)
def update_w(j, cptr, crow, cval, w, e, alpha, lam, mu, sample):  # pragma: no cover - compiled
    """Coordinate update of w_j (h_n = x_{n,j}); updates w[j] and e in place."""
    s2 = 0.0
    se = 0.0
    for p in range(cptr[j], cptr[j + 1]):
        h = cval[p]
        s2 += h * h
        se += e[crow[p]] * h
    prec = alpha * s2 + lam
    if prec <= 0.0:
        return
    mean = (alpha * (w[j] * s2 + se) + lam * mu) / prec
    new = mean
    if sample:
        new += np.random.standard_normal() / np.sqrt(prec)
    d = new - w[j]
    if d != 0.0:
        for p in range(cptr[j], cptr[j + 1]):
            e[crow[p]] -= d * cval[p]
    w[j] = new


@njit(cache=True, fastmath=False)
def update_v(j, f, cptr, crow, cval, V, Q, e, alpha, lam, mu, sample):  # pragma: no cover - compiled
    """Coordinate update of v_{j,f} (h_n = x_{n,j}(q_{n,f} − v_{j,f}x_{n,j})); updates V, Q, e."""
    vjf = V[j, f]
    s2 = 0.0
    se = 0.0
    for p in range(cptr[j], cptr[j + 1]):
        r = crow[p]
        x = cval[p]
        h = x * (Q[r, f] - vjf * x)
        s2 += h * h
        se += e[r] * h
    prec = alpha * s2 + lam
    if prec <= 0.0:
        return
    mean = (alpha * (vjf * s2 + se) + lam * mu) / prec
    new = mean
    if sample:
        new += np.random.standard_normal() / np.sqrt(prec)
    d = new - vjf
    if d != 0.0:
        for p in range(cptr[j], cptr[j + 1]):
            r = crow[p]
            x = cval[p]
            h = x * (Q[r, f] - vjf * x)
            e[r] -= d * h
            Q[r, f] += d * x
    V[j, f] = new


GEMM_MIN = 8  # gathered chunks with at least this many rows use one BLAS product for their Gram


@njit(cache=True, fastmath=False)
def _feature_gram(j, cptr, crow, cval, V, Q, e, s, H, Hm, Gc):  # pragma: no cover - compiled
    """Gram of feature j's coordinates over its column: with h_0 = x, h_f = x(q_f − v_{j,f}x) per
    row, s_a = Σ e·h_a and H_ab = Σ h_a h_b (full symmetric (k+1)×(k+1)).

    The rows are gathered in chunks of ``len(Hm)`` into ``Hm`` (row t = h_0..h_k, e_r); a chunk of
    ``GEMM_MIN`` rows or more adds ``Hmᵀ Hm`` (one BLAS product gives H and s together; ``Gc`` is
    its (k+2)×(k+2) scratch), a shorter one is summed in a loop. Returns True when the whole column
    fit into one chunk: ``Hm`` then still holds every row's h for the update pass."""
    k = V.shape[1]
    m = k + 1
    B = Hm.shape[0]
    for a in range(m):
        s[a] = 0.0
        for b in range(m):
            H[a, b] = 0.0
    vj = V[j]
    p0 = cptr[j]
    p1 = cptr[j + 1]
    while p0 < p1:
        c = min(B, p1 - p0)
        for t in range(c):
            p = p0 + t
            r = crow[p]
            x = cval[p]
            qr = Q[r]
            row = Hm[t]
            row[0] = x
            for f in range(k):
                row[f + 1] = x * (qr[f] - vj[f] * x)
            row[m] = e[r]
        if c >= GEMM_MIN:
            Hc = Hm[:c]
            Gc[:, :] = np.dot(Hc.T, Hc)
            for a in range(m):
                s[a] += Gc[m, a]
                for b in range(m):
                    H[a, b] += Gc[a, b]
        else:
            for t in range(c):
                row = Hm[t]
                er = row[m]
                for a in range(m):
                    ha = row[a]
                    s[a] += er * ha
                    Ha = H[a]
                    for b in range(m):
                        Ha[b] += ha * row[b]
        p0 += c
    return cptr[j + 1] - cptr[j] <= B


@njit(cache=True, fastmath=False)
def _apply_feature_change(j, cptr, crow, cval, V, Q, e, d, Hm, stored):  # pragma: no cover - compiled
    """After feature j's parameters moved by d (d_0 on w_j, d_{f+1} on v_{j,f}; V already holds the
    new values): e_r −= Σ_a d_a h_a (h with the old v_j and the not yet updated Q) and
    Q[r, f] += d_{f+1} x. ``stored``: ``Hm`` holds the column's h (from ``_feature_gram``)."""
    k = V.shape[1]
    d0 = d[0]
    if stored:
        for t in range(cptr[j + 1] - cptr[j]):
            p = cptr[j] + t
            r = crow[p]
            x = cval[p]
            qr = Q[r]
            row = Hm[t]
            de = d0 * x
            for f in range(k):
                de += d[f + 1] * row[f + 1]
                qr[f] += d[f + 1] * x
            e[r] -= de
        return
    vj = V[j]
    for p in range(cptr[j], cptr[j + 1]):
        r = crow[p]
        x = cval[p]
        qr = Q[r]
        de = d0 * x
        for f in range(k):
            df = d[f + 1]
            de += df * x * (qr[f] - (vj[f] - df) * x)
            qr[f] += df * x
        e[r] -= de


def feature_buffers(k: int, block_rows: int = 512):
    """Scratch buffers for ``update_feature`` / ``update_feature_joint`` at rank k:
    (s, H, d, buf, Hm, Gc)."""
    m = k + 1
    return (np.zeros(m), np.zeros((m, m)), np.zeros(m), np.zeros((3, m, m)),
            np.zeros((block_rows, m + 1)), np.zeros((m + 1, m + 1)))


@njit(cache=True, fastmath=False)
def sequential_solve(j, w, V, s, H, d, alpha, lam_w, mu_w, lam_v, mu_v, use_w, sample):  # pragma: no cover - compiled
    """Coordinates w_j, v_{j,1..k} of feature j in turn from the Gram of their "features"
    (s_a = Σ e h_a, H_ab = Σ h_a h_b): after updating coordinate a by d_a, the residual correlation
    of coordinate b is s_b − Σ_{a<b} d_a H_ab. Sets w[j], V[j] and the changes d; returns whether
    anything changed."""
    k = V.shape[1]
    m = k + 1
    a0 = 0 if use_w else 1
    any_change = False
    d[0] = 0.0
    for a in range(a0, m):
        se = s[a]
        for b in range(a0, a):
            se -= d[b] * H[a, b]
        s2 = H[a, a]
        if a == 0:
            theta = w[j]
            lam = lam_w
            mu = mu_w
        else:
            theta = V[j, a - 1]
            lam = lam_v[a - 1]
            mu = mu_v[a - 1]
        prec = alpha * s2 + lam
        if prec <= 0.0:
            d[a] = 0.0
            continue
        new = (alpha * (theta * s2 + se) + lam * mu) / prec
        if sample:
            new += np.random.standard_normal() / np.sqrt(prec)
        d[a] = new - theta
        if d[a] != 0.0:
            any_change = True
        if a == 0:
            w[j] = new
        else:
            V[j, a - 1] = new
    return any_change


@njit(cache=True, fastmath=False)
def update_feature(j, cptr, crow, cval, w, V, Q, e, alpha, lam_w, mu_w, lam_v, mu_v, use_w, sample,
                   s, H, d, buf, Hm, Gc):  # pragma: no cover - compiled
    """All coordinates of feature j in turn — w_j, then v_{j,1}, …, v_{j,k} — in two passes over
    the column instead of 2(k+1).

    The "features" h_a of these coordinates (h_0 = x, h_f = x(q_f − v_{j,f}x)) do not change while
    feature j is updated, so one pass collects s_a = Σ e h_a and the Gram matrix H_ab = Σ h_a h_b
    (``sequential_solve`` then updates the coordinates). The result equals ``update_w`` followed by
    ``update_v`` for f = 1..k (same order, same random draws) up to floating-point rounding; a
    second pass applies all changes to e and Q. Scratch buffers: ``feature_buffers(k)``.
    """
    stored = _feature_gram(j, cptr, crow, cval, V, Q, e, s, H, Hm, Gc)
    if sequential_solve(j, w, V, s, H, d, alpha, lam_w, mu_w, lam_v, mu_v, use_w, sample):
        _apply_feature_change(j, cptr, crow, cval, V, Q, e, d, Hm, stored)


@njit(cache=True, fastmath=False)
def joint_solve(j, w, V, s, H, d, buf, alpha, lam_w, mu_w, lam_v, mu_v, use_w, sample):  # pragma: no cover - compiled
    """Block update of (w_j, v_{j,1..k}) from the Gram of their "features" (s, H): ŷ is linear in
    them, so their joint conditional is Gaussian with precision P = αH + diag(λ) and mean
    P⁻¹(α(Hθ + s) + λμ). ALS takes the mean (exact minimiser over the block), MCMC draws
    mean + L⁻ᵀz with P = LLᵀ. Sets w[j], V[j] and the changes d; returns False (and changes
    nothing) when P is singular."""
    k = V.shape[1]
    m = k + 1
    a0 = 0 if use_w else 1
    mm = m - a0
    P = buf[0]
    L = buf[1]
    rhs = buf[2, 0]
    theta = buf[2, 1]
    y = buf[2, 2]
    x = buf[2, 3]
    for a in range(a0, m):
        theta[a - a0] = w[j] if a == 0 else V[j, a - 1]
    for a in range(a0, m):
        lam = lam_w if a == 0 else lam_v[a - 1]
        mu = mu_w if a == 0 else mu_v[a - 1]
        acc = s[a]
        for b in range(a0, m):
            hab = H[a, b]
            P[a - a0, b - a0] = alpha * hab
            acc += hab * theta[b - a0]
        P[a - a0, a - a0] += lam
        rhs[a - a0] = alpha * acc + lam * mu
    # Cholesky P = LLᵀ (P is symmetric positive definite when every λ > 0)
    for a in range(mm):
        for b in range(a + 1):
            t = P[a, b]
            for c in range(b):
                t -= L[a, c] * L[b, c]
            if a == b:
                if t <= 0.0:
                    return False  # singular block (a feature without data and no prior): leave it
                L[a, a] = np.sqrt(t)
            else:
                L[a, b] = t / L[b, b]
    # solve L y = rhs, Lᵀ x = y
    for a in range(mm):
        t = rhs[a]
        for b in range(a):
            t -= L[a, b] * y[b]
        y[a] = t / L[a, a]
    if sample:
        for a in range(mm):
            y[a] += np.random.standard_normal()
    for a in range(mm - 1, -1, -1):
        t = y[a]
        for b in range(a + 1, mm):
            t -= L[b, a] * x[b]
        x[a] = t / L[a, a]
    d[0] = 0.0
    for a in range(a0, m):
        d[a] = x[a - a0] - theta[a - a0]
        if a == 0:
            w[j] = x[a - a0]
        else:
            V[j, a - 1] = x[a - a0]
    return True


@njit(cache=True, fastmath=False)
def update_feature_joint(j, cptr, crow, cval, w, V, Q, e, alpha, lam_w, mu_w, lam_v, mu_v, use_w, sample,
                         s, H, d, buf, Hm, Gc):  # pragma: no cover - compiled
    """Block update of (w_j, v_{j,1..k}) jointly (``joint_solve``) in two passes over the column
    (``_feature_gram``, ``_apply_feature_change``). Scratch buffers: ``feature_buffers(k)``."""
    stored = _feature_gram(j, cptr, crow, cval, V, Q, e, s, H, Hm, Gc)
    if joint_solve(j, w, V, s, H, d, buf, alpha, lam_w, mu_w, lam_v, mu_v, use_w, sample):
        _apply_feature_change(j, cptr, crow, cval, V, Q, e, d, Hm, stored)


@njit(cache=True, fastmath=False)
def cd_sweep(cptr, crow, cval, groups, w0, w, V, Q, e, alpha, reg_w0, lam_w, lam_v, mu_w, mu_v,
             use_w0, use_w, sample, gram_min=256, joint=False):  # pragma: no cover - compiled
    """One sweep: w₀, then feature by feature w_j and v_{j,1..k} (``update_feature``).

    libFM loops factor-major (for f: for j) with 2 passes over a column per coordinate; we loop
    feature-major and batch a feature's k+1 coordinates into 2 passes (exactly the same sequence
    of coordinate updates within a feature; any fixed scan order is a valid Gibbs sampler /
    coordinate descent). Columns shorter than ``gram_min`` use the plain per-coordinate passes
    (same updates; cheaper when the column sits in cache). ``w0`` is a length-1 array; λ/μ are indexed by feature group
    (``lam_v``/``mu_v``: (G, k)); ``Q`` has shape (n, k)."""
    p = len(w)
    k = V.shape[1]
    m = k + 1
    s = np.zeros(m)
    H = np.zeros((m, m))
    d = np.zeros(m)
    buf = np.zeros((3, m, m))
    Hm = np.zeros((512, m + 1))
    Gc = np.zeros((m + 1, m + 1))
    if use_w0:
        w0[0] = update_w0(w0[0], e, alpha, reg_w0, sample)
    for j in range(p):
        g = groups[j]
        if joint:
            update_feature_joint(j, cptr, crow, cval, w, V, Q, e, alpha, lam_w[g], mu_w[g], lam_v[g], mu_v[g],
                                 use_w, sample, s, H, d, buf, Hm, Gc)
        elif cptr[j + 1] - cptr[j] >= gram_min:
            update_feature(j, cptr, crow, cval, w, V, Q, e, alpha, lam_w[g], mu_w[g], lam_v[g], mu_v[g],
                           use_w, sample, s, H, d, buf, Hm, Gc)
        else:  # short column: it stays in cache, so per-coordinate passes are cheaper than the Gram
            if use_w:
                update_w(j, cptr, crow, cval, w, e, alpha, lam_w[g], mu_w[g], sample)
            for f in range(k):
                update_v(j, f, cptr, crow, cval, V, Q, e, alpha, lam_v[g, f], mu_v[g, f], sample)


# ---------------------------------------------------------------------- probit link
@njit(cache=True, fastmath=False)
def ndtri(p):  # pragma: no cover - compiled
    """Φ⁻¹(p), the standard normal quantile, by Wichura's AS241 (PPND16, relative error ~1e-16;
    Applied Statistics 37(3), 1988; the coefficients as in CPython's ``statistics``)."""
    q = p - 0.5
    if abs(q) <= 0.425:
        r = 0.180625 - q * q
        num = (((((((2.5090809287301226727e+3 * r + 3.3430575583588128105e+4) * r
                    + 6.7265770927008700853e+4) * r + 4.5921953931549871457e+4) * r
                  + 1.3731693765509461125e+4) * r + 1.9715909503065514427e+3) * r
                + 1.3314166789178437745e+2) * r + 3.3871328727963666080e+0) * q
        den = (((((((5.2264952788528545610e+3 * r + 2.8729085735721942674e+4) * r
                    + 3.9307895800092710610e+4) * r + 2.1213794301586595867e+4) * r
                  + 5.3941960214247511077e+3) * r + 6.8718700749205790830e+2) * r
                + 4.2313330701600911252e+1) * r + 1.0)
        return num / den
    if p <= 0.0:
        return -np.inf
    if p >= 1.0:
        return np.inf
    r = p if q <= 0.0 else 1.0 - p
    r = np.sqrt(-np.log(r))
    if r <= 5.0:
        r = r - 1.6
        num = (((((((7.74545014278341407640e-4 * r + 2.27238449892691845833e-2) * r
                    + 2.41780725177450611770e-1) * r + 1.27045825245236838258e+0) * r
                  + 3.64784832476320460504e+0) * r + 5.76949722146069140550e+0) * r
                + 4.63033784615654529590e+0) * r + 1.42343711074968357734e+0)
        den = (((((((1.05075007164441684324e-9 * r + 5.47593808499534494600e-4) * r
                    + 1.51986665636164571966e-2) * r + 1.48103976427480074590e-1) * r
                  + 6.89767334985100004550e-1) * r + 1.67638483018380384940e+0) * r
                + 2.05319162663775882187e+0) * r + 1.0)
    else:
        r = r - 5.0
        num = (((((((2.01033439929228813265e-7 * r + 2.71155556874348757815e-5) * r
                    + 1.24266094738807843860e-3) * r + 2.65321895265761230930e-2) * r
                  + 2.96560571828504891230e-1) * r + 1.78482653991729133580e+0) * r
                + 5.46378491116411436990e+0) * r + 6.65790464350110377720e+0)
        den = (((((((2.04426310338993978564e-15 * r + 1.42151175831644588870e-7) * r
                    + 1.84631831751005468180e-5) * r + 7.86869131145613259100e-4) * r
                  + 1.48753612908506148525e-2) * r + 1.36929880922735805310e-1) * r
                + 5.99832206555887937690e-1) * r + 1.0)
    x = num / den
    return -x if q < 0.0 else x


@njit(cache=True, fastmath=False)
def probit_resample(e, target, y, u):  # pragma: no cover - compiled
    """Gibbs step of the probit latent targets (Albert & Chib 1993), fused with the residuals.

    For each row, ŷ = target − e is the current prediction; the latent target is redrawn from
    N(ŷ, 1) truncated to sign(z) = y ∈ {−1, 1} by inversion, z = ŷ − y·Φ⁻¹(u·Φ(y·ŷ)) with
    u ∈ (0, 1] given; then ``target = z`` and ``e = z − ŷ`` in place. Φ(x) = ½ erfc(−x/√2); y·ŷ
    is clipped to ±35 and u·Φ(y·ŷ) to below 1 so that z stays finite."""
    inv_sqrt2 = 0.7071067811865476
    for r in range(len(e)):
        m = target[r] - e[r]
        yr = y[r]
        ym = min(max(yr * m, -35.0), 35.0)
        pr = min(u[r] * 0.5 * math.erfc(-ym * inv_sqrt2), 0.9999999999999999)  # < 1: finite z
        z = m - yr * ndtri(pr)
        target[r] = z
        e[r] = z - m


@njit(cache=True, parallel=True, fastmath=False)
def fm_predict_mean(indptr, indices, data, w0s, ws, Vs, link, out):  # pragma: no cover - compiled
    """out[r] = mean over samples s of g(ŷ_s(x_r)), with (w0s[s], ws[s], Vs[s]) the sampled
    parameters (any float dtype) and g the identity (link 0), the probit Φ (link 1) or the
    logistic σ (link 2). Same per-sample arithmetic as ``fm_predict``; samples in the outer loop
    (one sample's V stays in cache while all rows use it), rows in parallel."""
    n = len(indptr) - 1
    S = len(w0s)
    k = Vs.shape[2]
    inv_sqrt2 = 0.7071067811865476
    for r in prange(n):
        out[r] = 0.0
    for smp in range(S):
        w = ws[smp]
        V = Vs[smp]
        c = np.float64(w0s[smp])
        for r in prange(n):
            a0 = indptr[r]
            a1 = indptr[r + 1]
            s = c
            for p in range(a0, a1):
                s += np.float64(w[indices[p]]) * data[p]
            for f in range(k):
                a = 0.0
                b = 0.0
                for p in range(a0, a1):
                    t = np.float64(V[indices[p], f]) * data[p]
                    a += t
                    b += t * t
                s += 0.5 * (a * a - b)
            if link == 1:
                s = 0.5 * math.erfc(-s * inv_sqrt2)
            elif link == 2:
                s = 1.0 / (1.0 + np.exp(-s))
            out[r] += s
    for r in prange(n):
        out[r] /= S
