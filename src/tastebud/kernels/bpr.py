"""BPR-MF kernels (Rendle, Freudenthaler, Gantner & Schmidt-Thieme, UAI 2009).

Per sample (u, i, j) — i a positive of u, j a uniformly drawn item u did not interact with:

    x_uij = pᵤ·(qᵢ − qⱼ) + bᵢ − bⱼ
    L     = −ln σ(x_uij) + ½λ (‖pᵤ‖² + ‖qᵢ‖² + ‖qⱼ‖² + bᵢ² + bⱼ²)

and one SGD step θ ← θ − η ∂L/∂θ with z = σ(−x_uij):

    pᵤ += η (z (qᵢ − qⱼ) − λ pᵤ),  qᵢ += η (z pᵤ − λ qᵢ),  qⱼ += η (−z pᵤ − λ qⱼ),
    bᵢ += η (z − λ bᵢ),            bⱼ += η (−z − λ bⱼ)        (all with the old values).

An epoch draws nnz samples, split into a fixed number of blocks; block b of epoch e draws from its
own splitmix64 stream seeded by (seed, e, b), so the sample sequence never depends on the thread
count. Blocks run in parallel without locks (Hogwild, Niu et al. 2011): with one thread training
is exactly reproducible; with several, only the interleaving of updates differs.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


@njit(cache=True, fastmath=False)
def _mix(z):
    z = np.uint64(z)
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@njit(cache=True, fastmath=False)
def stream_seed(seed, epoch, block):
    """Seed of the random stream of (seed, epoch, block)."""
    z = _mix(np.uint64(seed) + _GOLDEN)
    z = _mix(z ^ (np.uint64(epoch) * _GOLDEN + np.uint64(1)))
    return _mix(z ^ (np.uint64(block) * _M1 + np.uint64(2)))


@njit(cache=True, fastmath=False)
def _next(state):
    """splitmix64: (new state, 64 random bits)."""
    state = np.uint64(state) + _GOLDEN
    return state, _mix(state)


@njit(cache=True, fastmath=False)
def _randint(state, n):
    state, z = _next(state)
    v = np.int64((z >> np.uint64(11)) * np.float64(1.0 / 9007199254740992.0) * n)
    if v >= n:
        v = n - 1
    return state, v


@njit(cache=True, fastmath=False)
def uniform_draws(seed, epoch, block, n, count):
    """``count`` draws in [0, n) from the stream of (seed, epoch, block) (for inspection/tests)."""
    state = stream_seed(seed, epoch, block)
    out = np.empty(count, dtype=np.int64)
    for t in range(count):
        state, out[t] = _randint(state, n)
    return out


@njit(cache=True, fastmath=False)
def _contains(indices, s, e, j):
    lo, hi = s, e
    while lo < hi:
        mid = (lo + hi) // 2
        if indices[mid] < j:
            lo = mid + 1
        else:
            hi = mid
    return lo < e and indices[lo] == j


@njit(cache=True, fastmath=False)
def draw_triple(state, rows, indptr, indices, n_items, verify_negative):
    """A BPR sample from the stream ``state``: a stored positive (u, i) drawn uniformly (``rows``:
    the row of each stored entry of the CSR ``indptr, indices``) and j uniform over the items,
    redrawn while it is a positive of u (``verify_negative``, at most 100 tries). Returns
    (state, u, i, j) with j = −1 when u has no negative or the redraws ran out."""
    state, m = _randint(state, len(indices))
    u = rows[m]
    i = indices[m]
    s, e = indptr[u], indptr[u + 1]
    if e - s >= n_items:
        return state, u, i, -1
    state, j = _randint(state, n_items)
    if verify_negative:
        tries = 0
        while _contains(indices, s, e, j) and tries < 100:
            state, j = _randint(state, n_items)
            tries += 1
        if tries == 100:
            return state, u, i, -1
    return state, u, i, j


@njit(cache=True, fastmath={"reassoc", "contract"})
def _diff_dot(p, qi, qj, k):
    """p·(qi − qj); the one reduction allowed to reassociate (so it vectorises); no nnan/ninf."""
    s = p[0] * (qi[0] - qj[0])
    for f in range(1, k):
        s += p[f] * (qi[f] - qj[f])
    return s


@njit(cache=True, fastmath=False)
def bpr_update(u, i, j, P, Q, b, lr, reg):
    """One SGD step on sample (u, i, j), in place. Returns x_uij before the step."""
    k = P.shape[1]
    x = np.float64(b[i]) - b[j] + _diff_dot(P[u], Q[i], Q[j], k)
    z = 1.0 / (1.0 + np.exp(x))
    for f in range(k):
        pu = P[u, f]
        qi = Q[i, f]
        qj = Q[j, f]
        P[u, f] = pu + lr * (z * (qi - qj) - reg * pu)
        Q[i, f] = qi + lr * (z * pu - reg * qi)
        Q[j, f] = qj + lr * (-z * pu - reg * qj)
    bi = b[i]
    bj = b[j]
    b[i] = bi + lr * (z - reg * bi)
    b[j] = bj + lr * (-z - reg * bj)
    return x


@njit(cache=True, fastmath=False, parallel=True)
def bpr_epoch(indptr, indices, rows, P, Q, b, lr, reg, seed, epoch, n_blocks, verify_negative):
    """One epoch of nnz samples in ``n_blocks`` seeded blocks (parallel, Hogwild).
    ``rows`` is the user of each stored entry. Returns (samples with x_uij > 0, samples skipped)."""
    nnz = len(indices)
    n_items = Q.shape[0]
    correct = np.zeros(n_blocks, dtype=np.int64)
    skipped = np.zeros(n_blocks, dtype=np.int64)
    for blk in prange(n_blocks):
        lo = (nnz * blk) // n_blocks
        hi = (nnz * (blk + 1)) // n_blocks
        state = stream_seed(seed, epoch, blk)
        for _ in range(lo, hi):
            state, u, i, j = draw_triple(state, rows, indptr, indices, n_items, verify_negative)
            if j < 0:
                skipped[blk] += 1
                continue
            x = bpr_update(u, i, j, P, Q, b, lr, reg)
            if x > 0:
                correct[blk] += 1
    return correct.sum(), skipped.sum()
