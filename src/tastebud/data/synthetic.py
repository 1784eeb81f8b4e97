"""Seeded synthetic data with planted structure, for tests (is the planted truth recovered?) and
scale benchmarks. Every generator returns ``(data, truth)``; ``truth`` is a small dataclass holding
what was planted. Everything is vectorised with NumPy, so sizes in the millions take seconds.

``low_rank_ratings``    explicit ratings  r = μ + b_u + b_i + p_uᵀ q_i + ε, clipped to a scale
``powerlaw_implicit``   implicit interactions, Zipf item popularity and user activity, optional clusters
``planted_baskets``     baskets with rules A → B of known confidence over background noise
``planted_sequences``   sequences from a first-order Markov chain with a planted successor per item
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .baskets import Baskets
from .idmap import IdMap
from .interactions import Interactions
from .sequences import Sequences

__all__ = ["low_rank_ratings", "powerlaw_implicit", "planted_baskets", "planted_sequences",
           "LowRankTruth", "PowerLawTruth", "BasketTruth", "SequenceTruth"]


def _rng(random_state: Any) -> np.random.Generator:
    return random_state if isinstance(random_state, np.random.Generator) else np.random.default_rng(random_state)


def _positive_int(name: str, v: Any) -> int:
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
        raise ValueError(f"{name} must be a positive integer, got {v!r}")
    return int(v)


def _sorted_unique(a: np.ndarray) -> np.ndarray:
    """``np.unique`` by sorting (several times faster than NumPy 2.4's hash-based unique on int64)."""
    a = np.sort(a)
    if len(a) < 2:
        return a
    keep = np.empty(len(a), dtype=bool)
    keep[0] = True
    np.not_equal(a[1:], a[:-1], out=keep[1:])
    return a[keep]


def _unique_pairs(rng: np.random.Generator, n: int, n_users: int, n_items: int, draw) -> tuple[np.ndarray, np.ndarray]:
    """Exactly ``n`` distinct (user, item) pairs from ``draw(m) -> (u, i)``, sorted user-major."""
    if n > n_users * n_items:
        raise ValueError(f"cannot place {n} distinct interactions in a {n_users} × {n_items} matrix")
    keys = np.empty(0, dtype=np.int64)
    m = n
    for _ in range(200):
        u, i = draw(int(m))
        keys = _sorted_unique(np.concatenate([keys, u.astype(np.int64) * n_items + i]))
        if len(keys) >= n:
            break
        m = max(int((n - len(keys)) * 1.3) + 16, 1024)
    else:  # distribution too concentrated to fill: top up uniformly
        while len(keys) < n:
            extra = rng.integers(0, n_users * n_items, size=2 * (n - len(keys)) + 16)
            keys = _sorted_unique(np.concatenate([keys, extra]))
    if len(keys) > n:
        keys = np.sort(keys[rng.permutation(len(keys))[:n]])
    return keys // n_items, keys % n_items


def _csr_interactions(u: np.ndarray, i: np.ndarray, r: np.ndarray | None, ts: np.ndarray | None,
                      n_users: int, n_items: int) -> Interactions:
    """Interactions from distinct pairs sorted user-major (no duplicate handling needed)."""
    indptr = np.concatenate([[0], np.cumsum(np.bincount(u, minlength=n_users))]).astype(np.int64)
    data = np.ones(len(u), dtype=np.float32) if r is None else r.astype(np.float32)
    m = sp.csr_matrix((data, i.astype(np.int32), indptr), shape=(n_users, n_items))
    tm = None if ts is None else sp.csr_matrix((ts.astype(np.float64), i.astype(np.int32), indptr), shape=(n_users, n_items))
    return Interactions(m, IdMap(np.arange(n_users), "user"), IdMap(np.arange(n_items), "item"), tm)


# ---------------------------------------------------------------------- explicit ratings
@dataclass
class LowRankTruth:
    """The planted model: r̂ = global_mean + user_bias[u] + item_bias[i] + user_factors[u] · item_factors[i]."""

    global_mean: float
    user_bias: np.ndarray
    item_bias: np.ndarray
    user_factors: np.ndarray
    item_factors: np.ndarray
    noise: float
    scale: tuple[float, float] | None

    def predict_indices(self, u: np.ndarray, i: np.ndarray, clip: bool = True) -> np.ndarray:
        """Noise-free planted rating of index pairs (clipped to the scale)."""
        u, i = np.asarray(u), np.asarray(i)
        r = (self.global_mean + self.user_bias[u] + self.item_bias[i]
             + np.einsum("nk,nk->n", self.user_factors[u], self.item_factors[i]))
        if clip and self.scale is not None:
            r = np.clip(r, *self.scale)
        return r


def low_rank_ratings(
    n_users: int = 1000,
    n_items: int = 500,
    rank: int = 5,
    n_ratings: int | None = None,
    density: float = 0.05,
    noise: float = 0.5,
    factor_std: float | None = None,
    bias_std: float = 0.5,
    global_mean: float = 3.5,
    scale: tuple[float, float] | None = (1.0, 5.0),
    integer: bool = False,
    timestamps: bool = True,
    random_state: Any = 0,
) -> tuple[Interactions, LowRankTruth]:
    """Explicit ratings r_ui = μ + b_u + b_i + p_uᵀq_i + ε, ε ~ N(0, noise²), clipped to ``scale``
    (and rounded when ``integer``). Observed pairs are uniform at random, distinct, ``n_ratings`` of them
    (default ``density · n_users · n_items``). Factors are N(0, factor_std²) with
    ``factor_std = 1/rank**0.25`` by default, so p_uᵀq_i has unit variance.

    A perfect model reaches RMSE ≈ ``noise`` (slightly less after clipping); ``truth.predict_indices``
    gives the noise-free ratings. User/item ids are 0..n-1; timestamps are random when asked for.
    """
    n_users, n_items, rank = _positive_int("n_users", n_users), _positive_int("n_items", n_items), _positive_int("rank", rank)
    if n_ratings is None:
        if not 0 < density <= 1:
            raise ValueError(f"density must be in (0, 1], got {density!r}")
        n_ratings = max(1, int(round(density * n_users * n_items)))
    n_ratings = _positive_int("n_ratings", n_ratings)
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise!r}")
    rng = _rng(random_state)
    fs = rank ** -0.25 if factor_std is None else factor_std
    P = rng.normal(0, fs, (n_users, rank))
    Q = rng.normal(0, fs, (n_items, rank))
    bu = rng.normal(0, bias_std, n_users)
    bi = rng.normal(0, bias_std, n_items)
    u, i = _unique_pairs(rng, n_ratings, n_users, n_items,
                         lambda m: (rng.integers(0, n_users, m), rng.integers(0, n_items, m)))
    truth = LowRankTruth(float(global_mean), bu, bi, P, Q, float(noise), None if scale is None else (float(scale[0]), float(scale[1])))
    r = truth.predict_indices(u, i, clip=False) + rng.normal(0, noise, len(u))
    if integer:
        r = np.rint(r)
    if scale is not None:
        r = np.clip(r, scale[0], scale[1])
    ts = rng.uniform(0, 1e8, len(u)).round() if timestamps else None
    return _csr_interactions(u, i, r, ts, n_users, n_items), truth


# ---------------------------------------------------------------------- implicit, power law
@dataclass
class PowerLawTruth:
    """Planted sampling distributions: P(item) ∝ item_popularity, P(user) ∝ user_activity; with
    clusters, a draw is from the user's cluster with probability ``affinity``."""

    item_popularity: np.ndarray
    user_activity: np.ndarray
    user_cluster: np.ndarray | None = None
    item_cluster: np.ndarray | None = None
    affinity: float = 0.0


def _zipf_weights(n: int, a: float, rng: np.random.Generator) -> np.ndarray:
    w = np.arange(1, n + 1, dtype=np.float64) ** -float(a)
    w = rng.permutation(w)
    return w / w.sum()


def _sample(cdf: np.ndarray, m: int, rng: np.random.Generator, shuffle: bool = True) -> np.ndarray:
    """``m`` draws from the distribution with cumulative weights ``cdf``. Sorting the uniforms first
    makes the binary searches cache-friendly (4× faster at millions of draws); the result is then
    shuffled unless the caller pairs it with independent draws anyway (``shuffle=False``)."""
    r = np.sort(rng.random(m) * cdf[-1])
    out = np.minimum(np.searchsorted(cdf, r, side="right"), len(cdf) - 1)
    return rng.permutation(out) if shuffle else out


def powerlaw_implicit(
    n_users: int = 10_000,
    n_items: int = 2_000,
    n_interactions: int = 100_000,
    item_exponent: float = 1.0,
    user_exponent: float = 0.8,
    n_clusters: int = 0,
    affinity: float = 0.8,
    timestamps: bool = False,
    random_state: Any = 0,
) -> tuple[Interactions, PowerLawTruth]:
    """Exactly ``n_interactions`` distinct implicit (user, item) pairs (value 1.0).

    Items are drawn with Zipf probabilities ∝ rank^-``item_exponent`` (ranks shuffled over item ids),
    users ∝ rank^-``user_exponent``. With ``n_clusters > 0`` users and items get random clusters and each
    draw comes, with probability ``affinity``, from the user's own cluster (popularity-weighted inside
    it) — a planted community structure that a recommender should recover. Vectorised: 200,000 users
    × 50,000 items × 5,000,000 interactions take a few seconds.
    """
    n_users, n_items = _positive_int("n_users", n_users), _positive_int("n_items", n_items)
    n_interactions = _positive_int("n_interactions", n_interactions)
    if not 0 <= affinity <= 1:
        raise ValueError(f"affinity must be in [0, 1], got {affinity!r}")
    rng = _rng(random_state)
    ip = _zipf_weights(n_items, item_exponent, rng)
    up = _zipf_weights(n_users, user_exponent, rng)
    ucdf, icdf = np.cumsum(up), np.cumsum(ip)
    truth = PowerLawTruth(ip, up)
    if n_clusters:
        n_clusters = _positive_int("n_clusters", n_clusters)
        uc = rng.integers(0, n_clusters, n_users)
        ic = rng.integers(0, n_clusters, n_items)
        order = np.argsort(ic, kind="stable")  # items grouped by cluster
        cstart = np.searchsorted(ic[order], np.arange(n_clusters + 1))
        # within-cluster cumulative probabilities shifted so cluster c occupies (c, c+1]
        w = ip[order]
        csum = np.cumsum(w)
        base = np.concatenate([[0.0], csum])[cstart[:-1]]
        tot = np.concatenate([[0.0], csum])[cstart[1:]] - base
        cl = ic[order]
        tot_safe = np.where(tot > 0, tot, 1.0)
        shifted = cl + (csum - base[cl]) / tot_safe[cl]
        empty = tot <= 0
        truth.user_cluster, truth.item_cluster, truth.affinity = uc, ic, float(affinity)

        def draw(m: int) -> tuple[np.ndarray, np.ndarray]:
            u = _sample(ucdf, m, rng, shuffle=False)  # sorted users; items are independent of order
            items = _sample(icdf, m, rng)
            inside = (rng.random(m) < affinity) & ~empty[uc[u]]
            c = uc[u[inside]]
            pos = np.searchsorted(shifted, c + rng.random(len(c)) * (1 - 1e-12), side="right")
            pos = np.clip(pos, cstart[c], cstart[c + 1] - 1)
            items[inside] = order[pos]
            return u, items
    else:
        def draw(m: int) -> tuple[np.ndarray, np.ndarray]:
            return _sample(ucdf, m, rng, shuffle=False), _sample(icdf, m, rng)

    u, i = _unique_pairs(rng, n_interactions, n_users, n_items, draw)
    ts = rng.uniform(0, 1e8, len(u)).round() if timestamps else None
    return _csr_interactions(u, i, None, ts, n_users, n_items), truth


# ---------------------------------------------------------------------- baskets
@dataclass
class BasketTruth:
    """``rules``: one row per planted rule with columns antecedent, consequent (frozensets of item
    ids), confidence (planted), antecedent_support (planted), and empirical_support /
    empirical_confidence measured on the generated baskets. ``noise_items``: ids of background items."""

    rules: pd.DataFrame
    noise_items: np.ndarray
    noise_probability: np.ndarray


def planted_baskets(
    n_baskets: int = 10_000,
    n_items: int = 200,
    rules: list[tuple[list[Any], list[Any], float, float]] | None = None,
    n_rules: int = 5,
    antecedent_size: int = 2,
    consequent_size: int = 1,
    confidence: tuple[float, float] = (0.6, 0.95),
    antecedent_support: tuple[float, float] = (0.02, 0.1),
    noise_exponent: float = 1.0,
    mean_noise_items: float = 4.0,
    random_state: Any = 0,
) -> tuple[Baskets, BasketTruth]:
    """Baskets with planted association rules of known confidence over independent background items.

    Item ids are ``0..n_items-1``. Each planted rule A → B reserves its own items (never used as noise
    nor by another rule). A basket holds all of A with probability ``antecedent_support``; given A it
    holds all of B with probability ``confidence``; B never occurs without A. So
    ``conf(A → B) = confidence`` in expectation, and ``supp(A ∪ B) = antecedent_support · confidence``.
    Background items occur independently with Zipf-shaped probabilities averaging
    ``mean_noise_items`` per basket. Pass ``rules=[(A, B, confidence, antecedent_support), ...]``
    (A, B lists of item ids) to choose them; otherwise ``n_rules`` random ones are drawn.
    """
    n_baskets, n_items = _positive_int("n_baskets", n_baskets), _positive_int("n_items", n_items)
    rng = _rng(random_state)
    if rules is None:
        need = n_rules * (antecedent_size + consequent_size)
        if need > n_items:
            raise ValueError(f"{n_rules} rules of {antecedent_size}+{consequent_size} items need {need} items, n_items={n_items}")
        pool = rng.permutation(n_items)[:need].tolist()
        rules = []
        for r in range(n_rules):
            chunk = pool[r * (antecedent_size + consequent_size):(r + 1) * (antecedent_size + consequent_size)]
            rules.append((sorted(chunk[:antecedent_size]), sorted(chunk[antecedent_size:]),
                          float(rng.uniform(*confidence)), float(rng.uniform(*antecedent_support))))
    used: set[int] = set()
    for A, B, c, s in rules:
        items = [int(x) for x in list(A) + list(B)]
        if not A or not B:
            raise ValueError("each planted rule needs a non-empty antecedent and consequent")
        if any(x < 0 or x >= n_items for x in items):
            raise ValueError(f"rule items must be in 0..{n_items - 1}, got {items}")
        if used & set(items) or len(set(items)) != len(items):
            raise ValueError("planted rules must use disjoint items")
        if not (0 <= c <= 1 and 0 <= s <= 1):
            raise ValueError(f"confidence and support must be in [0, 1], got {c}, {s}")
        used |= set(items)
    noise = np.array(sorted(set(range(n_items)) - used), dtype=np.int64)
    rows_l, cols_l = [], []
    p = np.zeros(0)
    if len(noise):
        w = _zipf_weights(len(noise), noise_exponent, rng)
        p = np.minimum(w * mean_noise_items, 1.0)
        counts = rng.binomial(n_baskets, p)
        cols_l.append(np.repeat(noise, counts))
        rows_l.append(rng.integers(0, n_baskets, counts.sum()))  # duplicates collapse; rate ≈ p
    for A, B, c, s in rules:
        has_a = np.flatnonzero(rng.random(n_baskets) < s)
        has_b = has_a[rng.random(len(has_a)) < c]
        for x in A:
            rows_l.append(has_a), cols_l.append(np.full(len(has_a), int(x)))
        for x in B:
            rows_l.append(has_b), cols_l.append(np.full(len(has_b), int(x)))
    rows = np.concatenate(rows_l) if rows_l else np.zeros(0, np.int64)
    cols = np.concatenate(cols_l) if cols_l else np.zeros(0, np.int64)
    m = sp.csr_matrix((np.ones(len(rows), dtype=np.uint8), (rows, cols)), shape=(n_baskets, n_items))
    m.sum_duplicates()
    m.data[:] = 1
    m.sort_indices()
    baskets = Baskets.from_matrix(m, IdMap(np.arange(n_items), "item"))
    mc = m.tocsc()
    recs = []
    for A, B, c, s in rules:
        a_rows = _rows_with_all(mc, [int(x) for x in A], n_baskets)
        ab_rows = _rows_with_all(mc, [int(x) for x in list(A) + list(B)], n_baskets)
        recs.append({"antecedent": frozenset(int(x) for x in A), "consequent": frozenset(int(x) for x in B),
                     "confidence": float(c), "antecedent_support": float(s),
                     "empirical_support": ab_rows / n_baskets,
                     "empirical_confidence": ab_rows / a_rows if a_rows else float("nan")})
    return baskets, BasketTruth(pd.DataFrame(recs), noise, p)


def _rows_with_all(mc: sp.csc_matrix, cols: list[int], n: int) -> int:
    hit = np.ones(n, dtype=bool)
    for c in cols:
        col = np.zeros(n, dtype=bool)
        col[mc.indices[mc.indptr[c]:mc.indptr[c + 1]]] = True
        hit &= col
    return int(hit.sum())


# ---------------------------------------------------------------------- sequences
@dataclass
class SequenceTruth:
    """A first-order Markov chain: after item i comes ``successor[i]`` with probability ``p_follow``,
    else an item drawn from ``popularity``. ``start`` draws use ``popularity`` too."""

    successor: np.ndarray
    p_follow: float
    popularity: np.ndarray
    transition_counts: dict[str, int] = field(default_factory=dict)

    def next_item_probability(self, i: int) -> np.ndarray:
        """P(next = j | current = i) for all j."""
        p = (1 - self.p_follow) * self.popularity.copy()
        p[self.successor[i]] += self.p_follow
        return p


def planted_sequences(
    n_users: int = 2000,
    n_items: int = 500,
    min_length: int = 5,
    max_length: int = 30,
    p_follow: float = 0.8,
    popularity_exponent: float = 0.5,
    timestamps: bool = True,
    random_state: Any = 0,
) -> tuple[Sequences, SequenceTruth]:
    """Sequences from a Markov chain with a planted successor per item.

    Each user's length is uniform in [min_length, max_length]. The first item and every "jump" come
    from Zipf popularity; with probability ``p_follow`` the next item is ``successor[current]`` (a random
    permutation, never the item itself). A model that learned the chain predicts the next item with
    hit rate@1 ≈ ``p_follow`` (+ a little from the jumps). Vectorised over users; a Python loop over
    positions only. Timestamps are the positions (0, 1, 2, ...), one unit apart.
    """
    n_users, n_items = _positive_int("n_users", n_users), _positive_int("n_items", n_items)
    if n_items < 2:
        raise ValueError("planted_sequences needs n_items >= 2")
    if not 1 <= min_length <= max_length:
        raise ValueError(f"need 1 <= min_length <= max_length, got {min_length}, {max_length}")
    if not 0 <= p_follow <= 1:
        raise ValueError(f"p_follow must be in [0, 1], got {p_follow!r}")
    rng = _rng(random_state)
    # successor: a derangement-like permutation (no fixed points): shift a random cycle order
    perm = rng.permutation(n_items)
    succ = np.empty(n_items, dtype=np.int64)
    succ[perm] = np.roll(perm, -1)
    pop = _zipf_weights(n_items, popularity_exponent, rng)
    cdf = np.cumsum(pop)
    lengths = rng.integers(min_length, max_length + 1, n_users)
    L = int(lengths.max())
    seq = np.empty((n_users, L), dtype=np.int64)
    seq[:, 0] = _sample(cdf, n_users, rng)
    follows = 0
    for t in range(1, L):
        f = rng.random(n_users) < p_follow
        nxt = _sample(cdf, n_users, rng)
        nxt[f] = succ[seq[f, t - 1]]
        seq[:, t] = nxt
        follows += int((f & (t < lengths)).sum())
    mask = np.arange(L)[None, :] < lengths[:, None]
    indices = seq[mask]
    ts = np.broadcast_to(np.arange(L, dtype=np.float64), (n_users, L))[mask] if timestamps else None
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    s = Sequences(indptr, indices, IdMap(np.arange(n_users), "user"), IdMap(np.arange(n_items), "item"), ts)
    return s, SequenceTruth(succ, float(p_follow), pop, {"follow_steps": follows,
                                                         "total_steps": int((lengths - 1).sum())})
