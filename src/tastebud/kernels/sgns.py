"""Skip-gram with negative sampling (SGNS) kernels for item2vec.

Only contiguous integer item indices are seen here. One call of :func:`sgns_epoch` trains one
epoch Hogwild-style (Recht et al. 2011): threads update the shared ``syn0``/``syn1`` matrices
without locks. The work is split statically into chunks of whole sentences, and every sentence
draws its random numbers from its own stream (seeded by ``seed``, the epoch and the sentence
index), so with one thread the result is exactly reproducible and with several threads it
differs only by the order in which racing updates land.

For a pair (input item ``w``, positive target ``t``) and negatives ``n_1..n_K`` drawn from the
unigram^0.75 distribution, the SGNS loss (Mikolov et al. 2013) is

    L = -log σ(u_w · v_t) - Σ_k log σ(-u_w · v_{n_k})

with ``u = syn0`` (input vectors) and ``v = syn1`` (output vectors). One SGD step with rate ``lr``
(exactly word2vec's update) is, with ``g_x = lr · (label_x - σ(u_w · v_x))``:

    v_x ← v_x + g_x u_w            for x in (t, n_1, ..., n_K)
    u_w ← u_w + Σ_x g_x v_x        (using the v_x before their update)
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

MAX_EXP = 30.0  # clip the logit only to keep exp() finite; the gradient stays exact


# ---------------------------------------------------------------------- random streams
@njit(cache=True, inline="always")
def _splitmix(state):
    """One step of splitmix64: returns (new_state, 64 random bits)."""
    state = state + np.uint64(0x9E3779B97F4A7C15)
    z = state
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return state, z


@njit(cache=True, inline="always")
def _uniform(z):
    """A float64 in [0, 1) from 64 random bits."""
    return np.float64(z >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True)
def stream_seed(seed, epoch, sentence):
    """The starting state of the random stream of ``sentence`` in ``epoch``."""
    s = np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(epoch) * np.uint64(0xD1B54A32D192ED03)
    s, z = _splitmix(s ^ (np.uint64(sentence) * np.uint64(0xA24BAED4963EE407)))
    s, z = _splitmix(z)
    return z


# ---------------------------------------------------------------------- sampling tables
@njit(cache=True)
def build_alias(weights):
    """Vose's alias table for sampling index i with probability weights[i] / sum(weights)."""
    n = len(weights)
    prob = np.empty(n, dtype=np.float64)
    alias = np.zeros(n, dtype=np.int32)
    total = 0.0
    for i in range(n):
        total += weights[i]
    scaled = np.empty(n, dtype=np.float64)
    small = np.empty(n, dtype=np.int64)
    large = np.empty(n, dtype=np.int64)
    ns = 0
    nl = 0
    for i in range(n):
        scaled[i] = weights[i] * n / total
        if scaled[i] < 1.0:
            small[ns] = i
            ns += 1
        else:
            large[nl] = i
            nl += 1
    while ns > 0 and nl > 0:
        ns -= 1
        s = small[ns]
        nl -= 1
        g = large[nl]
        prob[s] = scaled[s]
        alias[s] = g
        scaled[g] = (scaled[g] + scaled[s]) - 1.0
        if scaled[g] < 1.0:
            small[ns] = g
            ns += 1
        else:
            large[nl] = g
            nl += 1
    while nl > 0:
        nl -= 1
        prob[large[nl]] = 1.0
        alias[large[nl]] = large[nl]
    while ns > 0:  # only by rounding error
        ns -= 1
        prob[small[ns]] = 1.0
        alias[small[ns]] = small[ns]
    return prob, alias


@njit(cache=True, inline="always")
def _draw_alias(prob, alias, z):
    n = len(prob)
    # Lemire's multiply-shift instead of a modulo (n < 2**32)
    i = np.int64(((z >> np.uint64(32)) * np.uint64(n)) >> np.uint64(32))
    u = np.float64(z & np.uint64(0xFFFFFFFF)) * (1.0 / 4294967296.0)
    if u < prob[i]:
        return i
    return np.int64(alias[i])


def keep_probabilities(counts: np.ndarray, sample: float) -> np.ndarray:
    """word2vec's frequent-item subsampling: keep an occurrence of item i with probability
    min(1, (sqrt(c_i / (s·N)) + 1) · s·N / c_i), where N = Σ c and s = ``sample`` (0 = keep all)."""
    c = np.asarray(counts, dtype=np.float64)
    if sample <= 0:
        return np.ones(len(c), dtype=np.float64)
    thr = sample * c.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        p = (np.sqrt(c / thr) + 1.0) * thr / c
    p[~np.isfinite(p)] = 1.0
    return np.minimum(p, 1.0)


# ---------------------------------------------------------------------- the update
@njit(cache=True, inline="always")
def _dot(a, ia, b, ib, dim):
    # eight independent accumulators: instruction-level parallelism (and SIMD) without fastmath,
    # with a fixed summation order that keeps results reproducible
    s0 = np.float32(0.0)
    s1 = np.float32(0.0)
    s2 = np.float32(0.0)
    s3 = np.float32(0.0)
    s4 = np.float32(0.0)
    s5 = np.float32(0.0)
    s6 = np.float32(0.0)
    s7 = np.float32(0.0)
    d = 0
    while d + 8 <= dim:
        s0 += a[ia, d] * b[ib, d]
        s1 += a[ia, d + 1] * b[ib, d + 1]
        s2 += a[ia, d + 2] * b[ib, d + 2]
        s3 += a[ia, d + 3] * b[ib, d + 3]
        s4 += a[ia, d + 4] * b[ib, d + 4]
        s5 += a[ia, d + 5] * b[ib, d + 5]
        s6 += a[ia, d + 6] * b[ib, d + 6]
        s7 += a[ia, d + 7] * b[ib, d + 7]
        d += 8
    while d < dim:
        s0 += a[ia, d] * b[ib, d]
        d += 1
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


@njit(cache=True, inline="always")
def _sigmoid(x):
    if x > MAX_EXP:
        x = MAX_EXP
    elif x < -MAX_EXP:
        x = -MAX_EXP
    return 1.0 / (1.0 + np.exp(-x))


@njit(cache=True)
def sgns_pair_update(syn0, syn1, w, targets, lr, neu1e):
    """One SGNS step for input item ``w``: ``targets[0]`` is the positive, ``targets[1:]`` the
    negatives. Updates ``syn0[w]`` and ``syn1[targets]`` in place; returns the pair's loss
    (before the step). ``neu1e`` is a float32 scratch vector of length dim."""
    dim = syn0.shape[1]
    for d in range(dim):
        neu1e[d] = 0.0
    loss = 0.0
    for j in range(len(targets)):
        t = targets[j]
        f = _dot(syn0, w, syn1, t, dim)
        label = 1.0 if j == 0 else 0.0
        p = _sigmoid(f)
        if j == 0:
            loss -= np.log(max(p, 1e-30))
        else:
            loss -= np.log(max(1.0 - p, 1e-30))
        g = np.float32((label - p) * lr)
        for d in range(dim):
            neu1e[d] += g * syn1[t, d]
        for d in range(dim):
            syn1[t, d] += g * syn0[w, d]
    for d in range(dim):
        syn0[w, d] += neu1e[d]
    return loss


@njit(cache=True, inline="always")
def _train_pair(syn0, syn1, w, t, lr, neu1e, negative, prob, alias, state):
    """word2vec's inner step with negatives drawn on the fly (a negative equal to the positive
    is skipped, as in word2vec). Returns the advanced random state."""
    dim = syn0.shape[1]
    for d in range(dim):
        neu1e[d] = 0.0
    for j in range(negative + 1):
        if j == 0:
            target = t
            label = np.float32(1.0)
        else:
            state, z = _splitmix(state)
            target = _draw_alias(prob, alias, z)
            if target == t:
                continue
            label = np.float32(0.0)
        f = _dot(syn0, w, syn1, target, dim)
        if f > MAX_EXP:
            f = MAX_EXP
        elif f < -MAX_EXP:
            f = -MAX_EXP
        g = (label - np.float32(1.0 / (1.0 + np.exp(-f)))) * lr
        for d in range(dim):
            v = syn1[target, d]
            neu1e[d] += g * v
            syn1[target, d] = v + g * syn0[w, d]
    for d in range(dim):
        syn0[w, d] += neu1e[d]
    return state


@njit(cache=True)
def learning_rate(lr0, min_lr, progress):
    """Linear decay from ``lr0`` (progress 0) to ``min_lr`` (progress 1), never below ``min_lr``."""
    lr = lr0 - (lr0 - min_lr) * progress
    if lr < min_lr:
        lr = min_lr
    return lr


@njit(cache=True)
def rate_blocks(indptr, block_items):
    """For each sentence, the index of the first sentence of its learning-rate block: sentences
    are taken in order into blocks of at most ``block_items`` items (a longer sentence is a block of
    its own), as gensim groups sentences into jobs of ``batch_words=10000``."""
    n = len(indptr) - 1
    out = np.empty(n, dtype=np.int64)
    first = 0
    size = 0
    for s in range(n):
        ln = indptr[s + 1] - indptr[s]
        if size + ln > block_items and s > first:
            first = s
            size = 0
        size += ln
        out[s] = first
    return out


@njit(cache=True, parallel=True)
def sgns_epoch(syn0, syn1, corpus, indptr, chunks, keep_prob, prob, alias, window, negative,
               basket, lr0, min_lr, sents_before, sents_total, rate_from, seed, epoch, n_threads):
    """Train one epoch over sentences ``corpus[indptr[s]:indptr[s+1]]``.

    ``chunks`` (n_chunks + 1,) splits the sentences into contiguous blocks, processed in parallel.
    ``basket``: the context of an item is every other (kept) item of its sentence; otherwise a
    window of ``b`` items on each side with ``b`` drawn uniformly from 1..window per position
    (word2vec's window shrink). The learning rate decays linearly with the fraction of sentences
    processed and is updated once per block of sentences (:func:`rate_blocks`): sentence s trains at
    ``max(min_lr, lr0 - (lr0 - min_lr) · (sents_before + rate_from[s]) / sents_total)``, with
    ``rate_from[s]`` the first sentence of its block (:func:`learning_rate`). With blocks of
    10,000 items this is gensim's schedule when it is given the corpus (a rate per job of
    ≤ 10,000 words, from the sentences pushed before the job); ``rate_from = arange`` updates the
    rate at every sentence.
    ``n_threads`` (numba's current thread count) only sets the order of the chunks.
    Returns the number of (input, target) pairs trained.
    """
    n_chunks = len(chunks) - 1
    dim = syn0.shape[1]
    pairs_per_chunk = np.zeros(n_chunks, dtype=np.int64)
    max_len = 0
    n_sent = len(indptr) - 1
    for s in range(n_sent):
        ln = indptr[s + 1] - indptr[s]
        if ln > max_len:
            max_len = ln
    # numba splits a prange into one contiguous block of iterations per thread; map iterations to
    # chunks so that the threads walk through the corpus side by side (thread k takes chunks
    # k, k + T, k + 2T, ...) and so train with nearly the same learning rate at any moment
    n_thr = max(1, n_threads)
    block = (n_chunks + n_thr - 1) // n_thr
    for it in prange(block * n_thr):
        c = (it % block) * n_thr + it // block
        if c >= n_chunks:
            continue
        neu1e = np.empty(dim, dtype=np.float32)
        kept = np.empty(max_len, dtype=np.int64)
        npairs = 0
        for s in range(chunks[c], chunks[c + 1]):
            start = indptr[s]
            end = indptr[s + 1]
            if end - start < 2:
                continue
            state = stream_seed(seed, epoch, s)
            lr32 = np.float32(learning_rate(lr0, min_lr, (sents_before + rate_from[s]) / sents_total))
            nk = 0
            for p in range(start, end):
                w = corpus[p]
                if keep_prob[w] < 1.0:
                    state, z = _splitmix(state)
                    if _uniform(z) >= keep_prob[w]:
                        continue
                kept[nk] = w
                nk += 1
            if nk < 2:
                continue
            for i in range(nk):
                t = kept[i]
                if basket:
                    lo = 0
                    hi = nk
                else:
                    state, z = _splitmix(state)
                    b = np.int64(z % np.uint64(window))
                    lo = i - window + b
                    hi = i + window - b + 1
                    if lo < 0:
                        lo = 0
                    if hi > nk:
                        hi = nk
                for j in range(lo, hi):
                    if j == i:
                        continue
                    state = _train_pair(syn0, syn1, kept[j], t, lr32, neu1e, negative, prob, alias, state)
                    npairs += 1
        pairs_per_chunk[c] = npairs
    return pairs_per_chunk.sum()


@njit(cache=True)
def balanced_chunks(indptr, n_chunks):
    """Split sentences into ``n_chunks`` contiguous blocks of about equal number of items."""
    n_sent = len(indptr) - 1
    total = indptr[n_sent]
    out = np.empty(n_chunks + 1, dtype=np.int64)
    out[0] = 0
    s = 0
    for c in range(1, n_chunks):
        target = total * c // n_chunks
        while s < n_sent and indptr[s] < target:
            s += 1
        out[c] = s
    out[n_chunks] = n_sent
    return out


@njit(cache=True, parallel=True)
def history_vectors(vectors, hist_indptr, hist_indices, decay, normalize):
    """Recency-weighted mean of item vectors per history: weight decay**(n-1-j) for the j-th of
    n items (the last item weighs 1). ``normalize``: average unit vectors."""
    n = len(hist_indptr) - 1
    dim = vectors.shape[1]
    out = np.zeros((n, dim), dtype=np.float32)
    for h in prange(n):
        a = hist_indptr[h]
        b = hist_indptr[h + 1]
        wsum = 0.0
        w = 1.0
        for p in range(b - 1, a - 1, -1):
            i = hist_indices[p]
            scale = w
            if normalize:
                nrm = 0.0
                for d in range(dim):
                    nrm += vectors[i, d] * vectors[i, d]
                nrm = np.sqrt(nrm)
                if nrm > 0:
                    scale = w / nrm
            for d in range(dim):
                out[h, d] += np.float32(scale * vectors[i, d])
            wsum += w
            w *= decay
        if wsum > 0:
            for d in range(dim):
                out[h, d] = np.float32(out[h, d] / wsum)
    return out


def sgns_pair_update_reference(syn0: np.ndarray, syn1: np.ndarray, w: int, targets: np.ndarray, lr: float) -> float:
    """Pure-numpy reference of :func:`sgns_pair_update` (same in-place semantics, for tests):
    g_x = lr·(label_x − σ(u_w·v_x)); v_x += g_x·u_w; u_w += Σ_x g_x·v_x (old v_x). Returns the loss."""
    u = syn0[w].copy()
    neu1e = np.zeros_like(u)
    loss = 0.0
    for j, t in enumerate(np.asarray(targets)):
        f = float(np.clip(u @ syn1[t], -MAX_EXP, MAX_EXP))
        p = 1.0 / (1.0 + np.exp(-f))
        label = 1.0 if j == 0 else 0.0
        loss -= np.log(p) if j == 0 else np.log(1.0 - p)
        g = (label - p) * lr
        neu1e += g * syn1[t]
        syn1[t] += g * u
    syn0[w] += neu1e
    return loss
