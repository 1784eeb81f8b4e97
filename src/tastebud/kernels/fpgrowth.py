"""numba kernels for FP-Growth, rule generation and rule-based recommendation.

Conventions: items are *ranks* ``0..F-1`` (0 = most frequent item); no ids, no I/O.

Itemsets are returned as a *set-enumeration trie*: node 0 is the empty set (count = number of
baskets); every other node ``t`` is the itemset ``itemset(t_parent[t]) ∪ {t_item[t]}`` with
``t_count[t]`` baskets. Along every root-to-node path the ranks strictly decrease (canonical
order), and the children of a node are stored contiguously (``t_first[t] .. t_first[t] +
t_nchild[t]``) in increasing rank, so that any frequent itemset is found by walking down the trie
with one binary search per item. 20-odd bytes per itemset, and every subset lookup needed by the
rule generator is cheap.

FP-tree: a prefix tree of the baskets (items in increasing rank, i.e. descending frequency),
stored in flat arrays (``item, count, parent, first child, next sibling, node link``) inside one
growing arena; conditional trees are built above their parent tree and discarded when the
depth-first mining returns (an explicit stack, no recursion). A conditional tree that is a single
path is kept as a path: its itemsets are all combinations of the path's items, enumerated
without building any tree (the "single prefix path" shortcut of Han, Pei & Yin 2000).
"""

from __future__ import annotations

import numpy as np
from numba import njit

# ----------------------------------------------------------------------------- helpers


@njit(cache=True)
def _grow(a, need):
    """``a`` itself if it holds ``need`` entries, else a copy at least twice as long (any dtype)."""
    if need <= a.shape[0]:
        return a
    n = max(need, 2 * a.shape[0] + 16)
    b = np.empty(n, dtype=a.dtype)
    b[: a.shape[0]] = a
    return b


# ----------------------------------------------------------------------------- FP-Growth


@njit(cache=True)
def prepare_ranks(indptr, indices, rank_of):
    """Baskets (CSR of item indices) -> CSR of the ranks of their frequent items, each row
    sorted ascending (most frequent first)."""
    nb = indptr.shape[0] - 1
    out_ptr = np.zeros(nb + 1, dtype=np.int64)
    for b in range(nb):
        c = 0
        for p in range(indptr[b], indptr[b + 1]):
            if rank_of[indices[p]] >= 0:
                c += 1
        out_ptr[b + 1] = out_ptr[b] + c
    out = np.empty(out_ptr[nb], dtype=np.int32)
    for b in range(nb):
        q = out_ptr[b]
        for p in range(indptr[b], indptr[b + 1]):
            r = rank_of[indices[p]]
            if r >= 0:
                out[q] = r
                q += 1
        out[out_ptr[b]:out_ptr[b + 1]].sort()
    return out_ptr, out



@njit(cache=True, _nrt=False, inline="always")
def _less(ptr, data, x, y):
    """Sequence x < sequence y (lexicographic; a proper prefix sorts first)."""
    i = ptr[x]
    ie = ptr[x + 1]
    j = ptr[y]
    je = ptr[y + 1]
    while i < ie and j < je:
        if data[i] != data[j]:
            return data[i] < data[j]
        i += 1
        j += 1
    return (ie - i) < (je - j)


# The mining loop and the helpers it calls are compiled without numba's reference counting
# (``_nrt=False``): they allocate nothing and never rebind an array, so that no atomic refcount
# update runs per loop iteration (with it, those updates took most of the mining time). The
# arenas live in ``fpgrowth_mine``, which grows them and resumes the loop when it runs short.


@njit(cache=True, _nrt=False)
def sort_sequences(ptr, data, n, reverse_input, order, tmp):
    """Write into ``order[:n]`` the lexicographic order of the ``n`` sequences
    ``data[ptr[s]:ptr[s+1]]`` (merge sort; ties in input order, or reversed input order with
    ``reverse_input``; ``tmp``: scratch of the same length). Merges of runs already in order are
    skipped, so nearly sorted input costs about n comparisons."""
    for i in range(n):
        order[i] = n - 1 - i if reverse_input else i
    # insertion-sort runs of 16, then merge
    run = 16
    for lo in range(0, n, run):
        hi = min(lo + run, n)
        for i in range(lo + 1, hi):
            v = order[i]
            j = i - 1
            while j >= lo and _less(ptr, data, v, order[j]):
                order[j + 1] = order[j]
                j -= 1
            order[j + 1] = v
    width = run
    src = order
    dst = tmp
    in_tmp = False
    while width < n:
        for lo in range(0, n, 2 * width):
            mid = min(lo + width, n)
            hi = min(lo + 2 * width, n)
            if mid >= hi or not _less(ptr, data, src[mid], src[mid - 1]):
                for k in range(lo, hi):  # already in order
                    dst[k] = src[k]
                continue
            i = lo
            j = mid
            k = lo
            while i < mid and j < hi:
                if _less(ptr, data, src[j], src[i]):
                    dst[k] = src[j]
                    j += 1
                else:
                    dst[k] = src[i]
                    i += 1
                k += 1
            while i < mid:
                dst[k] = src[i]
                i += 1
                k += 1
            while j < hi:
                dst[k] = src[j]
                j += 1
                k += 1
        src, dst = dst, src
        in_tmp = not in_tmp
        width *= 2
    if in_tmp:
        for i in range(n):
            order[i] = src[i]


@njit(cache=True, _nrt=False)
def _build_tree(ptr, data, cnt, npaths, root, n_item, n_cnt, n_src, n_dep, n_link, i_head, i_nn, i_dsum, ibase,
                prev, reverse_input, order, tmp):
    """Insert the paths ``data[ptr[s]:ptr[s+1]]`` (ascending local ids, root first) into a tree
    rooted at node ``root`` (nodes allocated from ``root + 1``). Paths are visited in
    lexicographic order, so a path shares exactly its common prefix with the previous one (no
    child lookups). A node at depth d created by path s remembers ``n_src = ptr[s] + d``: its
    ancestors' items are the contiguous slice ``data[n_src - d : n_src]``, which mining reads
    instead of chasing parent pointers. Per local item, ``i_nn`` counts its nodes and ``i_dsum``
    sums their depths (the exact sizes of its conditional pattern base). Returns
    ``(next free node, is_single_path)``."""
    sort_sequences(ptr, data, npaths, reverse_input, order, tmp)
    nn = root + 1
    plen = 0  # length of the previous path
    single = True
    for q in range(npaths):
        s = order[q]
        lo = ptr[s]
        L = ptr[s + 1] - lo
        if L == 0:
            continue
        c = cnt[s]
        l = 0
        while l < L and l < plen and n_item[prev[l]] == data[lo + l]:
            l += 1
        for d in range(l):
            n_cnt[prev[d]] += c
        if l < L and l < plen:
            single = False  # the node at depth l - 1 (or the root) gets a second child
        for d in range(l, L):
            it = data[lo + d]
            n_item[nn] = it
            n_cnt[nn] = c
            n_src[nn] = lo + d
            n_dep[nn] = d
            n_link[nn] = i_head[ibase + it]
            i_head[ibase + it] = nn
            i_nn[ibase + it] += 1
            i_dsum[ibase + it] += d
            prev[d] = nn
            nn += 1
        plen = L
    return nn, single


@njit(cache=True)
def _grow_capped(a, need, cap):
    """:func:`_grow`, but never longer than ``cap`` entries (``need <= cap``)."""
    if need <= a.shape[0]:
        return a
    n = min(cap, max(need, 2 * a.shape[0] + 16))
    b = np.empty(n, dtype=a.dtype)
    b[: a.shape[0]] = a
    return b


@njit(cache=True)
def fpgrowth_mine(indptr, ranks, n_freq, freq_counts, n_baskets, min_count, max_len, max_itemsets):
    """Mine all itemsets with count >= ``min_count`` (and length <= ``max_len``; 0 = no limit).

    ``indptr``/``ranks``: CSR of the baskets restricted to frequent items, each row sorted
    ascending by rank. ``freq_counts[r]``: count of the item of rank ``r``.
    Returns the trie ``(t_parent, t_item, t_count, t_first, t_nchild, n_nodes)``.

    ``max_itemsets`` > 0 bounds the trie: it never grows beyond ``max_itemsets + n_freq + 2``
    nodes, and mining stops as soon as a step would need more. The trie returned is then a
    valid but partial one (every itemset in it is frequent, with its true count) holding more
    than ``max_itemsets`` itemsets, i.e. ``n_nodes - 1 > max_itemsets`` tells the caller that
    the limit was passed. (The single items always fit.)
    """
    if max_len <= 0:
        max_len = 1 << 30
    cap_nodes = 1 << 62
    if max_itemsets > 0:
        cap_nodes = max_itemsets + n_freq + 2
    # ---- trie (output)
    cap_t = min(max(16, 2 * n_freq + 1), max(cap_nodes, n_freq + 1))
    t_parent = np.empty(cap_t, dtype=np.int64)
    t_item = np.empty(cap_t, dtype=np.int32)
    t_count = np.empty(cap_t, dtype=np.int64)
    t_first = np.empty(cap_t, dtype=np.int64)
    t_nchild = np.empty(cap_t, dtype=np.int32)
    t_parent[0] = -1
    t_item[0] = -1
    t_count[0] = n_baskets
    t_first[0] = 1
    t_nchild[0] = 0
    if n_freq == 0:
        return t_parent[:1], t_item[:1], t_count[:1], t_first[:1], t_nchild[:1], 1

    # ---- path data arena: the initial baskets, then each conditional base above its parent's
    nnz = indptr[-1]
    dat = np.empty(max(4096, 2 * nnz + 16), dtype=np.int32)
    dat[:nnz] = ranks
    # ---- node arena
    cap_n = max(64, nnz + 2)
    n_item = np.empty(cap_n, dtype=np.int32)  # local item id in its tree
    n_cnt = np.empty(cap_n, dtype=np.int64)
    n_src = np.empty(cap_n, dtype=np.int64)  # position of the node's item in dat
    n_dep = np.empty(cap_n, dtype=np.int32)  # depth (0 = child of the root)
    n_link = np.empty(cap_n, dtype=np.int32)
    # ---- item arena (per tree: local items)
    cap_i = max(64, 4 * n_freq)
    i_rank = np.empty(cap_i, dtype=np.int32)  # global rank of a local item
    i_head = np.empty(cap_i, dtype=np.int32)  # first node of the item (node link list)
    i_cnt = np.empty(cap_i, dtype=np.int64)  # count of the item in this tree
    i_trie = np.empty(cap_i, dtype=np.int64)  # trie node of prefix ∪ {item}
    i_nn = np.empty(cap_i, dtype=np.int64)  # number of nodes of the item in its tree
    i_dsum = np.empty(cap_i, dtype=np.int64)  # sum of their depths
    # ---- frames (depth <= n_freq + 1)
    depth_cap = n_freq + 2
    f_ibase = np.empty(depth_cap, dtype=np.int64)
    f_next = np.empty(depth_cap, dtype=np.int64)
    f_len = np.empty(depth_cap, dtype=np.int64)  # length of the itemsets of this frame's items
    f_path = np.zeros(depth_cap, dtype=np.bool_)
    f_ntop = np.empty(depth_cap, dtype=np.int64)
    f_itop = np.empty(depth_cap, dtype=np.int64)
    f_dtop = np.empty(depth_cap, dtype=np.int64)

    # scratch for conditional counting (indexed by parent-local item)
    ccount = np.zeros(n_freq, dtype=np.int64)
    cmap = np.full(n_freq, -1, dtype=np.int32)
    prev = np.empty(n_freq + 1, dtype=np.int64)
    nb = indptr.shape[0] - 1
    cap_p = max(1024, nb + 1)
    pb_ptr = np.empty(cap_p, dtype=np.int64)
    pb_cnt = np.empty(cap_p, dtype=np.int64)
    s_order = np.empty(cap_p, dtype=np.int64)
    s_tmp = np.empty(cap_p, dtype=np.int64)

    # ---- build the initial tree (frame 0)
    m = n_freq
    for r in range(m):
        i_rank[r] = r
        i_head[r] = -1
        i_cnt[r] = freq_counts[r]
        i_nn[r] = 0
        i_dsum[r] = 0
    ones = np.ones(nb, dtype=np.int64)
    nn, single = _build_tree(indptr, dat, ones, nb, 0, n_item, n_cnt, n_src, n_dep, n_link, i_head, i_nn, i_dsum, 0,
                             prev, False, s_order, s_tmp)
    n_t = 1
    for r in range(m):
        t_parent[n_t] = 0
        t_item[n_t] = r
        t_count[n_t] = freq_counts[r]
        t_first[n_t] = 0
        t_nchild[n_t] = 0
        i_trie[r] = n_t
        n_t += 1
    t_nchild[0] = m
    f_ibase[0] = 0
    f_next[0] = m - 1
    f_len[0] = 1
    f_path[0] = single  # a path: local item r sits at depth r; counts in i_cnt
    f_ntop[0] = nn
    f_itop[0] = m
    f_dtop[0] = nnz

    st = np.zeros(2, dtype=np.int64)  # (stack pointer, trie size) between calls of the loop
    st[1] = n_t
    need = np.zeros(5, dtype=np.int64)
    while _mine_loop(st, need, min_count, max_len,
                     t_parent, t_item, t_count, t_first, t_nchild,
                     dat, n_item, n_cnt, n_src, n_dep, n_link,
                     i_rank, i_head, i_cnt, i_trie, i_nn, i_dsum,
                     f_ibase, f_next, f_len, f_path, f_ntop, f_itop, f_dtop,
                     ccount, cmap, prev, pb_ptr, pb_cnt, s_order, s_tmp):
        # an arena ran short: grow it (at least doubling) and resume
        if need[0] > i_rank.shape[0]:
            i_rank = _grow(i_rank, need[0])
            i_head = _grow(i_head, need[0])
            i_cnt = _grow(i_cnt, need[0])
            i_trie = _grow(i_trie, need[0])
            i_nn = _grow(i_nn, need[0])
            i_dsum = _grow(i_dsum, need[0])
        if need[1] > t_parent.shape[0]:
            if need[1] > cap_nodes:
                break  # the trie would pass max_itemsets (st[1] - 1 > max_itemsets): stop, partial
            t_parent = _grow_capped(t_parent, need[1], cap_nodes)
            t_item = _grow_capped(t_item, need[1], cap_nodes)
            t_count = _grow_capped(t_count, need[1], cap_nodes)
            t_first = _grow_capped(t_first, need[1], cap_nodes)
            t_nchild = _grow_capped(t_nchild, need[1], cap_nodes)
        if need[2] > dat.shape[0]:
            dat = _grow(dat, need[2])
        if need[3] > n_item.shape[0]:
            n_item = _grow(n_item, need[3])
            n_cnt = _grow(n_cnt, need[3])
            n_src = _grow(n_src, need[3])
            n_dep = _grow(n_dep, need[3])
            n_link = _grow(n_link, need[3])
        if need[4] > pb_ptr.shape[0]:
            pb_ptr = _grow(pb_ptr, need[4])
            pb_cnt = _grow(pb_cnt, need[4])
            s_order = _grow(s_order, need[4])
            s_tmp = _grow(s_tmp, need[4])
    n_t = st[1]
    return t_parent[:n_t], t_item[:n_t], t_count[:n_t], t_first[:n_t], t_nchild[:n_t], n_t


@njit(cache=True, _nrt=False)
def _mine_loop(st, need, min_count, max_len,
               t_parent, t_item, t_count, t_first, t_nchild,
               dat, n_item, n_cnt, n_src, n_dep, n_link,
               i_rank, i_head, i_cnt, i_trie, i_nn, i_dsum,
               f_ibase, f_next, f_len, f_path, f_ntop, f_itop, f_dtop,
               ccount, cmap, prev, pb_ptr, pb_cnt, s_order, s_tmp):
    """The depth-first mining loop of :func:`fpgrowth_mine` over an explicit frame stack.
    Returns False when done, True (with the sizes it needs in ``need``) when an arena is too
    small for the next step; the step has then not started, and calling again after growing
    the arenas resumes exactly there."""
    sp = st[0]
    n_t = st[1]
    while sp >= 0:
        j = f_next[sp]
        if j < 0 or f_len[sp] >= max_len:
            sp -= 1
            continue
        if j == 0:
            f_next[sp] = -1
            continue
        ib = f_ibase[sp]
        ntop = f_ntop[sp]
        itop = f_itop[sp]
        dtop = f_dtop[sp]
        # ---- room for this step (the child frame has at most j items, its base is exactly
        # i_dsum data and i_nn paths)
        short = False
        if itop + j > i_rank.shape[0]:
            need[0] = itop + j
            short = True
        if n_t + j > t_parent.shape[0]:
            need[1] = n_t + j
            short = True
        if not f_path[sp]:
            tot = i_dsum[ib + j]
            if dtop + tot > dat.shape[0]:
                need[2] = dtop + tot
                short = True
            if ntop + tot + 1 > n_item.shape[0]:
                need[3] = ntop + tot + 1
                short = True
            if i_nn[ib + j] + 1 > pb_ptr.shape[0]:
                need[4] = i_nn[ib + j] + 1
                short = True
        if short:
            st[0] = sp
            st[1] = n_t
            return True
        f_next[sp] = j - 1
        parent_t = i_trie[ib + j]
        npaths = 0
        if f_path[sp]:
            newm = j  # child frame: items 0..j-1 of this path, all with the count of item j
        else:
            # ---- conditional counts: the items above every node of j (contiguous slices)
            nd = i_head[ib + j]
            while nd >= 0:
                c = n_cnt[nd]
                e = n_src[nd]
                d = n_dep[nd]
                for p in range(e - d, e):
                    ccount[dat[p]] += c
                npaths += 1
                nd = n_link[nd]
            newm = 0
            for q in range(j):
                if ccount[q] >= min_count:
                    cmap[q] = newm
                    newm += 1
                else:
                    cmap[q] = -1
            if newm == 0:
                for q in range(j):
                    ccount[q] = 0
                continue
        # ---- emit the child itemsets (contiguous children of parent_t, ascending rank)
        t_first[parent_t] = n_t
        t_nchild[parent_t] = newm
        if f_path[sp]:
            c = i_cnt[ib + j]
            for q in range(newm):
                i_rank[itop + q] = i_rank[ib + q]
                i_cnt[itop + q] = c
                i_trie[itop + q] = n_t
                t_parent[n_t] = parent_t
                t_item[n_t] = i_rank[ib + q]
                t_count[n_t] = c
                t_first[n_t] = 0
                t_nchild[n_t] = 0
                n_t += 1
            sp += 1
            f_ibase[sp] = itop
            f_next[sp] = newm - 1
            f_len[sp] = f_len[sp - 1] + 1
            f_path[sp] = True
            f_ntop[sp] = ntop
            f_itop[sp] = itop + newm
            f_dtop[sp] = dtop
            continue
        for q in range(j):
            k = cmap[q]
            if k >= 0:
                i_rank[itop + k] = i_rank[ib + q]
                i_head[itop + k] = -1
                i_nn[itop + k] = 0
                i_dsum[itop + k] = 0
                i_cnt[itop + k] = ccount[q]
                i_trie[itop + k] = n_t
                t_parent[n_t] = parent_t
                t_item[n_t] = i_rank[ib + q]
                t_count[n_t] = ccount[q]
                t_first[n_t] = 0
                t_nchild[n_t] = 0
                n_t += 1
            ccount[q] = 0
        child_len = f_len[sp] + 1
        if child_len >= max_len or newm == 1:
            continue  # the child's items are emitted; nothing deeper is needed (one item: no pairs)
        # ---- the conditional pattern base: frequent items of each path, written above dtop
        w = dtop
        q = 0
        nd = i_head[ib + j]
        while nd >= 0:
            pb_ptr[q] = w
            pb_cnt[q] = n_cnt[nd]
            e = n_src[nd]
            for p in range(e - n_dep[nd], e):
                k = cmap[dat[p]]
                if k >= 0:
                    dat[w] = k
                    w += 1
            q += 1
            nd = n_link[nd]
        pb_ptr[npaths] = w
        # ---- build the conditional tree above the current node arena top; the node links run
        # against creation order, and creation order is the lexicographic order of the nodes'
        # prefixes: the pattern base, read backwards, is nearly sorted
        cn, csingle = _build_tree(pb_ptr, dat, pb_cnt, npaths, ntop, n_item, n_cnt, n_src, n_dep, n_link,
                                  i_head, i_nn, i_dsum, itop, prev, True, s_order, s_tmp)
        sp += 1
        f_ibase[sp] = itop
        f_next[sp] = newm - 1
        f_len[sp] = child_len
        f_path[sp] = csingle
        f_ntop[sp] = cn
        f_itop[sp] = itop + newm
        f_dtop[sp] = w
    st[0] = sp
    st[1] = n_t
    return False


# ----------------------------------------------------------------------------- trie lookups


@njit(cache=True, inline="always")  # inlined where called in loops (no refcounting per call)
def trie_child(t_item, t_first, t_nchild, node, item):
    """Child of ``node`` carrying ``item`` (binary search), or -1."""
    lo = t_first[node]
    hi = lo + t_nchild[node] - 1
    while lo <= hi:
        mid = (lo + hi) >> 1
        v = t_item[mid]
        if v == item:
            return mid
        if v < item:
            lo = mid + 1
        else:
            hi = mid - 1
    return -1


@njit(cache=True)
def trie_depths(t_parent):
    n = t_parent.shape[0]
    d = np.zeros(n, dtype=np.int32)
    for t in range(1, n):  # parents precede children
        d[t] = d[t_parent[t]] + 1
    return d


@njit(cache=True)
def trie_to_csr(t_parent, t_item, depth):
    """Items of every trie node as CSR rows (ascending rank)."""
    n = t_parent.shape[0]
    indptr = np.zeros(n + 1, dtype=np.int64)
    for t in range(n):
        indptr[t + 1] = indptr[t] + depth[t]
    out = np.empty(indptr[n], dtype=np.int32)
    for t in range(1, n):
        p = indptr[t]
        a = t
        while a > 0:
            out[p] = t_item[a]  # walking up: ranks increase
            p += 1
            a = t_parent[a]
    return indptr, out


# ----------------------------------------------------------------------------- rules

# metric codes
M_CONFIDENCE = 0
M_LIFT = 1
M_SUPPORT = 2
M_LEVERAGE = 3
M_CONVICTION = 4
M_ZHANG = 5
M_ANT_SUPPORT = 6
M_CONS_SUPPORT = 7
M_JACCARD = 8
M_CERTAINTY = 9
M_KULCZYNSKI = 10
M_REPRESENTATIVITY = 11


@njit(cache=True, inline="always")
def rule_metric(code, cx, ca, cc, n):
    sx = cx / n
    sa = ca / n
    sc = cc / n
    conf = cx / ca
    if code == M_CONFIDENCE:
        return conf
    if code == M_LIFT:
        return conf / sc
    if code == M_SUPPORT:
        return sx
    if code == M_LEVERAGE:
        return sx - sa * sc
    if code == M_CONVICTION:
        if conf < 1.0:
            return (1.0 - sc) / (1.0 - conf)
        return np.inf
    if code == M_ZHANG:
        den = max(sx * (1.0 - sa), sa * (sc - sx))
        if den == 0.0:
            return 0.0
        return (sx - sa * sc) / den
    if code == M_ANT_SUPPORT:
        return sa
    if code == M_CONS_SUPPORT:
        return sc
    if code == M_JACCARD:
        return sx / (sa + sc - sx)
    if code == M_CERTAINTY:
        if 1.0 - sc == 0.0:
            return 0.0
        return (conf - sc) / (1.0 - sc)
    if code == M_REPRESENTATIVITY:
        return 1.0  # share of baskets without missing values (mlxtend); baskets have none
    # kulczynski
    return (conf + sx / sc) / 2.0


@njit(cache=True)
def rule_values(t_count, x, a, c, n, code):
    """The metric ``code`` of the rules (itemset, antecedent, consequent trie nodes) in one
    pass (the same arithmetic as ``tastebud.models.rules.metrics.rule_metrics``)."""
    out = np.empty(x.shape[0], dtype=np.float64)
    for i in range(x.shape[0]):
        out[i] = rule_metric(code, t_count[x[i]], t_count[a[i]], t_count[c[i]], n)
    return out


@njit(cache=True, inline="always")
def _passes(code, thr, cx, ca, cc, n, min_conf_num, min_conf_den):
    # confidence compared exactly on counts when requested: cx/ca >= num/den
    if code == M_CONFIDENCE and min_conf_den > 0:
        return cx * min_conf_den >= min_conf_num * ca
    return rule_metric(code, cx, ca, cc, n) >= thr


@njit(cache=True)
def rules_state(max_items, one_consequent):
    """The working arrays of :func:`_rules_loop` for itemsets of up to ``max_items`` items:
    ``(stack, sdepth, off, sub, items, st, need)`` (a DFS stack over the trie; per depth d the
    subset-node table ``sub[off[d]:off[d] + 2^d]``; the items of the current path; the loop's
    state and its requests)."""
    stack = np.empty(1024, dtype=np.int64)
    sdepth = np.empty(1024, dtype=np.int64)
    maxd = max_items + 1
    off = np.zeros(maxd + 1, dtype=np.int64)
    if not one_consequent:
        for d in range(1, maxd):
            off[d + 1] = off[d] + (1 << d)
        sub = np.empty(off[maxd], dtype=np.int64)
    else:
        sub = np.empty(1, dtype=np.int64)
    items = np.empty(maxd + 1, dtype=np.int32)  # items of the current path, items[0] = depth-1 item
    st = np.zeros(3, dtype=np.int64)  # (next root, stack top, rules so far) between calls
    st[1] = -1
    need = np.zeros(2, dtype=np.int64)
    return stack, sdepth, off, sub, items, st, need


@njit(cache=True)
def gen_rules(t_parent, t_item, t_count, t_first, t_nchild, roots, n, code, thr,
              min_conf_num, min_conf_den, one_consequent, count_only, max_items):
    """Rules from the trie subtrees under the trie nodes ``roots`` (children of the root).

    For every itemset X (|X| >= 2) and every split X = A ∪ C (A, C non-empty; |C| = 1 when
    ``one_consequent``), keep the rule when metric(A → C) >= thr. Returns
    ``(x_node, a_node, c_node, n_rules)``; with ``count_only`` the arrays are empty.
    Subset nodes of X are derived from those of X's parent: subsets containing X's last item
    (its lowest rank) are one child lookup away from the subsets without it.
    """
    cap = 1024
    rx = np.empty(cap if not count_only else 0, dtype=np.int64)
    ra = np.empty(cap if not count_only else 0, dtype=np.int64)
    rc = np.empty(cap if not count_only else 0, dtype=np.int64)
    stack, sdepth, off, sub, items, st, need = rules_state(max_items, one_consequent)
    while _rules_loop(st, need, t_item, t_count, t_first, t_nchild, roots, n, code, thr, min_conf_num,
                      min_conf_den, one_consequent, count_only, rx, ra, rc, stack, sdepth, off, sub, items):
        # a buffer ran short: grow it and resume
        if need[0] > stack.shape[0]:
            stack = _grow(stack, need[0])
            sdepth = _grow(sdepth, need[0])
        if need[1] > rx.shape[0]:
            rx = _grow(rx, need[1])
            ra = _grow(ra, need[1])
            rc = _grow(rc, need[1])
    nr = st[2]
    if count_only:
        return rx, ra, rc, nr
    return rx[:nr], ra[:nr], rc[:nr], nr


@njit(cache=True, _nrt=False)
def _rules_loop(st, need, t_item, t_count, t_first, t_nchild, roots, n, code, thr, min_conf_num, min_conf_den,
                one_consequent, count_only, rx, ra, rc, stack, sdepth, off, sub, items):
    """The depth-first loop of :func:`gen_rules`, without numba's reference counting (see
    :func:`_mine_loop`). Returns False when done, True (sizes needed in ``need``) when the
    stack or the output is too small for the next node; that node has then not started."""
    ri = st[0]
    top = st[1]
    nr = st[2]
    while True:
        if top < 0:
            if ri >= roots.shape[0]:
                break
            top = 0
            stack[0] = roots[ri]
            sdepth[0] = 1
            ri += 1
        x = stack[top]
        d = sdepth[top]
        # room for x's children and for every rule of x
        nc = t_nchild[x]
        short = False
        if top + nc > stack.shape[0]:
            need[0] = top + nc
            short = True
        if not count_only and d >= 2:
            most = d if one_consequent else (1 << d) - 2
            if nr + most > rx.shape[0]:
                need[1] = nr + most
                short = True
        if short:
            st[0] = ri
            st[1] = top
            st[2] = nr
            return True
        top -= 1
        items[d - 1] = t_item[x]
        # push children
        if nc > 0:
            f = t_first[x]
            for q in range(nc - 1, -1, -1):
                top += 1
                stack[top] = f + q
                sdepth[top] = d + 1
        if not one_consequent:
            # subset table for depth d: bits 0..d-1 <-> items[0..d-1]
            o = off[d]
            if d == 1:
                sub[o] = 0
                sub[o + 1] = x
            else:
                po = off[d - 1]
                half = 1 << (d - 1)
                it = items[d - 1]
                for mask in range(half):
                    sub[o + mask] = sub[po + mask]
                    sub[o + half + mask] = trie_child(t_item, t_first, t_nchild, sub[po + mask], it)
            if d < 2:
                continue
            full = (1 << d) - 1
            cx = t_count[x]
            for amask in range(1, full):
                an = sub[o + amask]
                cn = sub[o + (full ^ amask)]
                if _passes(code, thr, cx, t_count[an], t_count[cn], n, min_conf_num, min_conf_den):
                    if not count_only:
                        rx[nr] = x
                        ra[nr] = an
                        rc[nr] = cn
                    nr += 1
        else:
            if d < 2:
                continue
            cx = t_count[x]
            for ci in range(d):
                # antecedent: items[0..d-1] without items[ci], walked from the root
                an = 0
                for q in range(d):
                    if q != ci:
                        an = trie_child(t_item, t_first, t_nchild, an, items[q])
                cn = 1 + items[ci]  # single items are trie nodes 1..F in rank order
                if _passes(code, thr, cx, t_count[an], t_count[cn], n, min_conf_num, min_conf_den):
                    if not count_only:
                        rx[nr] = x
                        ra[nr] = an
                        rc[nr] = cn
                    nr += 1
    st[0] = ri
    st[1] = top
    st[2] = nr
    return False


# ----------------------------------------------------------------------------- recommendation


@njit(cache=True)
def rules_recommend(b_indptr, b_ranks, t_item, t_first, t_nchild, r_indptr, r_cons, r_score,
                    n_items, k, max_ant):
    """For each basket (CSR of ranks, sorted descending), score every consequent of a rule whose
    antecedent is a subset of the basket by the best rule score; drop items in the basket;
    return the top ``k`` (ranks, scores) per basket, -1 / -inf padded.

    ``r_indptr`` is indexed by trie node (rules grouped by antecedent node)."""
    nb = b_indptr.shape[0] - 1
    out_i = np.full((nb, k), -1, dtype=np.int64)
    out_s = np.full((nb, k), -np.inf, dtype=np.float64)
    score = np.full(n_items, -np.inf, dtype=np.float64)
    inb = np.zeros(n_items, dtype=np.bool_)
    touched = np.empty(n_items, dtype=np.int64)
    st_node = np.empty(1024, dtype=np.int64)
    st_pos = np.empty(1024, dtype=np.int64)
    st_d = np.empty(1024, dtype=np.int64)
    for b in range(nb):
        lo = b_indptr[b]
        hi = b_indptr[b + 1]
        for p in range(lo, hi):
            inb[b_ranks[p]] = True
        nt = 0
        # DFS over frequent subsets of the basket (canonical: descending rank)
        top = 0
        st_node[0] = 0
        st_pos[0] = lo
        st_d[0] = 0
        while top >= 0:
            node = st_node[top]
            pos = st_pos[top]
            d = st_d[top]
            top -= 1
            if node > 0:
                for r in range(r_indptr[node], r_indptr[node + 1]):
                    c = r_cons[r]
                    if inb[c]:
                        continue
                    if score[c] == -np.inf:
                        touched[nt] = c
                        nt += 1
                    if r_score[r] > score[c]:
                        score[c] = r_score[r]
            if d >= max_ant:
                continue
            for p in range(pos, hi):
                ch = trie_child(t_item, t_first, t_nchild, node, b_ranks[p])
                if ch >= 0:
                    top += 1
                    if top >= st_node.shape[0]:
                        st_node = _grow(st_node, top + 1)
                        st_pos = _grow(st_pos, top + 1)
                        st_d = _grow(st_d, top + 1)
                    st_node[top] = ch
                    st_pos[top] = p + 1
                    st_d[top] = d + 1
        # top-k of touched (score desc, rank asc)
        for q in range(min(k, nt)):
            best = -1
            for z in range(nt):
                c = touched[z]
                if c < 0:
                    continue
                if best < 0 or score[c] > score[touched[best]] or (score[c] == score[touched[best]] and c < touched[best]):
                    best = z
            c = touched[best]
            out_i[b, q] = c
            out_s[b, q] = score[c]
            touched[best] = -1
            score[c] = -np.inf  # reset as we go
        for z in range(nt):
            c = touched[z]
            if c >= 0:
                score[c] = -np.inf
        for p in range(lo, hi):
            inb[b_ranks[p]] = False
    return out_i, out_s
