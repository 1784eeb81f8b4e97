"""Small dense linear algebra for use inside parallel numba loops (no LAPACK/BLAS calls there:
a multi-threaded BLAS inside our own threads is ~10× slower, GUIDE §6)."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, fastmath=False)
def cholesky_solve_inplace(A, b, k):
    """Solve A x = b for SPD A (lower Cholesky factor written into A); x overwrites b.
    Returns False when A is not positive definite (numerically)."""
    for j in range(k):
        s = A[j, j]
        for p in range(j):
            s -= A[j, p] * A[j, p]
        if s <= 0.0:
            return False
        d = np.sqrt(s)
        A[j, j] = d
        for i in range(j + 1, k):
            t = A[i, j]
            for p in range(j):
                t -= A[i, p] * A[j, p]
            A[i, j] = t / d
    # forward: L z = b
    for i in range(k):
        t = b[i]
        for p in range(i):
            t -= A[i, p] * b[p]
        b[i] = t / A[i, i]
    # backward: Lᵀ x = z
    for i in range(k - 1, -1, -1):
        t = b[i]
        for p in range(i + 1, k):
            t -= A[p, i] * b[p]
        b[i] = t / A[i, i]
    return True
