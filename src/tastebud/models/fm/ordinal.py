"""Ordered-probit (cumulative link) latent step of the Bayesian factorization machine.

``FactorizationMachine(task="ordinal", solver="mcmc")`` models an ordered class y ∈ {0, …, K−1}
(e.g. a 1–5 star rating) through a latent z ~ N(ŷ(x), 1) cut at γ₀ < … < γ_{K−2}:

    P(y = c | x) = Φ(γ_c − ŷ(x)) − Φ(γ_{c−1} − ŷ(x))        (γ_{−1} = −∞, γ_{K−1} = +∞)

as myFM's ``MyFMOrderedProbit`` (Ohtsuki's myFM; the sampler of Albert & Chib, "Sequential ordinal
modeling with applications to survey data", Biometrics 2001, with the cutpoints drawn marginally
of z). Each Gibbs sweep, before the FM parameters are redrawn given z:

1. cutpoints | ŷ, y — with γ₀ = α₀ and γ_m = γ_{m−1} + exp(α_m), each α_m ~ N(0, 1/reg) a priori,
   the mode α̂ of the log posterior is found by Newton's method (warm-started from the previous
   sweep) and a candidate α* = α̂ + t_ν(0, H⁻¹) (H the negative Hessian at α̂, ν = 5) is accepted
   with the independence Metropolis–Hastings ratio;
2. z | cutpoints, ŷ, y — each a normal truncated to its class's interval.

The defaults reg = 1 and ν = 5 are myFM's (``reg_0``, ``nu_oprobit``).
"""

from __future__ import annotations

import numpy as np

from ...kernels import fm_ordinal as KO


class CutpointSampler:
    """The ordinal latent step (see the module docstring) for class indices ``cls`` (0..K−1)."""

    def __init__(self, cls: np.ndarray, n_classes: int, reg: float = 1.0, nu: float = 5.0):
        self.cls = np.ascontiguousarray(cls, dtype=np.int64)
        self.K = int(n_classes)
        self.reg = float(reg)
        self.nu = float(nu)
        self.alpha = np.zeros(self.K - 1)
        self.gamma = np.empty(self.K - 1)
        KO.alpha_to_gamma(self.alpha, self.gamma)
        self.n_accepted = 0
        self.n_steps = 0
        d = self.K - 1
        self._g = np.zeros(d)
        self._H = np.zeros((d, d))

    # ------------------------------------------------------------------ the target
    def objective(self, alpha: np.ndarray, yhat: np.ndarray, grad: np.ndarray | None = None,
                  hess: np.ndarray | None = None) -> float:
        """−log posterior of α given ŷ (z integrated out), up to a constant; fills grad/hess."""
        d = self.K - 1
        g = np.zeros(d) if grad is None else grad
        H = np.zeros((d, d)) if hess is None else hess
        return float(KO.cutpoint_objective(np.ascontiguousarray(alpha, dtype=np.float64), yhat, self.cls,
                                           self.reg, g, H))

    def mode(self, yhat: np.ndarray, start: np.ndarray | None = None, max_iter: int = 100,
             tol: float = 1e-12) -> tuple[np.ndarray, np.ndarray, float]:
        """(α̂, H, f₀): the posterior mode by damped Newton steps from ``start``, the negative
        Hessian there, and the objective at ``start``. Stops when the Newton decrement gᵀH⁻¹g
        (the squared distance to the mode in units of the posterior spread) is below ``tol``."""
        a = (self.alpha if start is None else start).copy()
        g, H = self._g, self._H
        f = f0 = self.objective(a, yhat, g, H)
        if not np.isfinite(f):
            a = np.zeros_like(a)
            f = self.objective(a, yhat, g, H)
        g2, H2 = np.empty_like(g), np.empty_like(H)
        slack = 1e-13 * max(abs(f), 1.0)  # rounding of a sum over all rows
        for _ in range(max_iter):
            try:
                step = np.linalg.solve(H, g)
                dec = float(g @ step)
                if not dec > 0:  # not a descent direction (H not positive definite here)
                    raise np.linalg.LinAlgError
            except np.linalg.LinAlgError:
                step = g / max(np.abs(np.diag(H)).max(), 1.0)
                dec = float(g @ step)
            if dec < tol:
                break
            t = 1.0
            while True:
                cand = a - t * step
                f2 = self.objective(cand, yhat, g2, H2)
                if f2 <= f - 1e-4 * t * dec + slack or t < 1e-6:
                    break
                t *= 0.5
            if not f2 <= f + slack:  # no progress possible: at the mode up to rounding
                break
            a, f = cand, f2
            g[:], H[:] = g2, H2
        return a, H.copy(), f0

    def start(self, yhat: np.ndarray) -> None:
        """Set the cutpoints to the posterior mode given the initial scores."""
        self.alpha, _, _ = self.mode(yhat, np.zeros(self.K - 1))
        KO.alpha_to_gamma(self.alpha, self.gamma)

    def _log_proposal(self, x: np.ndarray, center: np.ndarray, H: np.ndarray) -> float:
        dlt = x - center
        return -0.5 * (self.nu + len(x)) * np.log1p(float(dlt @ H @ dlt) / self.nu)

    def step(self, yhat: np.ndarray, rng: np.random.Generator) -> bool:
        """One independence Metropolis–Hastings draw of the cutpoints; returns whether it moved.

        The proposal is centred at the posterior mode given ``yhat`` (Newton's method, started
        from the current α and run to convergence, so the centre does not depend on the start)."""
        center, H, f_old = self.mode(yhat, self.alpha)
        d = self.K - 1
        z = rng.standard_normal(d)
        w = rng.chisquare(self.nu) / self.nu
        u = rng.random()
        self.n_steps += 1
        try:
            L = np.linalg.cholesky(H)
        except np.linalg.LinAlgError:
            return False
        cand = center + np.linalg.solve(L.T, z) / np.sqrt(w)
        f_new = self.objective(cand, yhat)
        log_r = (-f_new - self._log_proposal(cand, center, H)) - (-f_old - self._log_proposal(self.alpha, center, H))
        if np.isfinite(f_new) and np.log(1.0 - u) < log_r:
            self.alpha = cand
            KO.alpha_to_gamma(self.alpha, self.gamma)
            self.n_accepted += 1
            return True
        return False

    def resample(self, e: np.ndarray, target: np.ndarray, rng: np.random.Generator) -> None:
        """z | cutpoints for every row, in place (``target = z``, ``e = z − ŷ``)."""
        KO.ordinal_resample(e, target, self.cls, self.gamma, 1.0 - rng.random(len(e)))


def class_probabilities(yhat_samples, cutpoint_samples: np.ndarray, n_rows: int) -> np.ndarray:
    """Mean over samples of P(y = c | x): ``yhat_samples`` yields each sample's scores (n_rows,)
    in the order of ``cutpoint_samples`` (S, K−1)."""
    out = np.zeros((n_rows, cutpoint_samples.shape[1] + 1))
    S = 0
    for s, yhat in enumerate(yhat_samples):
        KO.ordinal_proba_accumulate(yhat, np.ascontiguousarray(cutpoint_samples[s], dtype=np.float64), out)
        S += 1
    out /= max(S, 1)
    return out
