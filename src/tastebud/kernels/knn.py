"""Neighbourhood kernels: sparse-sparse products with a per-row top-k, co-rated statistics for
Surprise-style similarities, sparse scoring with a top-k, and the k-NN rating rule.

All work on CSR arrays of integer indices. Rows are split into a fixed number of contiguous
blocks (``_n_blocks``) run with ``prange``; each block owns dense scratch vectors of the column
count (an accumulator, a counter, a touched list) that are cleared entry by entry, so memory is
O(blocks × columns + output) — never a dense rows × columns matrix — and every row is computed
the same way whatever the thread count.

``pair_similarities``: for each row i of E (entities × features) and F = Eᵀ (features × entities),
accumulates aᵢⱼ = Σ_f E[i, f]·F[f, j] over the co-occurring j (SMMP, Gustavson's row-by-row
product), turns it into a similarity by ``mode`` and keeps either the top-k of each row or every
pair that passes the filters. With ``implicit_ties`` the top-k follows implicit's
``all_pairs_knn`` exactly: candidates are offered in reverse order of first touch, a candidate
enters a full list only with a strictly larger score than the list's minimum, and the evicted
entry is the smallest (score, index) pair.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .topk import _sift_down, _worse

# pair_similarities modes (s = similarity from the accumulated product a, the row i, the column j)
MODE_DOT = 0  # a·pa[i]·pb[j] / (1 + shrink·sa[i]·sb[j])        (cosine family, asymmetric cosine)
MODE_JACCARD = 1  # a / (pa[i] + pa[j] − a + shrink)               (pa = set sizes)
MODE_LIFT = 2  # a / (pa[i]·pa[j])                                 (SAR lift)
MODE_COSINE_COUNTS = 3  # a / sqrt(pa[i]·pa[j])                    (SAR cosine)
MODE_INCLUSION = 4  # a / min(pa[i], pa[j])                        (SAR inclusion index)
MODE_COUNTS = 5  # a                                               (SAR co-occurrence counts)

# corated_similarities modes (Surprise's definitions over co-rated features only)
CO_COSINE = 0
CO_MSD = 1
CO_PEARSON = 2
CO_PEARSON_BASELINE = 3  # cosine of baseline residuals × (n − 1) / (n − 1 + shrink)
CO_SLOPE_ONE = 4  # mean of (r_i − r_j) over co-rated features (kept for every co-rated pair)

# knn_predict rules
RULE_BASIC = 0
RULE_MEANS = 1
RULE_ZSCORE = 2
RULE_BASELINE = 3


#: rows are split into at most this many contiguous blocks (the units of parallel work)
MAX_BLOCKS = 256


@njit(cache=True)
def _n_blocks(n):
    return max(1, min(n, MAX_BLOCKS))


def n_blocks(n: int) -> int:
    """``_n_blocks`` for Python callers (the block range a chunked call covers)."""
    return max(1, min(int(n), MAX_BLOCKS))


@njit(cache=True, inline="always")
def _block(b, nb, n):
    return (b * n) // nb, ((b + 1) * n) // nb


# ---------------------------------------------------------------------------- bounded heaps
@njit(cache=True, inline="always")
def _imp_less(v, i, w, j):
    """(v, i) < (w, j) lexicographically: implicit's std::greater min-heap order."""
    return v < w or (v == w and i < j)


@njit(cache=True, inline="always")
def _imp_sift_down(hv, hi, pos, size):
    v = hv[pos]
    i = hi[pos]
    while True:
        c = 2 * pos + 1
        if c >= size:
            break
        if c + 1 < size and _imp_less(hv[c + 1], hi[c + 1], hv[c], hi[c]):
            c += 1
        if _imp_less(hv[c], hi[c], v, i):
            hv[pos] = hv[c]
            hi[pos] = hi[c]
            pos = c
        else:
            break
    hv[pos] = v
    hi[pos] = i


@njit(cache=True, inline="always")
def _imp_offer(hv, hi, size, k, v, j):
    """implicit's TopK: push while not full; when full, replace the minimum pair only if v is
    strictly larger than its score. Returns the new size."""
    if size < k:
        pos = size
        size += 1
        while pos > 0:
            p = (pos - 1) // 2
            if _imp_less(v, j, hv[p], hi[p]):
                hv[pos] = hv[p]
                hi[pos] = hi[p]
                pos = p
            else:
                break
        hv[pos] = v
        hi[pos] = j
    elif v > hv[0]:
        hv[0] = v
        hi[0] = j
        _imp_sift_down(hv, hi, 0, size)
    return size


@njit(cache=True, inline="always")
def _offer(hv, hi, size, k, v, j):
    """tastebud's order (higher score first, then lower index), candidates in any order; the root
    is the worst kept entry. Returns the new size."""
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
    elif _worse(hv[0], hi[0], v, j):
        hv[0] = v
        hi[0] = j
        _sift_down(hv, hi, 0, size)
    return size


@njit(cache=True, inline="always")
def _pop_sorted(hv, hi, size, out_val, out_idx, base):
    """Empty a tastebud-order heap into out[base:base+size], best first."""
    for t in range(size - 1, -1, -1):
        out_val[base + t] = hv[0]
        out_idx[base + t] = hi[0]
        hv[0] = hv[t]
        hi[0] = hi[t]
        _sift_down(hv, hi, 0, t)


# ---------------------------------------------------------------------------- similarities
@njit(cache=True)
def _finish(mode, a, i, j, pa, pb, sa, sb, shrink):
    if mode == MODE_DOT:
        s = a * pa[i] * pb[j]
        if shrink > 0.0:
            s = s / (1.0 + shrink * sa[i] * sb[j])
        return s
    if mode == MODE_JACCARD:
        return a / (pa[i] + pa[j] - a + shrink)
    if mode == MODE_LIFT:
        return a / (pa[i] * pa[j])
    if mode == MODE_COSINE_COUNTS:
        return a / np.sqrt(pa[i] * pa[j])
    if mode == MODE_INCLUSION:
        return a / min(pa[i], pa[j])
    return a


@njit(cache=True)
def _accumulate_sparse(i, E_indptr, E_indices, E_data, F_indptr, F_indices, F_data, acc, cnt, touched):
    """aᵢⱼ into acc, co-occurrence counts into cnt, the touched j in first-touch order; returns their number."""
    nt = 0
    for p in range(E_indptr[i], E_indptr[i + 1]):
        f = E_indices[p]
        w1 = np.float64(E_data[p])
        for q in range(F_indptr[f], F_indptr[f + 1]):
            j = F_indices[q]
            if cnt[j] == 0:
                touched[nt] = j
                nt += 1
            acc[j] += np.float64(F_data[q]) * w1
            cnt[j] += 1
    return nt


@njit(cache=True)
def _accumulate_dense(i, E_indptr, E_indices, E_data, F_indptr, F_indices, F_data, acc, cnt, use_count):
    """Same sums without the touched list (branch-free; the caller scans every column). Without
    ``use_count`` (all data > 0, no minimum count) a column is touched iff its sum is > 0, and
    cnt[j] is set to 1 for those."""
    for p in range(E_indptr[i], E_indptr[i + 1]):
        f = E_indices[p]
        w1 = np.float64(E_data[p])
        if use_count:
            for q in range(F_indptr[f], F_indptr[f + 1]):
                j = F_indices[q]
                acc[j] += np.float64(F_data[q]) * w1
                cnt[j] += 1
        else:
            for q in range(F_indptr[f], F_indptr[f + 1]):
                acc[F_indices[q]] += np.float64(F_data[q]) * w1
    if not use_count:
        for j in range(len(acc)):
            if acc[j] > 0.0:
                cnt[j] = 1


@njit(cache=True, inline="always")
def _keep(j, i, c, s, min_count, include_self, positive_only):
    if c < min_count or (j == i and not include_self):
        return False
    return not (positive_only and not s > 0.0)


@njit(cache=True, parallel=True)
def pair_similarities(E_indptr, E_indices, E_data, F_indptr, F_indices, F_data, n_cols,
                      mode, pa, pb, sa, sb, shrink, min_count, include_self, positive_only,
                      k, implicit_ties, count_only, use_count, row_start, row_n, out_idx, out_val,
                      b_lo, b_hi):  # pragma: no cover - compiled
    """Similarities of every row entity of E to the entities it co-occurs with.

    ``k > 0``: the best ``k`` per row are written at ``row_start[i]`` (sorted by column), their
    number in ``row_n[i]``. ``k <= 0``: every pair passing the filters is kept; with
    ``count_only`` only ``row_n`` is filled (the first of two passes), otherwise the pairs are
    written at ``row_start[i]`` sorted by column. Filters: at least ``min_count`` co-occurring
    features, ``j != i`` unless ``include_self``, ``s > 0`` when ``positive_only``. ``use_count``
    must be set unless every value of E and F is > 0 and ``min_count <= 1``.

    A row whose products reach at least a quarter of the columns is accumulated without a
    touched list and scanned densely; with ``implicit_ties`` such a row is redone the sparse way
    (first-touch order) only when the k-th place is tied, the one case where order matters.

    Only the row blocks ``b_lo <= b < b_hi`` of the ``_n_blocks(n)`` are computed (callers that
    show progress run the blocks in a few calls; rows are independent, so results are the same)."""
    n = len(E_indptr) - 1
    nb = _n_blocks(n)
    kk = max(k, 1)
    plain = mode == MODE_DOT and shrink == 0.0  # s = a: skip the finishing call in the hot scan
    if plain:
        for t in range(len(pa)):
            if pa[t] != 1.0 or pb[t] != 1.0:
                plain = False
                break
    for b in prange(b_lo, min(b_hi, nb)):
        lo, hi = _block(b, nb, n)
        acc = np.zeros(n_cols, dtype=np.float64)
        cnt = np.zeros(n_cols, dtype=np.int64)
        touched = np.empty(n_cols, dtype=np.int64)
        hv = np.empty(kk, dtype=np.float64)
        hidx = np.empty(kk, dtype=np.int64)
        for i in range(lo, hi):
            work = 0
            for p in range(E_indptr[i], E_indptr[i + 1]):
                f = E_indices[p]
                work += F_indptr[f + 1] - F_indptr[f]
            dense = 4 * work >= n_cols
            base = row_start[i]
            if dense:
                _accumulate_dense(i, E_indptr, E_indices, E_data, F_indptr, F_indices, F_data, acc, cnt, use_count)
                if k > 0:
                    size = 0
                    for j in range(n_cols):  # ascending j: an equal value never displaces
                        c = cnt[j]
                        if c == 0:
                            continue
                        if plain:
                            s = acc[j]
                        else:
                            s = _finish(mode, acc[j], i, j, pa, pb, sa, sb, shrink)
                            acc[j] = s
                        if not _keep(j, i, c, s, min_count, include_self, positive_only):
                            cnt[j] = 0
                            continue
                        if size < k or s > hv[0]:
                            size = _offer(hv, hidx, size, k, s, j)
                    tied = False
                    if implicit_ties and size == k:
                        vk = hv[0]  # the k-th best value: is one of its equals left out?
                        n_in = 0
                        for t in range(size):
                            if hv[t] == vk:
                                n_in += 1
                        n_all = 0
                        for j in range(n_cols):
                            if cnt[j] > 0 and acc[j] == vk:
                                n_all += 1
                        tied = n_all > n_in
                    for j in range(n_cols):
                        acc[j] = 0.0
                        cnt[j] = 0
                    if not tied:
                        order = np.argsort(hidx[:size])
                        for t in range(size):
                            out_idx[base + t] = hidx[order[t]]
                            out_val[base + t] = hv[order[t]]
                        row_n[i] = size
                        continue
                else:
                    m = 0
                    for j in range(n_cols):
                        c = cnt[j]
                        if c == 0:
                            continue
                        a = acc[j]
                        acc[j] = 0.0
                        cnt[j] = 0
                        s = _finish(mode, a, i, j, pa, pb, sa, sb, shrink)
                        if _keep(j, i, c, s, min_count, include_self, positive_only):
                            if not count_only:
                                out_idx[base + m] = j
                                out_val[base + m] = s
                            m += 1
                    row_n[i] = m
                    continue
            nt = _accumulate_sparse(i, E_indptr, E_indices, E_data, F_indptr, F_indices, F_data, acc, cnt, touched)
            if k > 0:
                size = 0
                for t in range(nt - 1, -1, -1):  # implicit's linked list: reverse first-touch order
                    j = touched[t]
                    a = acc[j]
                    c = cnt[j]
                    acc[j] = 0.0
                    cnt[j] = 0
                    s = _finish(mode, a, i, j, pa, pb, sa, sb, shrink)
                    if not _keep(j, i, c, s, min_count, include_self, positive_only):
                        continue
                    if implicit_ties:
                        size = _imp_offer(hv, hidx, size, k, s, j)
                    else:
                        size = _offer(hv, hidx, size, k, s, j)
                order = np.argsort(hidx[:size])
                for t in range(size):
                    out_idx[base + t] = hidx[order[t]]
                    out_val[base + t] = hv[order[t]]
                row_n[i] = size
            else:
                srt = np.sort(touched[:nt])
                m = 0
                for t in range(nt):
                    j = srt[t]
                    a = acc[j]
                    c = cnt[j]
                    acc[j] = 0.0
                    cnt[j] = 0
                    s = _finish(mode, a, i, j, pa, pb, sa, sb, shrink)
                    if _keep(j, i, c, s, min_count, include_self, positive_only):
                        if not count_only:
                            out_idx[base + m] = j
                            out_val[base + m] = s
                        m += 1
                row_n[i] = m


@njit(cache=True, parallel=True)
def cooccurrence_counts(E_indptr, E_indices, F_indptr, F_indices, n_cols, row_n):  # pragma: no cover - compiled
    """row_n[i] = number of distinct j co-occurring with row i (the symbolic pass: an upper bound
    on every row of a kept-pairs result)."""
    n = len(E_indptr) - 1
    nb = _n_blocks(n)
    for b in prange(nb):
        lo, hi = _block(b, nb, n)
        stamp = np.full(n_cols, -1, dtype=np.int64)
        for i in range(lo, hi):
            c = 0
            for p in range(E_indptr[i], E_indptr[i + 1]):
                f = E_indices[p]
                for q in range(F_indptr[f], F_indptr[f + 1]):
                    j = F_indices[q]
                    if stamp[j] != i:
                        stamp[j] = i
                        c += 1
            row_n[i] = c


@njit(cache=True)
def _corated_accumulate(i, mode, E_indptr, E_indices, E_data, F_indptr, F_indices, F_data,
                        freq, prods, sqi, sqj, si, sj):
    for p in range(E_indptr[i], E_indptr[i + 1]):
        f = E_indices[p]
        ri = np.float64(E_data[p])
        q0 = F_indptr[f]
        q1 = F_indptr[f + 1]
        if mode == CO_MSD:
            for q in range(q0, q1):
                j = F_indices[q]
                d = ri - np.float64(F_data[q])
                prods[j] += d * d
                freq[j] += 1
        elif mode == CO_SLOPE_ONE:
            for q in range(q0, q1):
                j = F_indices[q]
                prods[j] += ri - np.float64(F_data[q])
                freq[j] += 1
        elif mode == CO_PEARSON:
            for q in range(q0, q1):
                j = F_indices[q]
                rj = np.float64(F_data[q])
                prods[j] += ri * rj
                sqi[j] += ri * ri
                sqj[j] += rj * rj
                si[j] += ri
                sj[j] += rj
                freq[j] += 1
        else:  # cosine, pearson_baseline
            for q in range(q0, q1):
                j = F_indices[q]
                rj = np.float64(F_data[q])
                prods[j] += ri * rj
                sqi[j] += ri * ri
                sqj[j] += rj * rj
                freq[j] += 1


@njit(cache=True, inline="always")
def _corated_value(mode, c, pr, a2, b2, sa, sb, shrink):
    if mode == CO_SLOPE_ONE:
        return pr / c
    if mode == CO_COSINE:
        return pr / np.sqrt(a2 * b2)
    if mode == CO_MSD:
        return 1.0 / (pr / c + 1.0)
    if mode == CO_PEARSON:
        den = np.sqrt((c * a2 - sa * sa) * (c * b2 - sb * sb))
        return 0.0 if den == 0.0 else (c * pr - sa * sb) / den
    s = pr / np.sqrt(a2 * b2)
    return s * ((c - 1.0) / (c - 1.0 + shrink))


@njit(cache=True, parallel=True)
def corated_similarities(E_indptr, E_indices, E_data, F_indptr, F_indices, F_data, n_cols,
                         mode, shrink, min_support, include_self,
                         row_start, row_n, out_idx, out_val, b_lo, b_hi):  # pragma: no cover - compiled
    """Surprise's similarities between row entities over their co-rated features only.

    With n co-rated features, Σ over them: cosine = Σrᵢrⱼ / √(Σrᵢ² Σrⱼ²); msd = 1 / (Σ(rᵢ − rⱼ)²/n + 1);
    pearson = (nΣrᵢrⱼ − ΣrᵢΣrⱼ) / √((nΣrᵢ² − (Σrᵢ)²)(nΣrⱼ² − (Σrⱼ)²)) (0 when the denominator is 0);
    pearson_baseline = the cosine formula on residuals (E_data/F_data hold r − b) times
    (n − 1)/(n − 1 + shrink); slope one = Σ(rᵢ − rⱼ)/n. Pairs with n < min_support are dropped
    and, except for slope one (which keeps every co-rated pair), so are similarities ≤ 0 (the
    k-NN rules only use positive ones). The self pair gets 1 (slope one: 0) when
    ``include_self``. Row i is written at ``row_start[i]`` (room for ``cooccurrence_counts``
    entries), sorted by column; ``row_n[i]`` receives the number kept. Only the row blocks
    ``b_lo <= b < b_hi`` are computed (see ``pair_similarities``)."""
    n = len(E_indptr) - 1
    nb = _n_blocks(n)
    for b in prange(b_lo, min(b_hi, nb)):
        lo, hi = _block(b, nb, n)
        freq = np.zeros(n_cols, dtype=np.int64)
        prods = np.zeros(n_cols, dtype=np.float64)
        sqi = np.zeros(n_cols, dtype=np.float64)
        sqj = np.zeros(n_cols, dtype=np.float64)
        si = np.zeros(n_cols, dtype=np.float64)
        sj = np.zeros(n_cols, dtype=np.float64)
        touched = np.empty(n_cols, dtype=np.int64)
        for i in range(lo, hi):
            _corated_accumulate(i, mode, E_indptr, E_indices, E_data, F_indptr, F_indices, F_data,
                                freq, prods, sqi, sqj, si, sj)
            work = 0
            for p in range(E_indptr[i], E_indptr[i + 1]):
                work += F_indptr[E_indices[p] + 1] - F_indptr[E_indices[p]]
            if 4 * work >= n_cols:  # dense row: scan every column
                nt = n_cols
                for j in range(n_cols):
                    touched[j] = j
            else:  # sparse row: collect the touched columns (a second walk), sorted
                nt = 0
                for p in range(E_indptr[i], E_indptr[i + 1]):
                    f = E_indices[p]
                    for q in range(F_indptr[f], F_indptr[f + 1]):
                        j = F_indices[q]
                        if freq[j] > 0:
                            freq[j] = -freq[j]
                            touched[nt] = j
                            nt += 1
                for t in range(nt):
                    freq[touched[t]] = -freq[touched[t]]
                touched[:nt] = np.sort(touched[:nt])
            m = 0
            base = row_start[i]
            for t in range(nt):  # ascending: the row comes out sorted
                j = touched[t]
                c = freq[j]
                if c == 0:
                    continue
                pr = prods[j]
                a2 = sqi[j]
                b2 = sqj[j]
                sa = si[j]
                sb = sj[j]
                freq[j] = 0
                prods[j] = 0.0
                sqi[j] = 0.0
                sqj[j] = 0.0
                si[j] = 0.0
                sj[j] = 0.0
                if j == i:
                    if not include_self:
                        continue
                    s = 0.0 if mode == CO_SLOPE_ONE else 1.0
                else:
                    if c < min_support:
                        continue
                    s = _corated_value(mode, np.float64(c), pr, a2, b2, sa, sb, shrink)
                    if mode != CO_SLOPE_ONE and not s > 0.0:
                        continue
                out_idx[base + m] = j
                out_val[base + m] = s
                m += 1
            row_n[i] = m


# ---------------------------------------------------------------------------- scoring
@njit(cache=True, parallel=True)
def score_topk(Q_indptr, Q_indices, Q_data, S_indptr, S_indices, S_data, n_items,
               X_indptr, X_indices, cand, k, out_idx, out_val):  # pragma: no cover - compiled
    """Top-``k`` of sᵣ = Σ_{(m, w) ∈ Q[r]} w·S[m, :] for every row r of Q, in float64.

    Items in row r of X are excluded (seen items; pass an empty X to keep them); when ``cand``
    is non-empty only items with ``cand[j]`` are ranked. Items no neighbour reaches score 0 and
    compete as such (so a row always gets ``k`` results when ``k`` candidates exist); order:
    higher score first, then lower index. Missing places get index 0 and score −inf."""
    n = len(Q_indptr) - 1
    nb = _n_blocks(n)
    use_x = len(X_indptr) > 0
    use_c = len(cand) > 0
    for b in prange(nb):
        lo, hi = _block(b, nb, n)
        acc = np.zeros(n_items, dtype=np.float64)
        mark = np.zeros(n_items, dtype=np.int8)  # 1 touched, 2 excluded
        touched = np.empty(n_items, dtype=np.int64)
        hv = np.empty(k, dtype=np.float64)
        hidx = np.empty(k, dtype=np.int64)
        for r in range(lo, hi):
            work = 0
            for p in range(Q_indptr[r], Q_indptr[r + 1]):
                m = Q_indices[p]
                work += S_indptr[m + 1] - S_indptr[m]
            if use_x:
                for p in range(X_indptr[r], X_indptr[r + 1]):
                    mark[X_indices[p]] = 2
            size = 0
            if 4 * work >= n_items:  # dense row: no touched list; every item competes with its sum
                for p in range(Q_indptr[r], Q_indptr[r + 1]):
                    m = Q_indices[p]
                    w = np.float64(Q_data[p])
                    for q in range(S_indptr[m], S_indptr[m + 1]):
                        acc[S_indices[q]] += np.float64(S_data[q]) * w
                for j in range(n_items):  # ascending j: an equal value never displaces
                    v = acc[j]
                    acc[j] = 0.0
                    if mark[j] == 0 and (not use_c or cand[j]) and (size < k or v > hv[0]):
                        size = _offer(hv, hidx, size, k, v, j)
            else:
                nt = 0
                for p in range(Q_indptr[r], Q_indptr[r + 1]):
                    m = Q_indices[p]
                    w = np.float64(Q_data[p])
                    for q in range(S_indptr[m], S_indptr[m + 1]):
                        j = S_indices[q]
                        if mark[j] == 0:
                            mark[j] = 1
                            touched[nt] = j
                            nt += 1
                        acc[j] += np.float64(S_data[q]) * w
                for t in range(nt):
                    j = touched[t]
                    if mark[j] == 1 and (not use_c or cand[j]):
                        size = _offer(hv, hidx, size, k, acc[j], j)
                if size < k or hv[0] <= 0.0:  # items no neighbour reached (score 0) may still place
                    for j in range(n_items):
                        if mark[j] == 0 and (not use_c or cand[j]):
                            if size == k and (hv[0] > 0.0 or (hv[0] == 0.0 and hidx[0] < j)):
                                break
                            size = _offer(hv, hidx, size, k, 0.0, j)
                for t in range(nt):
                    j = touched[t]
                    acc[j] = 0.0
                    if mark[j] == 1:
                        mark[j] = 0
            base = r * k
            for t in range(size, k):
                out_idx[base + t] = 0
                out_val[base + t] = -np.inf
            _pop_sorted(hv, hidx, size, out_val, out_idx, base)
            if use_x:
                for p in range(X_indptr[r], X_indptr[r + 1]):
                    mark[X_indices[p]] = 0
                    acc[X_indices[p]] = 0.0  # excluded items were summed but never listed


# ---------------------------------------------------------------------------- k-NN rating rule
@njit(cache=True)
def _kth_largest(a, m, kth):
    """The kth-largest value (1-based) of a[:m]; reorders a[:m] in place (Hoare quickselect with
    a median-of-three pivot, no allocation)."""
    lo = 0
    hi = m - 1
    target = m - kth  # index of the answer in ascending order
    while lo < hi:
        mid = (lo + hi) // 2
        x, y, z = a[lo], a[mid], a[hi]
        pivot = max(min(x, y), min(max(x, y), z))
        i = lo
        j = hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                t = a[i]
                a[i] = a[j]
                a[j] = t
                i += 1
                j -= 1
        if target <= j:
            hi = j
        elif target >= i:
            lo = i
        else:
            return a[target]
    return a[target]


@njit(cache=True, parallel=True)
def knn_predict(qx, qy, S_indptr, S_indices, S_data, F_indptr, F_indices, F_data, n_x,
                k, min_k, rule, mu, means, sigmas, bx, by, out, out_k):  # pragma: no cover - compiled
    """Surprise's k-NN prediction for queries (x, y), **sorted by x**: the neighbours are the
    entities x₂ that rated y (row y of F, with rating r), the k with the largest positive
    sim(x, x₂) (ties: lower index first). With Σ over them and d = Σ sim:

      basic     r̂ = Σ sim·r / d                                 (fewer than min_k: NaN → caller's fallback)
      means     r̂ = μₓ + Σ sim·(r − μₓ₂) / d                    (fewer than min_k: μₓ)
      zscore    r̂ = μₓ + σₓ Σ sim·(r − μₓ₂)/σₓ₂ / d             (fewer than min_k: μₓ)
      baseline  r̂ = bₓᵧ + Σ sim·(r − bₓ₂ᵧ) / d, b = μ + bₓ + bᵧ  (fewer than min_k: bₓᵧ)

    The k best are found by a selection (k-th largest value, then every larger one and the
    first equal ones in index order), not a heap. ``out_k`` receives the number used."""
    nq = len(qx)
    nb = _n_blocks(nq)
    kk = max(k, 1)
    for b in prange(nb):
        lo, hi = _block(b, nb, nq)
        dense = np.zeros(n_x, dtype=np.float64)
        cs = np.empty(n_x, dtype=np.float64)
        cq = np.empty(n_x, dtype=np.int64)
        tmp = np.empty(n_x, dtype=np.float64)
        cur = -1
        for t in range(lo, hi):
            x = qx[t]
            y = qy[t]
            if x != cur:
                if cur >= 0:
                    for p in range(S_indptr[cur], S_indptr[cur + 1]):
                        dense[S_indices[p]] = 0.0
                for p in range(S_indptr[x], S_indptr[x + 1]):
                    dense[S_indices[p]] = S_data[p]
                cur = x
            m = np.int64(0)  # (a plain 0 makes numba also compile _kth_largest for a literal m)
            for q in range(F_indptr[y], F_indptr[y + 1]):
                s = dense[F_indices[q]]
                if s > 0.0:
                    cs[m] = s
                    cq[m] = q
                    m += 1
            if m > kk:
                tmp[:m] = cs[:m]
                vk = _kth_largest(tmp, m, kk)  # the k-th largest similarity
                n_gt = 0
                for h in range(m):
                    if cs[h] > vk:
                        n_gt += 1
                need_eq = kk - n_gt
                w = 0
                for h in range(m):  # row order = index order: equal values go to the lower index
                    s = cs[h]
                    if s > vk or (s == vk and need_eq > 0):
                        if s == vk:
                            need_eq -= 1
                        cs[w] = s
                        cq[w] = cq[h]
                        w += 1
                m = kk
            sum_sim = 0.0
            sum_r = 0.0
            for h in range(m):
                s = cs[h]
                q = cq[h]
                r = np.float64(F_data[q])
                x2 = F_indices[q]
                sum_sim += s
                if rule == RULE_BASIC:
                    sum_r += s * r
                elif rule == RULE_MEANS:
                    sum_r += s * (r - means[x2])
                elif rule == RULE_ZSCORE:
                    sum_r += s * (r - means[x2]) / sigmas[x2]
                else:
                    sum_r += s * (r - (mu + bx[x2] + by[y]))
            out_k[t] = m
            if rule == RULE_BASIC:
                out[t] = sum_r / sum_sim if (m >= min_k and m > 0) else np.nan
            else:
                if rule == RULE_BASELINE:
                    est = mu + bx[x] + by[y]
                else:
                    est = means[x]
                if m >= min_k and m > 0:
                    if rule == RULE_ZSCORE:
                        est += sum_r / sum_sim * sigmas[x]
                    else:
                        est += sum_r / sum_sim
                out[t] = est


@njit(cache=True, parallel=True)
def slope_one_predict(qu, qi, D_indptr, D_indices, D_data, R_indptr, R_indices, user_means, out):  # pragma: no cover - compiled
    """Slope One for queries **sorted by item**: out[t] = μᵤ + mean of dev(i, j) over the items j
    of user u (row u of R) that appear in row i of D (the co-rated pairs); μᵤ alone when there
    are none. Row i of D is scattered once per run of equal items into a dense buffer."""
    nq = len(qu)
    nb = _n_blocks(nq)
    n_items = len(D_indptr) - 1
    for b in prange(nb):
        lo, hi = _block(b, nb, nq)
        dev = np.zeros(n_items, dtype=np.float64)
        has = np.zeros(n_items, dtype=np.bool_)
        cur = -1
        for t in range(lo, hi):
            u = qu[t]
            i = qi[t]
            if i != cur:
                if cur >= 0:
                    for p in range(D_indptr[cur], D_indptr[cur + 1]):
                        has[D_indices[p]] = False
                for p in range(D_indptr[i], D_indptr[i + 1]):
                    dev[D_indices[p]] = D_data[p]
                    has[D_indices[p]] = True
                cur = i
            s = 0.0
            c = 0
            for p in range(R_indptr[u], R_indptr[u + 1]):
                j = R_indices[p]
                if has[j]:
                    s += dev[j]
                    c += 1
            out[t] = user_means[u] + (s / c if c > 0 else 0.0)
