"""Row-wise top-k selection: a bounded heap per row, rows in parallel.

O(m log k) per row instead of a full partition, no temporary copies of the score matrix, and
deterministic: among equal scores the lower column index ranks first (also across the k-th
place), whatever the thread count. NaN scores rank as -inf.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, inline="always")
def _worse(v: float, i: int, w: float, j: int) -> bool:
    """(v, i) ranks below (w, j): lower value, or equal value and higher index."""
    return v < w or (v == w and i > j)


@njit(cache=True, inline="always")
def _sift_down(hv, hi, pos, size):
    v = hv[pos]
    i = hi[pos]
    while True:
        c = 2 * pos + 1
        if c >= size:
            break
        if c + 1 < size and _worse(hv[c + 1], hi[c + 1], hv[c], hi[c]):
            c += 1
        if _worse(hv[c], hi[c], v, i):
            hv[pos] = hv[c]
            hi[pos] = hi[c]
            pos = c
        else:
            break
    hv[pos] = v
    hi[pos] = i


@njit(cache=True, parallel=True)
def topk_rows_kernel(S, k, out_idx, out_val):  # pragma: no cover - compiled
    n, m = S.shape
    for r in prange(n):
        hv = np.empty(k, dtype=S.dtype)  # min-heap of the k best so far; root = worst of them
        hi = np.empty(k, dtype=np.int64)
        size = 0
        for j in range(m):
            v = S[r, j]
            if v != v:
                v = -np.inf
            if size < k:
                pos = size
                size += 1
                while pos > 0:
                    p = (pos - 1) // 2
                    if _worse(v, j, hv[p], hi[p]):
                        hv[pos] = hv[p]
                        hi[pos] = hi[p]
                        pos = p
                    else:
                        break
                hv[pos] = v
                hi[pos] = j
            elif v > hv[0]:  # equal value with a higher index never displaces
                hv[0] = v
                hi[0] = j
                _sift_down(hv, hi, 0, size)
        # pop the worst repeatedly into the last free slot: best ends first
        for t in range(size - 1, -1, -1):
            out_val[r, t] = hv[0]
            out_idx[r, t] = hi[0]
            hv[0] = hv[t]
            hi[0] = hi[t]
            _sift_down(hv, hi, 0, t)
