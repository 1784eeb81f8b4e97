"""numba kernels for the ordered-probit (cumulative link) factorization machine.

Model (as in myFM's ``MyFMOrderedProbit``): a latent z ~ N(ŷ(x), 1) and cutpoints
γ₀ < γ₁ < … < γ_{K−2}; the class is c when γ_{c−1} < z ≤ γ_c (γ_{−1} = −∞, γ_{K−1} = +∞), so

    P(y = c | x) = Φ(γ_c − ŷ) − Φ(γ_{c−1} − ŷ).

The cutpoints are parametrised by α (γ₀ = α₀, γ_m = γ_{m−1} + exp(α_m)) with a N(0, 1/reg) prior on
each α_m. Per Gibbs sweep (Albert & Chib 1997 for the cutpoints marginal of z):

* ``cutpoint_objective``: the negative log posterior of α given ŷ (z integrated out), its gradient
  and Hessian — the caller finds the mode and draws α by an independence Metropolis–Hastings step
  with a multivariate-t proposal centred there;
* ``ordinal_resample``: z given the cutpoints, a normal truncated to its class's interval, drawn
  by inversion; fused with the residuals e = z − ŷ;
* ``ordinal_proba_accumulate``: adds P(y = c | x) for one sample's ŷ and cutpoints.

Tails are computed with the scaled complementary error function erfcx(x) = exp(x²)·erfc(x), so
intervals far out in a tail keep their relative precision.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .fm import ndtri

_INV_SQRT2 = 0.7071067811865476
_INV_SQRT2PI = 0.3989422804014327
_LOG_SQRT2PI = 0.9189385332046727


@njit(cache=True, fastmath=False)
def erfcx(x):  # pragma: no cover - compiled
    """exp(x²)·erfc(x) for x > −26 (direct below 25, asymptotic series above)."""
    if x < 25.0:
        return math.exp(x * x) * math.erfc(x)
    t = 1.0 / (2.0 * x * x)
    # erfc(x) e^{x²} √π x = 1 − t + 3t² − 15t³ + 105t⁴ − …
    return (1.0 - t * (1.0 - 3.0 * t * (1.0 - 5.0 * t * (1.0 - 7.0 * t)))) / (x * 1.7724538509055159)


@njit(cache=True, fastmath=False)
def log_interval(a, b):  # pragma: no cover - compiled
    """For a < b (either may be infinite): (log D, φ(a)/D, φ(b)/D) with D = Φ(b) − Φ(a)."""
    c = 2.0 * _INV_SQRT2PI
    if a >= 0.0:  # both in the upper tail: D = ½e^{−a²/2}[erfcx(a/√2) − e^{(a²−b²)/2} erfcx(b/√2)]
        if b == np.inf:
            ef = 0.0
            t = 0.0
        else:
            ef = math.exp(0.5 * (a * a - b * b))
            t = ef * erfcx(b * _INV_SQRT2)
        inner = erfcx(a * _INV_SQRT2) - t
        if not inner > 0.0:
            return -np.inf, np.inf, np.inf
        return -0.5 * a * a + math.log(0.5 * inner), c / inner, c * ef / inner
    if b <= 0.0:  # both in the lower tail (the mirror image)
        if a == -np.inf:
            ef = 0.0
            t = 0.0
        else:
            ef = math.exp(0.5 * (b * b - a * a))
            t = ef * erfcx(-a * _INV_SQRT2)
        inner = erfcx(-b * _INV_SQRT2) - t
        if not inner > 0.0:
            return -np.inf, np.inf, np.inf
        return -0.5 * b * b + math.log(0.5 * inner), c * ef / inner, c / inner
    d = 0.5 * (math.erf(b * _INV_SQRT2) - math.erf(a * _INV_SQRT2))
    if not d > 0.0:
        return -np.inf, np.inf, np.inf
    ra = 0.0 if a == -np.inf else math.exp(-0.5 * a * a) * _INV_SQRT2PI / d
    rb = 0.0 if b == np.inf else math.exp(-0.5 * b * b) * _INV_SQRT2PI / d
    return math.log(d), ra, rb


@njit(cache=True, fastmath=False)
def alpha_to_gamma(alpha, gamma):  # pragma: no cover - compiled
    gamma[0] = alpha[0]
    for m in range(1, len(alpha)):
        gamma[m] = gamma[m - 1] + math.exp(alpha[m])


@njit(cache=True, fastmath=False)
def cutpoint_objective(alpha, yhat, cls, reg, grad, hess):  # pragma: no cover - compiled
    """Negative log posterior of the cutpoint parameters α given the scores ``yhat`` and class
    indices ``cls`` (0..K−1, K = len(α) + 1), with a N(0, 1/reg) prior on each α_m; writes its
    gradient (``grad``, length K−1) and Hessian (``hess``, (K−1)×(K−1)) in α. Returns the value
    (+inf where an interval is empty in floating point). One thread: a pass costs a few ms, less
    than the start of a parallel region on a loaded machine."""
    d = len(alpha)
    gamma = np.empty(d)
    alpha_to_gamma(alpha, gamma)
    # sums in γ: value, gradient, Hessian (tridiagonal: the diagonal and the super-diagonal)
    ll = 0.0
    g = np.zeros(d)
    Hd = np.zeros(d)
    Ho = np.zeros(d)
    for r in range(len(yhat)):
        c = cls[r]
        m = yhat[r]
        a = gamma[c - 1] - m if c > 0 else -np.inf
        b = gamma[c] - m if c < d else np.inf
        lv, ra, rb = log_interval(a, b)
        ll += lv
        if c < d:
            g[c] += rb
            Hd[c] += -b * rb - rb * rb
        if c > 0:
            g[c - 1] -= ra
            Hd[c - 1] += a * ra - ra * ra
            if c < d:
                Ho[c - 1] += ra * rb
    # chain rule to α: ∂γ_m/∂α_0 = 1, ∂γ_m/∂α_i = e^{α_i} for 1 ≤ i ≤ m
    J = np.zeros((d, d))  # J[m, i] = ∂γ_m/∂α_i
    for m in range(d):
        J[m, 0] = 1.0
        for i in range(1, m + 1):
            J[m, i] = math.exp(alpha[i])
    Hg = np.zeros((d, d))
    for m in range(d):
        Hg[m, m] = Hd[m]
        if m + 1 < d:
            Hg[m, m + 1] = Ho[m]
            Hg[m + 1, m] = Ho[m]
    for i in range(d):
        s = 0.0
        for m in range(d):
            s += g[m] * J[m, i]
        grad[i] = -s + reg * alpha[i]
    for i in range(d):
        for j in range(d):
            s = 0.0
            for m in range(d):
                for q in range(d):
                    s += J[m, i] * Hg[m, q] * J[q, j]
            hess[i, j] = -s
        # second derivative of γ_m in α_i (i ≥ 1): e^{α_i} for every m ≥ i
        if i >= 1:
            t = 0.0
            for m in range(i, d):
                t += g[m]
            hess[i, i] -= t * math.exp(alpha[i])
        hess[i, i] += reg
    val = -ll
    for i in range(d):
        val += 0.5 * reg * alpha[i] * alpha[i]
    if not np.isfinite(val):
        return np.inf
    return val


@njit(cache=True, fastmath=False)
def truncated_std_normal(a, b, u):  # pragma: no cover - compiled
    """The u-quantile (u ∈ (0, 1]) of N(0, 1) truncated to (a, b), by inversion in the tail where
    the interval lies, so far-out intervals keep their precision."""
    if a >= 0.0:  # upper tail: survival function Q(t) = ½erfc(t/√2)
        qa = 0.5 * math.erfc(a * _INV_SQRT2)
        qb = 0.0 if b == np.inf else 0.5 * math.erfc(b * _INV_SQRT2)
        q = qb + u * (qa - qb)
        t = a if q <= 0.0 else -ndtri(q)
    elif b <= 0.0:
        pa = 0.0 if a == -np.inf else 0.5 * math.erfc(-a * _INV_SQRT2)
        pb = 0.5 * math.erfc(-b * _INV_SQRT2)
        q = pa + u * (pb - pa)
        t = b if q <= 0.0 else ndtri(q)
    else:
        pa = 0.0 if a == -np.inf else 0.5 * math.erfc(-a * _INV_SQRT2)
        pb = 1.0 if b == np.inf else 0.5 * math.erfc(-b * _INV_SQRT2)
        q = min(pa + u * (pb - pa), 0.9999999999999999)
        t = ndtri(q) if q > 0.0 else a
    if t < a:
        t = a
    if t > b:
        t = b
    return t


@njit(cache=True, fastmath=False)
def ordinal_resample(e, target, cls, gamma, u):  # pragma: no cover - compiled
    """Gibbs step of the latent targets: for each row, ŷ = target − e and z ~ N(ŷ, 1) truncated to
    (γ_{c−1}, γ_c] by inversion with the uniform u[r] ∈ (0, 1]; then ``target = z`` and
    ``e = z − ŷ`` in place."""
    d = len(gamma)
    for r in range(len(e)):
        m = target[r] - e[r]
        c = cls[r]
        a = gamma[c - 1] - m if c > 0 else -np.inf
        b = gamma[c] - m if c < d else np.inf
        t = truncated_std_normal(a, b, u[r])
        target[r] = m + t
        e[r] = t


@njit(cache=True, fastmath=False)
def class_probabilities(m, gamma, out):  # pragma: no cover - compiled
    """out[c] += P(y = c) = Φ(γ_c − m) − Φ(γ_{c−1} − m) (tail-accurate)."""
    d = len(gamma)
    for c in range(d + 1):
        a = gamma[c - 1] - m if c > 0 else -np.inf
        b = gamma[c] - m if c < d else np.inf
        if a >= 0.0:
            qb = 0.0 if b == np.inf else 0.5 * math.erfc(b * _INV_SQRT2)
            p = 0.5 * math.erfc(a * _INV_SQRT2) - qb
        else:
            pa = 0.0 if a == -np.inf else 0.5 * math.erfc(-a * _INV_SQRT2)
            pb = 1.0 if b == np.inf else 0.5 * math.erfc(-b * _INV_SQRT2)
            p = pb - pa
        out[c] += max(p, 0.0)


@njit(cache=True, parallel=True, fastmath=False)
def ordinal_proba_accumulate(yhat, gamma, out):  # pragma: no cover - compiled
    """out[r, c] += P(y = c | ŷ = yhat[r]) for one sample's scores and cutpoints."""
    for r in prange(len(yhat)):
        class_probabilities(yhat[r], gamma, out[r])


@njit(cache=True, fastmath=False)
def latent_class(yhat, gamma, out):  # pragma: no cover - compiled
    """out[r] = the class whose interval holds yhat[r]."""
    for r in range(len(yhat)):
        lo, hi = 0, len(gamma)
        while lo < hi:
            mid = (lo + hi) // 2
            if gamma[mid] < yhat[r]:
                lo = mid + 1
            else:
                hi = mid
        out[r] = lo
