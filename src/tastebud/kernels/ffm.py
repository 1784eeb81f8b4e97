"""numba kernels for field-aware factorization machines (Juan, Zhuang, Chin & Lin, "Field-aware
factorization machines for CTR prediction", RecSys 2016).

Every feature j belongs to a field f(j) and has one latent vector per field, V[j, F] (shape p × n_fields × k):

    ŷ(x) = w₀ + Σ_j w_j x_j + Σ_{a<b} ⟨V[j_a, f(j_b)], V[j_b, f(j_a)]⟩ x_a x_b          (O(k·nnz(x)²))

* ``ffm_predict``: rows in CSR, in parallel.
* ``ffm_row_gradient``: the loss gradient of one row — ½(ŷ − y)² or log(1 + e^{−yŷ}) — with respect
  to w₀, w and every V[j, F] the row touches (checked against finite differences in tests).
* ``ffm_sgd_epoch``: one pass of SGD (or AdaGrad, libffm's default) over the rows in a given order;
  each row's gradient is formed first, then applied, with L2 on the parameters the row touches.
* ``ffm_side_parts``: for the recommender mode, the parts of a user (or item) row that make
  ŷ(u, i) = w₀ + b_u + b_i + ⟨P_u, P_i⟩ with P_u[F_u, F_i] = Σ_{a: f(a)=F_u} V[a, F_i] x_a and
  P_i[F_u, F_i] = Σ_{b: f(b)=F_i} V[b, F_u] x_b.

No I/O, no ids: only contiguous integer indices.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .fm import loss_derivative


@njit(cache=True, fastmath=False)
def _row_score(indices, data, fld, w0, w, V):  # pragma: no cover - compiled
    k = V.shape[2]
    nz = len(indices)
    s = w0
    for p in range(nz):
        s += w[indices[p]] * data[p]
    for a in range(nz):
        ja = indices[a]
        fa = fld[ja]
        xa = data[a]
        for b in range(a + 1, nz):
            jb = indices[b]
            fb = fld[jb]
            t = 0.0
            for f in range(k):
                t += V[ja, fb, f] * V[jb, fa, f]
            s += t * xa * data[b]
    return s


@njit(cache=True, parallel=True, fastmath=False)
def ffm_predict(indptr, indices, data, fld, w0, w, V, out):  # pragma: no cover - compiled
    """out[r] = ŷ(x_r) for every CSR row r."""
    for r in prange(len(indptr) - 1):
        a0, a1 = indptr[r], indptr[r + 1]
        out[r] = _row_score(indices[a0:a1], data[a0:a1], fld, w0, w, V)


@njit(cache=True, fastmath=False)
def ffm_row_gradient(indices, data, fld, y, classification, w0, w, V, gw, gV):  # pragma: no cover - compiled
    """Gradient of one row's loss (no regularisation): ∂ℓ/∂w_j of position p into ``gw[p]``,
    ∂ℓ/∂V[j_p, F] into ``gV[p, F]`` (zero for fields no other feature of the row has). Returns
    (∂ℓ/∂w₀, ŷ)."""
    nz = len(indices)
    k = V.shape[2]
    s = _row_score(indices, data, fld, w0, w, V)
    dl = loss_derivative(s, y, classification)
    for p in range(nz):
        gw[p] = dl * data[p]
        for F in range(gV.shape[1]):
            for f in range(k):
                gV[p, F, f] = 0.0
    for a in range(nz):
        ja = indices[a]
        fa = fld[ja]
        for b in range(a + 1, nz):
            jb = indices[b]
            fb = fld[jb]
            c = dl * data[a] * data[b]
            for f in range(k):
                gV[a, fb, f] += c * V[jb, fa, f]
                gV[b, fa, f] += c * V[ja, fb, f]
    return dl, s


@njit(cache=True, fastmath=False)
def ffm_sgd_epoch(indptr, indices, data, y, order, fld, classification, w0, w, V, lr, reg_w0, reg_w, reg_v,
                  use_w0, use_w, adagrad, G0, Gw, GV, y_min, y_max):  # pragma: no cover - compiled
    """One SGD pass over the rows in ``order`` (``w0`` a length-1 array). Each row's gradient is
    formed at the current parameters, then applied with L2 (``reg_v`` on each V[j, F] the row
    touches); AdaGrad steps lr/√(G + ε). Regression clips ŷ to [y_min, y_max] for the gradient
    (libFM's rule). Returns the mean loss of the pass (before each row's update)."""
    n_fields = V.shape[1]
    k = V.shape[2]
    maxnz = 0
    for r in range(len(indptr) - 1):
        maxnz = max(maxnz, indptr[r + 1] - indptr[r])
    gw = np.zeros(maxnz)
    gV = np.zeros((maxnz, n_fields, k))
    fcount = np.zeros(n_fields, dtype=np.int64)
    eps = 1e-8
    total = 0.0
    for t in range(len(order)):
        r = order[t]
        a0, a1 = indptr[r], indptr[r + 1]
        ind = indices[a0:a1]
        dat = data[a0:a1]
        nz = a1 - a0
        dl, s = ffm_row_gradient(ind, dat, fld, y[r], classification, w0[0], w, V, gw, gV)
        if classification:
            z = y[r] * s
            total += np.log1p(np.exp(-z)) if z > -30 else -z
        else:
            total += 0.5 * (s - y[r]) ** 2
            sc = min(max(s, y_min), y_max)
            if sc != s:  # the gradient of the clipped prediction
                scale = (sc - y[r]) / dl if dl != 0.0 else 0.0
                dl = sc - y[r]
                for p in range(nz):
                    gw[p] *= scale
                    for F in range(n_fields):
                        for f in range(k):
                            gV[p, F, f] *= scale
        for p in range(nz):
            fcount[fld[ind[p]]] += 1
        if use_w0:
            g = dl + reg_w0 * w0[0]
            if adagrad:
                G0[0] += g * g
                w0[0] -= lr * g / np.sqrt(G0[0] + eps)
            else:
                w0[0] -= lr * g
        for p in range(nz):
            j = ind[p]
            if use_w:
                g = gw[p] + reg_w * w[j]
                if adagrad:
                    Gw[j] += g * g
                    w[j] -= lr * g / np.sqrt(Gw[j] + eps)
                else:
                    w[j] -= lr * g
            fj = fld[j]
            for F in range(n_fields):
                if fcount[F] - (1 if F == fj else 0) <= 0:
                    continue  # no pair of this row uses V[j, F]
                for f in range(k):
                    g = gV[p, F, f] + reg_v * V[j, F, f]
                    if adagrad:
                        GV[j, F, f] += g * g
                        V[j, F, f] -= lr * g / np.sqrt(GV[j, F, f] + eps)
                    else:
                        V[j, F, f] -= lr * g
        for p in range(nz):
            fcount[fld[ind[p]]] = 0
    return total / max(len(order), 1)


@njit(cache=True, parallel=True, fastmath=False)
def ffm_side_parts(indptr, indices, data, fld, w, V, side_pos, other_fields, item_side, bias, P):  # pragma: no cover - compiled
    """Parts of the rows of one side (users or items) of a recommender FFM.

    ``side_pos[F]`` is the position of field F among this side's fields (−1 for the other side's),
    ``other_fields`` the other side's fields in order. ``bias[r]`` = Σ w x + the pairs within the
    row; ``P[r]`` (n_user_fields · n_item_fields · k) holds, at block (F_u, F_i), Σ over the row's
    features a of field F (its own side's field) of V[a, F'] x_a, F' the other side's field of the
    block; blocks ordered user field major for both sides (``item_side`` swaps the roles)."""
    k = V.shape[2]
    n_other = len(other_fields)
    n_side = 0
    for F in range(len(side_pos)):
        if side_pos[F] >= 0:
            n_side += 1
    for r in prange(len(indptr) - 1):
        a0, a1 = indptr[r], indptr[r + 1]
        bias[r] = _row_score(indices[a0:a1], data[a0:a1], fld, 0.0, w, V)
        for t in range(P.shape[1]):
            P[r, t] = 0.0
        for p in range(a0, a1):
            j = indices[p]
            s = side_pos[fld[j]]
            if s < 0:
                continue
            x = data[p]
            for o in range(n_other):
                Fo = other_fields[o]
                blk = (o * n_side + s) if item_side else (s * n_other + o)
                for f in range(k):
                    P[r, blk * k + f] += V[j, Fo, f] * x
