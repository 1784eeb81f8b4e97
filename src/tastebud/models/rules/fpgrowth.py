"""FP-Growth frequent itemsets (Han, Pei & Yin, "Mining frequent patterns without candidate
generation", SIGMOD 2000) and the association rules built on them.

An itemset X is frequent when ``count(X) >= min_count``, where ``count(X)`` is the number of
baskets containing every item of X and ``support(X) = count(X) / n`` (n = number of baskets,
empty baskets included). FP-Growth counts items (pass 1), inserts every basket with its frequent
items in descending frequency into a prefix tree (pass 2), then, for each item i from the least
frequent up, mines the conditional tree of the baskets containing i, depth first.

Implementation (``tastebud.kernels.fpgrowth``): the FP-tree lives in flat arrays (no Python
object per node), conditional trees are stacked in one arena and the mining loop keeps an
explicit stack instead of recursing; a conditional tree that is a single path yields all
combinations of its items directly. Itemsets come out as a set-enumeration trie (about 32 bytes
per itemset), which also makes every subset lookup of rule generation a few binary searches.
"""

from __future__ import annotations

import gc
import math
import os
import warnings
from typing import Any, Iterator, NamedTuple

import numpy as np
import pandas as pd

from ...array_specs import ArraySpec, counts, ids, index
from ...data.baskets import as_baskets
from ...data.idmap import IdMap
from ...exceptions import DataError, FormatError
from ...kernels import fpgrowth as K
from ..base import Model
from . import limits as L
from .metrics import METRICS, check_metric, rule_metrics
from .stream import arrow_lists, node_items, rule_index_stream, sorted_lists, write_parquet


class ItemsetArrays(NamedTuple):
    """Compact itemsets: row ``r`` is ``item_ids[items[indptr[r]:indptr[r+1]]]`` with ``counts[r]``."""

    indptr: np.ndarray  # int64 (n_itemsets + 1)
    items: np.ndarray  # int64 indices into item_ids
    counts: np.ndarray  # int64
    item_ids: np.ndarray  # external ids (int64 or str)
    n_baskets: int


class RuleArrays(NamedTuple):
    """Compact rules: antecedent / consequent / whole itemset as rows of ``itemsets()``
    (indices into :meth:`FPGrowth.itemset_arrays`), with their counts."""

    antecedent: np.ndarray
    consequent: np.ndarray
    itemset: np.ndarray
    count: np.ndarray  # count(A ∪ C)
    antecedent_count: np.ndarray
    consequent_count: np.ndarray
    n_baskets: int


def min_count_for(min_support: Any, n_baskets: int, what: str = "min_support") -> int:
    """Absolute count threshold: an ``int >= 1`` is a count; a float in (0, 1] a fraction, turned
    into ``ceil(min_support * n)`` (as mlxtend and Spark do)."""
    if isinstance(min_support, (bool, np.bool_)):
        raise ValueError(f"{what} must be a fraction in (0, 1] or a count >= 1, got {min_support!r}")
    if isinstance(min_support, (int, np.integer)):
        if min_support < 1:
            raise ValueError(f"{what} as a count must be >= 1, got {min_support!r} (use a float for a fraction)")
        return int(min_support)
    if not isinstance(min_support, (float, np.floating)):
        raise ValueError(f"{what} must be a fraction in (0, 1] or a count >= 1, got {min_support!r}")
    f = float(min_support)
    if not (0.0 < f <= 1.0) or math.isnan(f):
        raise ValueError(f"{what} must be a fraction in (0, 1] or an integer count >= 1, got {min_support!r}")
    return max(1, int(math.ceil(f * n_baskets)))


def _mine(indptr: np.ndarray, indices: np.ndarray, counts: np.ndarray, n: int, min_count: int, max_len: int,
          limit: int) -> tuple[np.ndarray, tuple]:
    """Mine the baskets (CSR of item indices, ``counts`` per item) at ``min_count``: the items
    by rank and the trie arrays. With ``limit`` > 0 the trie may be partial (more than
    ``limit`` itemsets: mining stopped)."""
    freq = np.flatnonzero(counts >= min_count)
    order = freq[np.lexsort((freq, -counts[freq]))]  # by count desc, then index
    rank_of = np.full(len(counts), -1, dtype=np.int64)
    rank_of[order] = np.arange(len(order))
    ip, ranks = K.prepare_ranks(indptr, indices, rank_of)
    tp, ti, tc, tf, tn, _ = K.fpgrowth_mine(ip, ranks, len(order), counts[order], n, min_count, max_len, limit)
    return order, (tp, ti, tc, tf, tn)


#: re-minings tried to find a ``min_support`` that fits under ``max_itemsets``
_FIT_SEARCH_STEPS = 12


def _fitting_min_count(indptr: np.ndarray, indices: np.ndarray, counts: np.ndarray, n: int, max_len: int,
                       limit: int, first: int) -> tuple[tuple[int, int] | None, int]:
    """After mining passed ``limit``: a count threshold that fits, verified by mining, and the
    lowest threshold not ruled out.

    The itemsets of a stopped mining are real frequent itemsets with their true counts, so if
    more than ``limit`` of them have count >= c, no threshold <= c fits: every failed mining
    raises the lower bound (``first`` comes from the first one). Thresholds are probed upwards,
    doubling, until one fits, then bisected down to the lowest that fits, each probe stopping
    at ``limit`` itemsets; at most ``_FIT_SEARCH_STEPS`` probes. Returns ``((threshold,
    itemsets) or None, lowest threshold not ruled out)``."""
    lo = first - 1  # the largest threshold known not to fit
    hi: tuple[int, int] | None = None  # the smallest threshold known to fit, with its itemsets
    c = first
    for _ in range(_FIT_SEARCH_STEPS):
        if c > n:  # no itemset at all
            hi = (n + 1, 0) if hi is None or hi[0] > n + 1 else hi
        else:
            _, trie = _mine(indptr, indices, counts, n, c, max_len, limit)
            got = len(trie[0]) - 1
            if got <= limit:
                hi = (c, got)
            else:
                lo = max(c, L.fitting_threshold(L.count_histogram(trie[2][1:], n), limit)[0] - 1)
            del trie
        if hi is not None and hi[0] <= lo + 1:
            break
        c = max(lo + 1, 2 * c) if hi is None else (lo + 1 + hi[0]) // 2
    return hi, lo + 1


def too_many_itemsets(where: str, baskets: Any, min_count: int, max_len: int | None, limit: int, reached: int,
                      first: int) -> Exception:
    """The error of a miner (FP-Growth or Apriori) that passed ``limit`` itemsets at
    ``min_count``, with the smallest support that fits (searched from ``first``, see
    :func:`_fitting_min_count`)."""
    m = baskets.matrix
    counts = np.bincount(m.indices, minlength=baskets.n_items).astype(np.int64)
    fit, lower = _fitting_min_count(m.indptr.astype(np.int64), m.indices.astype(np.int64), counts, len(baskets),
                                    int(max_len or 0), limit, first)
    return L.too_many_itemsets(where, limit, reached, min_count, len(baskets), max_len, fit, lower)


class FPGrowth(Model):
    """Frequent itemsets by FP-Growth; association rules from them.

    Parameters
    ----------
    min_support : float in (0, 1] (share of baskets; count threshold ``ceil(min_support·n)``)
        or int >= 1 (absolute count). Default 0.5 as in mlxtend.
    max_len : longest itemset to mine (None: no limit). On dense data it is the most effective
        bound on the number of itemsets and rules.
    max_itemsets : most frequent itemsets ``fit`` may mine (default 100,000,000, about 3.2 GB
        of trie); past it ``fit`` stops and raises
        :class:`~tastebud.exceptions.ResultTooLargeError` naming the count reached and a
        ``min_support`` that fits. None: no limit.
    max_rules : most rules ``rules()`` / ``rule_arrays()`` may build in memory (default
        10,000,000, about 1.7 GB as a DataFrame); above it they raise with the rule count and a
        ``min_support`` that fits. Streaming (``rules_to_parquet``, ``iter_rules``) and
        ``top_k`` are not limited by it. None: no limit.

    After ``fit``: ``itemsets()`` (DataFrame: ``support``, ``itemsets`` as frozensets of external
    item ids, ``count``), ``itemset_arrays()`` (compact CSR form), ``itemsets_to_parquet(...)``,
    ``rules(...)``, ``iter_rules(...)`` / ``rules_to_parquet(...)`` (streamed chunks),
    ``count_rules(...)``, ``rule_count_bound(...)``, ``support(itemset)``.
    Results are exact and identical to mlxtend's ``fpgrowth``/``association_rules``.
    See :mod:`tastebud.models.rules.limits` for the size guards.
    """

    registry_name = "fpgrowth"
    demo_params = {"min_support": 0.01}

    def __init__(self, min_support: float | int = 0.5, max_len: int | None = None,
                 max_itemsets: int | None = L.DEFAULT_MAX_ITEMSETS, max_rules: int | None = L.DEFAULT_MAX_RULES):
        self.min_support = min_support
        self.max_len = max_len
        self.max_itemsets = max_itemsets
        self.max_rules = max_rules

    # ------------------------------------------------------------------ fit
    def fit(self, data: Any) -> "FPGrowth":
        """Mine ``data``: :class:`~tastebud.data.Baskets`, a list of baskets, a long
        ``transaction, item`` DataFrame, a one-hot DataFrame, or a FIMI/CSV basket file path.

        Raises :class:`~tastebud.exceptions.ResultTooLargeError` when there are more than
        ``max_itemsets`` frequent itemsets (mining stops there; the message gives a
        ``min_support`` verified to fit, found by re-mining at higher thresholds)."""
        b = as_baskets(data)
        n = len(b)
        if n == 0:
            raise DataError("FPGrowth.fit: no baskets")
        if self.max_len is not None and (not isinstance(self.max_len, (int, np.integer)) or isinstance(self.max_len, bool) or self.max_len < 1):
            raise ValueError(f"max_len must be None or an integer >= 1, got {self.max_len!r}")
        limit = L.check_limit(self.max_itemsets, "max_itemsets")
        L.check_limit(self.max_rules, "max_rules")
        min_count = min_count_for(self.min_support, n)
        m = b.matrix
        indptr = m.indptr.astype(np.int64)
        indices = m.indices.astype(np.int64)
        counts = np.bincount(m.indices, minlength=b.n_items).astype(np.int64)
        max_len = int(self.max_len or 0)
        order, trie = _mine(indptr, indices, counts, n, min_count, max_len, limit)
        if limit and len(trie[0]) - 1 > limit:
            reached = len(trie[0]) - 1
            first = max(min_count + 1, L.fitting_threshold(L.count_histogram(trie[2][1:], n), limit)[0])
            del trie  # free the partial trie before searching
            raise too_many_itemsets("FPGrowth.fit", b, min_count, self.max_len, limit, reached, first)
        self.items_: IdMap = b.items
        self.rank_item_ = order.astype(np.int64)
        self.n_baskets_ = int(n)
        self.min_count_ = int(min_count)
        self._set_trie(*trie)
        self.fitted_ = True
        return self

    def _set_trie(self, tp, ti, tc, tf, tn) -> None:
        self.t_parent_, self.t_item_, self.t_count_ = tp, ti, tc
        self.t_first_, self.t_nchild_ = tf, tn
        self._depth = K.trie_depths(tp)
        self._fs_arr: np.ndarray | None = None
        self._rank_cache: tuple[np.ndarray, np.ndarray] | None = None
        self._depth_hist: list[int] | None = None

    # ------------------------------------------------------------------ itemsets
    @property
    def n_itemsets_(self) -> int:
        self._check_fitted()
        return len(self.t_parent_) - 1

    def itemset_arrays(self, *, max_rows: int | None = L.DEFAULT_MAX_ARRAY_ROWS) -> ItemsetArrays:
        """All frequent itemsets as CSR arrays (row r = itemset r of :meth:`itemsets`), without
        creating a Python object per itemset (16 bytes per itemset + 8 per item). More than
        ``max_rows`` itemsets raise :class:`~tastebud.exceptions.ResultTooLargeError` (None: no
        limit); :meth:`itemsets_to_parquet` writes any number in bounded memory."""
        self._check_fitted()
        lim = L.check_limit(max_rows, "max_rows")
        if lim and self.n_itemsets_ > lim:
            per = int(16 + 8 * float(self._depth.mean()))
            raise L.too_many_rows("FPGrowth.itemset_arrays", lim, self.n_itemsets_, per,
                                  "itemsets_to_parquet(path, chunk_size=...)", "the arrays", other="")
        indptr, ranks = K.trie_to_csr(self.t_parent_, self.t_item_, self._depth)
        items = self.rank_item_[ranks]
        # drop the empty set (trie node 0)
        return ItemsetArrays(indptr[1:] - indptr[1], items, self.t_count_[1:].copy(), self.items_.ids, self.n_baskets_)

    def _frozenset_array(self) -> np.ndarray:
        """Object array of one frozenset of external ids per trie node (node 0: the empty set),
        built once and cached (``itemsets()`` and the rule frames index it)."""
        if self._fs_arr is None or len(self._fs_arr) != len(self.t_parent_):
            self._fs_arr = _trie_frozensets(self.t_parent_, self.t_item_, self.items_.ids[self.rank_item_].tolist())
        return self._fs_arr

    def _frozensets(self, nodes: np.ndarray) -> np.ndarray:
        """Frozensets of the trie ``nodes``: from the cached array of every node when it exists
        or when ``nodes`` are many (a quarter of a trie of up to ``_FS_ALL_NODES`` nodes), else
        built for these nodes only (memory O(len(nodes)), e.g. for the best k rules)."""
        if self._fs_arr is not None or len(self.t_parent_) <= min(_FS_ALL_NODES, 4 * len(nodes)):
            return self._frozenset_array()[nodes]
        u, inv = np.unique(nodes, return_inverse=True)
        ptr, ranks = node_items(u, self.t_parent_, self.t_item_, self._depth, self._max_depth())
        ids = self._rank_ids()[0][ranks].tolist()
        bounds = ptr.tolist()
        fs = np.fromiter((frozenset(ids[bounds[i]:bounds[i + 1]]) for i in range(len(u))), dtype=object, count=len(u))
        return fs[inv]

    def _rank_ids(self) -> tuple[np.ndarray, np.ndarray]:
        """The external id of every rank, and each rank's position in sorted id order (lists in
        Parquet files are sorted by id)."""
        if self._rank_cache is None:
            ids = self.items_.ids[self.rank_item_]
            key = np.empty(len(ids), dtype=np.int64)
            key[np.argsort(ids, kind="stable")] = np.arange(len(ids))
            self._rank_cache = (ids, key)
        return self._rank_cache

    def itemsets(self, min_len: int = 1, sort: bool = False, *, top_k: int | None = None,
                 max_rows: int | None = L.DEFAULT_MAX_ROWS) -> pd.DataFrame:
        """DataFrame with ``support``, ``itemsets`` (frozensets of external ids) and ``count``,
        one row per frequent itemset of at least ``min_len`` items (mlxtend's format). Rows come in
        trie order (all single items first, by descending count); ``sort=True`` orders by
        descending support, then length; ``top_k`` keeps the first ``top_k`` of that order.

        More than ``max_rows`` rows (default 5,000,000; about 470–700 bytes each, mostly the
        frozenset) raise :class:`~tastebud.exceptions.ResultTooLargeError` with the count and
        the memory they would take; :meth:`itemsets_to_parquet` writes any number in chunks,
        :meth:`itemset_arrays` holds them without Python objects. ``max_rows=None``: no limit."""
        self._check_fitted()
        lim = L.check_limit(max_rows, "max_rows")
        if top_k is not None:
            if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
                raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
            sel = self._top_nodes(int(top_k), max(1, int(min_len)))
            cnt = self.t_count_[sel]
            return pd.DataFrame({"support": cnt / self.n_baskets_, "itemsets": self._frozensets(sel), "count": cnt})
        rows = self.n_itemsets_ if int(min_len) <= 1 else int(np.count_nonzero(self._depth >= int(min_len)))
        if lim and rows > lim:
            raise L.too_many_rows("FPGrowth.itemsets", lim, rows, L.ITEMSET_FRAME_BYTES,
                                  "itemsets_to_parquet(path, chunk_size=...)")
        fs = self._frozenset_array()
        if int(min_len) <= 1:
            sel = slice(1, None)  # every node but the empty set: plain copies, no fancy indexing
        else:
            sel = np.flatnonzero(self._depth >= int(min_len))
        cnt = self.t_count_[sel].copy()
        df = pd.DataFrame({"support": cnt / self.n_baskets_, "itemsets": fs[sel].copy(), "count": cnt}, copy=False)
        if sort:
            o = np.lexsort((self._depth[sel], -cnt))
            df = df.iloc[o].reset_index(drop=True)
        return df

    def _top_nodes(self, k: int, min_len: int, chunk: int = 1 << 22) -> np.ndarray:
        """The first ``k`` itemsets of at least ``min_len`` items by (count desc, length, trie
        order), found through the histogram of counts, in memory O(k + ties + chunk)."""
        tc, depth = self.t_count_, self._depth
        ok = lambda lo, hi: (depth[lo:hi] >= min_len) * 1.0  # noqa: E731
        hist = L.count_histogram(tc, self.n_baskets_, ok)
        hist[0] = 0.0  # (the root, count n... is excluded by depth 0)
        thr = max(1, L.fitting_threshold(hist, k)[0] - 1)  # counts >= thr hold at least k itemsets (with ties)
        cand = np.concatenate([lo + np.flatnonzero((tc[lo:lo + chunk] >= thr) & (depth[lo:lo + chunk] >= min_len))
                               for lo in range(0, len(tc), chunk)] or [np.empty(0, np.int64)])
        return cand[np.lexsort((cand, depth[cand], -tc[cand]))[:k]]

    def itemsets_to_parquet(self, path: str | os.PathLike, min_len: int = 1, *, chunk_size: int = 250_000) -> int:
        """Write the frequent itemsets (columns of :meth:`itemsets`, in trie order; ``itemsets``
        as lists of external ids sorted by id) to a Parquet file, ``chunk_size`` itemsets per row
        group, in memory O(chunk_size) whatever their number. Atomic (written to a temporary
        file, then renamed). Returns the number of rows written."""
        import pyarrow as pa

        self._check_fitted()
        chunk = _chunk_size(chunk_size)
        ids, key = self._rank_ids()
        ids = pa.array(ids, type=_value_type(ids))
        n, maxd, ml = float(self.n_baskets_), self._max_depth(), max(1, int(min_len))

        def table(nodes: np.ndarray):
            ptr, ranks = node_items(nodes, self.t_parent_, self.t_item_, self._depth, maxd)
            cnt = self.t_count_[nodes]
            return pa.table({"support": cnt / n, "itemsets": arrow_lists(ptr, ranks, ids, key), "count": cnt})

        def tables():
            for lo in range(1, len(self.t_parent_), chunk):
                nodes = np.arange(lo, min(lo + chunk, len(self.t_parent_)), dtype=np.int64)
                if ml > 1:
                    nodes = nodes[self._depth[nodes] >= ml]
                if len(nodes):
                    yield table(nodes)

        return write_parquet(path, tables(), lambda: table(np.empty(0, dtype=np.int64)))

    def _node(self, itemset: Any) -> int:
        items = [itemset] if np.ndim(itemset) == 0 and not isinstance(itemset, (set, frozenset, list, tuple)) else list(itemset)
        idx = self.items_.index(items)
        pos = np.full(len(self.items_), -1, dtype=np.int64)
        pos[self.rank_item_] = np.arange(len(self.rank_item_))
        r = np.sort(np.unique(pos[idx]))[::-1]
        if (r < 0).any():
            return -1
        node = 0
        for x in r.tolist():
            node = K.trie_child(self.t_item_, self.t_first_, self.t_nchild_, node, x)
            if node < 0:
                return -1
        return int(node)

    def support(self, itemset: Any) -> float:
        """Support of ``itemset`` if it is frequent, else 0.0 (below the threshold: not stored).
        Unknown items raise :class:`~tastebud.exceptions.UnknownIdError`."""
        self._check_fitted()
        t = self._node(itemset)
        return 0.0 if t < 0 else float(self.t_count_[t] / self.n_baskets_)

    # ------------------------------------------------------------------ rules
    def _rule_args(self, metric: str, min_threshold: float, min_confidence: float | None):
        if min_confidence is not None:
            metric, min_threshold = "confidence", min_confidence
        code = check_metric(metric)
        thr = float(min_threshold)
        if math.isnan(thr):
            raise ValueError("min_threshold must be a number, got nan")
        num = den = 0
        if code == 0:
            # exact comparison count(X)/count(A) >= thr via a rational approximation of thr only
            # when thr has a short decimal form (0.5, 0.8, 0.25, ...); otherwise use floats
            for d in (1, 10, 100, 1000, 10000, 100000, 1000000):
                if abs(thr * d - round(thr * d)) < 1e-12:
                    num, den = int(round(thr * d)), d
                    break
        return metric, code, thr, num, den

    def _max_depth(self) -> int:
        return int(self._depth.max()) if len(self._depth) else 0

    def _split_depth(self, single_consequent: bool) -> int:
        maxd = self._max_depth()
        if not single_consequent and maxd > 26:
            raise ValueError(f"itemsets of length up to {maxd}: enumerating all antecedent/consequent splits needs "
                             f"2^{maxd} subsets; use single_consequent=True or max_len")
        return maxd

    def _gen(self, args: tuple, single_consequent: bool, count_only: bool) -> tuple:
        """Every rule of the trie in one kernel call: ``(itemset, antecedent, consequent, n)``."""
        _, code, thr, num, den = args
        roots = np.arange(1, 1 + self.t_nchild_[0], dtype=np.int64)
        return K.gen_rules(self.t_parent_, self.t_item_, self.t_count_, self.t_first_, self.t_nchild_, roots,
                           float(self.n_baskets_), code, thr, num, den, bool(single_consequent), bool(count_only),
                           self._split_depth(single_consequent))

    def _stream(self, args: tuple, single_consequent: bool, chunk_size: int, copy: bool = True):
        _, code, thr, num, den = args
        return rule_index_stream(self.t_item_, self.t_count_, self.t_first_, self.t_nchild_, self.n_baskets_,
                                 self._split_depth(single_consequent), code, thr, num, den, bool(single_consequent),
                                 chunk_size, copy)

    def rule_count_bound(self, single_consequent: bool = False) -> int:
        """Number of rules over every split of every frequent itemset X of two or more items:
        ``Σ (2^|X| − 2)``, or ``Σ |X|`` with one-item consequents. It is the exact count when
        the threshold removes nothing, an upper bound otherwise. One pass over the itemset
        lengths (no rule is enumerated), so it answers at once even for 10^8 itemsets."""
        self._check_fitted()
        if self._depth_hist is None:
            self._depth_hist = [int(v) for v in L.count_histogram(self._depth, self._max_depth())]
        return sum(c * (d if single_consequent else (1 << d) - 2) for d, c in enumerate(self._depth_hist) if d >= 2)

    def _closed_form_count(self, code: int, thr: float, single_consequent: bool) -> int | None:
        """The rule count without enumerating rules when the threshold cannot remove a rule (or
        keeps only whole itemsets by their own support), else None."""
        if code == K.M_REPRESENTATIVITY:
            return self.rule_count_bound(single_consequent) if thr <= 1.0 else 0
        if code in (K.M_CONFIDENCE, K.M_LIFT, K.M_JACCARD, K.M_KULCZYNSKI) and thr <= 0.0:
            return self.rule_count_bound(single_consequent)  # these are > 0 for every rule
        if code == K.M_SUPPORT:  # the support of a rule is that of its itemset
            tc, n = self.t_count_, float(self.n_baskets_)
            hist = L.count_histogram(self._depth, self._max_depth(), lambda lo, hi: (tc[lo:hi] / n >= thr) * 1.0)
            return sum(int(c) * (k if single_consequent else (1 << k) - 2) for k, c in enumerate(hist) if k >= 2)
        return None

    def count_rules(self, metric: str = "confidence", min_threshold: float = 0.5, *, single_consequent: bool = False,
                    min_confidence: float | None = None, limit: int | None = None) -> int:
        """Number of rules that :meth:`rules` would return, without materialising them.

        A closed form over the trie when the threshold cannot filter (e.g. confidence 0,
        representativity 1, support: :meth:`rule_count_bound`); else every candidate split is
        tested in the kernel, which costs as much as generating the rules. With ``limit``,
        counting stops as soon as the count passes ``limit`` and returns that partial count (a
        number > ``limit``), so that "more than N?" is answered in time O(N)."""
        self._check_fitted()
        args = self._rule_args(metric, min_threshold, min_confidence)
        closed = self._closed_form_count(args[1], args[2], single_consequent)
        if closed is not None:
            return closed
        if limit is None:
            bound = self.rule_count_bound(single_consequent)
            if bound > _COUNT_WARN:
                warnings.warn(f"count_rules tests {bound:,} candidate rules one by one (minutes to hours); "
                              "count_rules(..., limit=N) stops just past N, rule_count_bound() answers at once",
                              stacklevel=2)
            return int(self._gen(args, single_consequent, True)[3])
        lim = L.check_limit(limit, "limit")
        total = 0
        for x, _, _ in self._stream(args, single_consequent, min(lim + 1, _RULE_CHUNK), copy=False):
            total += len(x)
            if total > lim:
                break
        return total

    def _rule_arrays_of(self, x: np.ndarray, a: np.ndarray, c: np.ndarray) -> RuleArrays:
        tc = self.t_count_
        return RuleArrays(a - 1, c - 1, x - 1, tc[x], tc[a], tc[c], self.n_baskets_)

    def _guarded_rules(self, args: tuple, single_consequent: bool, where: str) -> RuleArrays:
        """All rules as index arrays, unless there are more than ``max_rules``: then
        :class:`~tastebud.exceptions.ResultTooLargeError` (with the count and a support that fits)."""
        lim = L.check_limit(self.max_rules, "max_rules")
        if not lim or self.rule_count_bound(single_consequent) <= lim:
            x, a, c, _ = self._gen(args, single_consequent, False)
            return self._rule_arrays_of(x, a, c)
        parts, total = [], 0
        for part in self._stream(args, single_consequent, _RULE_CHUNK):
            total += len(part[0])
            if total > lim:
                break
            parts.append(part)
        else:
            if not parts:
                return self._rule_arrays_of(*(np.empty(0, np.int64),) * 3)
            return self._rule_arrays_of(*(np.concatenate([p[i] for p in parts]) for i in range(3)))
        del parts
        raise self._too_many_rules(args, single_consequent, lim, where)

    def check_rule_count(self, metric: str = "confidence", min_threshold: float = 0.5, *,
                         single_consequent: bool = False, min_confidence: float | None = None,
                         limit: int | None = None, where: str = "FPGrowth.check_rule_count", cli: bool = False) -> int:
        """The number of rules, if it is at most ``limit`` (default: ``max_rules``; None/0 and
        no ``max_rules``: no limit); else :class:`~tastebud.exceptions.ResultTooLargeError` with
        the count and a ``min_support`` that fits, as :meth:`rules` raises it. Counting stops
        early on either side: at once when :meth:`rule_count_bound` fits, just past ``limit``
        otherwise."""
        self._check_fitted()
        args = self._rule_args(metric, min_threshold, min_confidence)
        lim = L.check_limit(self.max_rules if limit is None else limit, "limit")
        if not lim or self.rule_count_bound(single_consequent) <= lim:
            return self.count_rules(args[0], args[2], single_consequent=single_consequent)
        n = self.count_rules(args[0], args[2], single_consequent=single_consequent, limit=lim)
        if n > lim:
            raise self._too_many_rules(args, single_consequent, lim, where, cli)
        return n

    def _too_many_rules(self, args: tuple, single_consequent: bool, lim: int, where: str, cli: bool = False) -> Exception:
        """The error for more than ``lim`` rules: counts them all (streamed, nothing kept) up to
        ``max(_COUNT_BUDGET × lim, _COUNT_MIN)`` rules to give the exact number and the smallest support that
        fits (rules keep their metric when the support threshold rises; a rule goes with its
        itemset's count); past that budget, the support that fits the upper bound."""
        n, tc, depth = self.n_baskets_, self.t_count_, self._depth
        hist, total, exact = np.zeros(n + 1), 0, True
        for x, _, _ in self._stream(args, single_consequent, _RULE_CHUNK, copy=False):
            hist += np.bincount(tc[x], minlength=n + 1)
            total += len(x)
            if total > max(_COUNT_BUDGET * lim, _COUNT_MIN):
                exact = False
                break
        if not exact:  # every candidate split of the itemsets of each count: an upper bound
            hist = L.count_histogram(tc, n, lambda lo, hi: L.rule_weights(depth[lo:hi], single_consequent))
        fit = (*L.fitting_threshold(hist, lim), exact)
        metric, _, thr, _, _ = args
        what = (f"{metric} >= {thr:g}, {'one-item consequents' if single_consequent else 'every antecedent/consequent split'}"
                f", {L.support_text(self.min_count_, self.n_baskets_)}")
        return L.too_many_rules(where, lim, total, exact, what, self.n_baskets_, fit, cli)

    def rule_arrays(self, metric: str = "confidence", min_threshold: float = 0.5, *, single_consequent: bool = False,
                    min_confidence: float | None = None) -> RuleArrays:
        """Rules as index arrays into :meth:`itemset_arrays` rows (no Python object per rule;
        48 bytes per rule). Limited by ``max_rules`` like :meth:`rules`."""
        self._check_fitted()
        args = self._rule_args(metric, min_threshold, min_confidence)
        return self._guarded_rules(args, single_consequent, "FPGrowth.rule_arrays")

    def _metric(self, ra: RuleArrays, metric: str) -> np.ndarray:
        n = float(self.n_baskets_)
        return rule_metrics(ra.count / n, ra.antecedent_count / n, ra.consequent_count / n, ra.count,
                            ra.antecedent_count, columns=(metric,))[metric]

    def _rules_frame(self, ra: RuleArrays, metric: str, top_k: int | None, sort: bool) -> pd.DataFrame:
        n = float(self.n_baskets_)
        cols = rule_metrics(ra.count / n, ra.antecedent_count / n, ra.consequent_count / n, ra.count, ra.antecedent_count)
        order = None
        if top_k is not None:
            order = np.lexsort((ra.itemset, -cols[metric]))[: int(top_k)]
        elif sort:
            order = np.lexsort((ra.itemset, -cols[metric]))
        if order is not None:
            ra = RuleArrays(*(f[order] for f in ra[:6]), ra.n_baskets)
            cols = {k2: v2[order] for k2, v2 in cols.items()}
        data = {"antecedents": self._frozensets(ra.antecedent + 1), "consequents": self._frozensets(ra.consequent + 1),
                **{m: cols[m] for m in METRICS}}
        return pd.DataFrame(data, copy=False)

    def rules(self, metric: str = "confidence", min_threshold: float = 0.5, *, single_consequent: bool = False,
              top_k: int | None = None, sort: bool = False, min_confidence: float | None = None) -> pd.DataFrame:
        """Association rules A → C with ``metric >= min_threshold`` (mlxtend columns; see
        :mod:`tastebud.models.rules.association` for the measures). ``metric`` is any of the
        columns (``confidence``, ``lift``, ``representativity``, ...).

        All splits of every frequent itemset into antecedent and consequent (mlxtend), or only
        one-item consequents with ``single_consequent=True`` (pyfim, Spark, arules). ``top_k``
        keeps the best ``top_k`` rules by ``metric`` while streaming (memory O(top_k + chunk); the
        number of rules that passed the threshold is in ``df.attrs["n_rules"]``); ``sort`` orders by descending ``metric``. ``min_confidence=x`` is shorthand for
        ``metric="confidence", min_threshold=x``. Confidence thresholds with up to 6 decimals are
        compared exactly on counts (count(A∪C)·10^d >= t·10^d·count(A)).

        More than ``max_rules`` rules (without ``top_k``) raise
        :class:`~tastebud.exceptions.ResultTooLargeError` with their number, the memory they
        would take and a ``min_support`` that fits; :meth:`rules_to_parquet` and
        :meth:`iter_rules` stream any number in bounded memory.
        """
        self._check_fitted()
        args = self._rule_args(metric, min_threshold, min_confidence)
        metric = args[0]
        if top_k is None:
            return self._rules_frame(self._guarded_rules(args, single_consequent, "FPGrowth.rules"), metric, None, sort)
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
            raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
        k = int(top_k)
        tc, n = self.t_count_, float(self.n_baskets_)
        bx = ba = bc = np.empty(0, dtype=np.int64)
        bv = np.empty(0, dtype=np.float64)
        floor = -np.inf  # the k-th best value so far: rules below it cannot enter
        total = 0
        for x, a, c in self._stream(args, single_consequent, max(_RULE_CHUNK, k), copy=False):
            total += len(x)
            v = K.rule_values(tc, x, a, c, n, args[1])
            keep = np.flatnonzero(v >= floor)
            bx, ba, bc = np.concatenate([bx, x[keep]]), np.concatenate([ba, a[keep]]), np.concatenate([bc, c[keep]])
            bv = np.concatenate([bv, v[keep]])
            if len(bv) > k:
                kth = np.partition(bv, len(bv) - k)[len(bv) - k]  # the k-th largest value
                cand = np.flatnonzero(bv >= kth)  # ties with it included, then the exact order
                o = cand[np.lexsort((bx[cand], -bv[cand]))[:k]]
                bx, ba, bc, bv = bx[o], ba[o], bc[o], bv[o]
                floor = float(kth)
        df = self._rules_frame(self._rule_arrays_of(bx, ba, bc), metric, k, True)
        df.attrs["n_rules"] = total  # how many rules passed the threshold, of which these are the best
        return df

    def iter_rules(self, metric: str = "confidence", min_threshold: float = 0.5, *, single_consequent: bool = False,
                   chunk_size: int = 250_000, min_confidence: float | None = None,
                   chunk_itemsets: int | None = None) -> Iterator[pd.DataFrame]:
        """Yield the rules of :meth:`rules` as a stream of DataFrames of at most ``chunk_size``
        rules each (or the rules of one itemset, if more), so that hundreds of millions of rules
        never sit in memory. Not limited by ``max_rules``. ``chunk_itemsets`` is the former name
        of ``chunk_size`` (deprecated)."""
        if chunk_itemsets is not None:
            warnings.warn("iter_rules(chunk_itemsets=...) is deprecated; chunks are now counted in rules: use chunk_size",
                          DeprecationWarning, stacklevel=2)
            chunk_size = chunk_itemsets
        self._check_fitted()
        args = self._rule_args(metric, min_threshold, min_confidence)
        for part in self._stream(args, single_consequent, _chunk_size(chunk_size), copy=False):
            yield self._rules_frame(self._rule_arrays_of(*part), args[0], None, False)

    def rules_to_parquet(self, path: str | os.PathLike, metric: str = "confidence", min_threshold: float = 0.5, *,
                         single_consequent: bool = False, min_confidence: float | None = None,
                         chunk_size: int = 250_000) -> int:
        """Write the rules of :meth:`rules` to a Parquet file, ``chunk_size`` rules per row group,
        in memory O(chunk_size) whatever their number (not limited by ``max_rules``; about 1 kB per
        rule of a chunk while it is converted). Columns
        are :meth:`rules`'s; ``antecedents`` and ``consequents`` are lists of external ids sorted
        by id. Rows come in mining order (use ``top_k`` in :meth:`rules` for the best ones). The
        file is written under a temporary name and renamed when complete. Returns the rows."""
        import pyarrow as pa

        self._check_fitted()
        args = self._rule_args(metric, min_threshold, min_confidence)
        ids, key = self._rank_ids()
        ids = pa.array(ids, type=_value_type(ids))
        maxd, n = self._max_depth(), float(self.n_baskets_)

        def lists(nodes: np.ndarray):
            ptr, ranks = node_items(nodes, self.t_parent_, self.t_item_, self._depth, maxd)
            return arrow_lists(ptr, ranks, ids, key)

        def table(x: np.ndarray, a: np.ndarray, c: np.ndarray):
            ra = self._rule_arrays_of(x, a, c)
            cols = rule_metrics(ra.count / n, ra.antecedent_count / n, ra.consequent_count / n, ra.count,
                                ra.antecedent_count)
            return pa.table({"antecedents": lists(a), "consequents": lists(c), **{m: cols[m] for m in METRICS}})

        empty = np.empty(0, dtype=np.int64)
        return write_parquet(path, (table(*p) for p in self._stream(args, single_consequent, _chunk_size(chunk_size), copy=False)),
                             lambda: table(empty, empty, empty))

    # ------------------------------------------------------------------ persistence
    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {
            "items_ids": self.items_.to_array(), "rank_item": self.rank_item_,
            "t_parent": self.t_parent_, "t_item": self.t_item_, "t_count": self.t_count_,
            "t_first": self.t_first_, "t_nchild": self.t_nchild_,
        }

    def _get_extra(self) -> dict[str, Any]:
        return {"n_baskets": self.n_baskets_, "min_count": self.min_count_}

    @classmethod
    def _extra_spec(cls, params: dict[str, Any]) -> dict[str, Any]:
        return {"n_baskets": "int", "min_count": "int"}

    @classmethod
    def _array_specs(cls, params: dict[str, Any], extra: dict[str, Any], shapes: Any) -> dict[str, ArraySpec]:
        return trie_specs("")

    @classmethod
    def _check_saved(cls, path: Any, arrays: dict[str, np.ndarray], extra: dict[str, Any],
                     params: dict[str, Any], sizes: dict[str, int]) -> None:
        check_trie(path, arrays, "", extra)

    def _set_arrays(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        self.items_ = IdMap(arrays["items_ids"], "item")
        self.rank_item_ = arrays["rank_item"].astype(np.int64)
        self.n_baskets_ = int(extra["n_baskets"])
        self.min_count_ = int(extra["min_count"])
        self._set_trie(arrays["t_parent"].astype(np.int64), arrays["t_item"].astype(np.int32),
                       arrays["t_count"].astype(np.int64), arrays["t_first"].astype(np.int64),
                       arrays["t_nchild"].astype(np.int32))


def trie_specs(prefix: str) -> dict[str, ArraySpec]:
    """Declared arrays of a saved FP-Growth trie (member names prefixed with ``prefix``)."""
    return {f"{prefix}items_ids": ids("n_items"),
            f"{prefix}rank_item": ArraySpec("int", ("n_freq",), lo=0, hi="n_items", unique=True),
            f"{prefix}t_parent": index("n_nodes", lo=-1, hi="n_nodes"),
            f"{prefix}t_item": index("n_nodes", lo=-1, hi="n_freq"),
            f"{prefix}t_count": counts("n_nodes"),
            f"{prefix}t_first": index("n_nodes", lo=0, hi="n_nodes+1"),
            f"{prefix}t_nchild": index("n_nodes", lo=0, hi="n_nodes")}


def check_trie(path: Any, arrays: dict[str, np.ndarray], prefix: str, extra: dict[str, Any]) -> None:
    """The trie invariants the kernels rely on (see :mod:`tastebud.kernels.fpgrowth`): node 0 is
    the root, nodes 1..F are the single items in rank order, every other node's parent precedes
    it, children are stored contiguously after their parent in increasing rank, ranks strictly
    decrease down every path, and counts never exceed the number of baskets."""
    def fail(msg: str) -> None:
        raise FormatError(f"{path}: the saved itemset trie ({prefix}t_*) is inconsistent: {msg}")

    tp, ti, tc = (arrays[f"{prefix}{k}"].astype(np.int64) for k in ("t_parent", "t_item", "t_count"))
    tf, tn = (arrays[f"{prefix}{k}"].astype(np.int64) for k in ("t_first", "t_nchild"))
    n, F = len(tp), len(arrays[f"{prefix}rank_item"])
    n_baskets = extra["n_baskets"]
    if n < 1 + F:
        fail(f"{n} nodes for {F} frequent items")
    if n_baskets < 0 or extra["min_count"] < 0:
        fail(f"n_baskets={n_baskets}, min_count={extra['min_count']}")
    if tc[0] != n_baskets or (tc > n_baskets).any():
        fail(f"the root counts {tc[0]} baskets, n_baskets is {n_baskets}")
    if tf[0] != 1 or tn[0] != F or not np.array_equal(ti[1:F + 1], np.arange(F)) or (tp[1:F + 1] != 0).any():
        fail("nodes 1..F must be the single items in rank order, children of the root")
    t = np.arange(1, n)
    if ((tp[1:] < 0) | (tp[1:] >= t)).any():
        fail("a node's parent must precede it")
    if int(tn.sum()) != n - 1:
        fail(f"the child counts add up to {int(tn.sum())}, not {n - 1}")
    has = tn > 0
    if (tf[has] <= np.flatnonzero(has)).any() or (tf + tn > n).any():
        fail("children must follow their parent and lie within the trie")
    owner = np.repeat(np.arange(n), tn)
    start = np.repeat(tf - np.concatenate([[0], np.cumsum(tn)[:-1]]), tn)
    members = start + np.arange(n - 1)
    if (tp[members] != owner).any():
        fail("a child range holds a node of another parent")
    child, parent = t, tp[1:]
    deep = parent > 0
    if (ti[child[deep]] >= ti[parent[deep]]).any():
        fail("item ranks must strictly decrease from parent to child")
    same = owner[1:] == owner[:-1]
    if (ti[members[1:]][same] <= ti[members[:-1]][same]).any():
        fail("the children of a node must be in increasing rank")


# rule frames of tries of up to this many nodes may build (and cache) one frozenset per node;
# larger ones build frozensets only for the nodes a result needs
_FS_ALL_NODES = 1_000_000
# rules per chunk of the streamed paths (top_k, counting with a limit, the max_rules guard)
_RULE_CHUNK = 1 << 20
# the max_rules error counts the rules exactly up to this many times max_rules (at least
# _COUNT_MIN rules; seconds)
_COUNT_BUDGET = 10
_COUNT_MIN = 20_000_000
# count_rules warns above this many candidate rules to test
_COUNT_WARN = 2_000_000_000


def _chunk_size(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {value!r}")
    return int(value)


def _value_type(ids: np.ndarray):
    """The pyarrow type of the external ids (strings or integers)."""
    import pyarrow as pa

    return pa.array(ids[:1]).type if len(ids) else pa.string()


# frozensets per chunk of trie nodes (parent indices converted to Python ints one chunk at a time,
# so that their memory is reused)
_FS_CHUNK = 1 << 16
# above this many frozensets, they are moved straight to the oldest GC generation (see below)
_FS_GC_PROMOTE = 100_000


def _trie_frozensets(t_parent: np.ndarray, t_item: np.ndarray, rank_ids: list) -> np.ndarray:
    """One frozenset per trie node: its parent's plus one item (``fs[p] | {id}``, which copies
    the parent's hash table instead of hashing every item again and gives the smallest tables
    CPython makes), returned as an object array.

    Garbage collection: the cyclic GC is paused while the containers are created (its repeated
    scans would dominate). Afterwards, when the GC was enabled and nobody uses ``gc.freeze``,
    ``gc.freeze(); gc.unfreeze()`` moves the tracked objects of the process, the new frozensets
    included, into the oldest generation without scanning them: the frozensets are alive (cached
    here), and scanning them once in generation 0 and again in generation 1, as the next
    allocations would otherwise do, costs about as much as creating them. Objects moved along
    are still collected by the next full collection; nothing else changes.
    """
    n = len(t_parent)
    single = [frozenset((x,)) for x in rank_ids]
    fs: list = [frozenset()]
    append = fs.append
    was = gc.isenabled()
    gc.disable()
    try:
        for lo in range(1, n, _FS_CHUNK):
            hi = min(n, lo + _FS_CHUNK)
            for p, i in zip(t_parent[lo:hi].tolist(), t_item[lo:hi].tolist()):
                append(fs[p] | single[i])
        arr = np.fromiter(fs, dtype=object, count=n)
        del fs
    finally:
        if was:
            if n > _FS_GC_PROMOTE and gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()
    return arr
