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
from typing import Any, Iterator, NamedTuple

import numpy as np
import pandas as pd

from ...array_specs import ArraySpec, counts, ids, index
from ...data.baskets import as_baskets
from ...data.idmap import IdMap
from ...exceptions import DataError, FormatError
from ...kernels import fpgrowth as K
from ..base import Model
from .metrics import METRICS, check_metric, rule_metrics


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


class FPGrowth(Model):
    """Frequent itemsets by FP-Growth; association rules from them.

    Parameters
    ----------
    min_support : float in (0, 1] (share of baskets; count threshold ``ceil(min_support·n)``)
        or int >= 1 (absolute count). Default 0.5 as in mlxtend.
    max_len : longest itemset to mine (None: no limit).

    After ``fit``: ``itemsets()`` (DataFrame: ``support``, ``itemsets`` as frozensets of external
    item ids, ``count``), ``itemset_arrays()`` (compact CSR form), ``rules(...)``,
    ``iter_rules(...)`` (streamed chunks), ``count_rules(...)``, ``support(itemset)``.
    Results are exact and identical to mlxtend's ``fpgrowth``/``association_rules``.
    """

    registry_name = "fpgrowth"
    demo_params = {"min_support": 0.01}

    def __init__(self, min_support: float | int = 0.5, max_len: int | None = None):
        self.min_support = min_support
        self.max_len = max_len

    # ------------------------------------------------------------------ fit
    def fit(self, data: Any) -> "FPGrowth":
        """Mine ``data``: :class:`~tastebud.data.Baskets`, a list of baskets, a long
        ``transaction, item`` DataFrame, a one-hot DataFrame, or a FIMI/CSV basket file path."""
        b = as_baskets(data)
        n = len(b)
        if n == 0:
            raise DataError("FPGrowth.fit: no baskets")
        if self.max_len is not None and (not isinstance(self.max_len, (int, np.integer)) or isinstance(self.max_len, bool) or self.max_len < 1):
            raise ValueError(f"max_len must be None or an integer >= 1, got {self.max_len!r}")
        min_count = min_count_for(self.min_support, n)
        m = b.matrix
        counts = np.bincount(m.indices, minlength=b.n_items).astype(np.int64)
        freq = np.flatnonzero(counts >= min_count)
        order = freq[np.lexsort((freq, -counts[freq]))]  # by count desc, then index
        rank_of = np.full(b.n_items, -1, dtype=np.int64)
        rank_of[order] = np.arange(len(order))
        indptr, ranks = K.prepare_ranks(m.indptr.astype(np.int64), m.indices.astype(np.int64), rank_of)
        tp, ti, tc, tf, tn, _ = K.fpgrowth_mine(indptr, ranks, len(order), counts[order], n, min_count,
                                                int(self.max_len or 0))
        self.items_: IdMap = b.items
        self.rank_item_ = order.astype(np.int64)
        self.n_baskets_ = int(n)
        self.min_count_ = int(min_count)
        self._set_trie(tp, ti, tc, tf, tn)
        self.fitted_ = True
        return self

    def _set_trie(self, tp, ti, tc, tf, tn) -> None:
        self.t_parent_, self.t_item_, self.t_count_ = tp, ti, tc
        self.t_first_, self.t_nchild_ = tf, tn
        self._depth = K.trie_depths(tp)
        self._fs_arr: np.ndarray | None = None

    # ------------------------------------------------------------------ itemsets
    @property
    def n_itemsets_(self) -> int:
        self._check_fitted()
        return len(self.t_parent_) - 1

    def itemset_arrays(self) -> ItemsetArrays:
        """All frequent itemsets as CSR arrays (row r = itemset r of :meth:`itemsets`), without
        creating a Python object per itemset."""
        self._check_fitted()
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

    def itemsets(self, min_len: int = 1, sort: bool = False) -> pd.DataFrame:
        """DataFrame with ``support``, ``itemsets`` (frozensets of external ids) and ``count``,
        one row per frequent itemset of at least ``min_len`` items (mlxtend's format). Rows come in
        trie order (all single items first, by descending count); ``sort=True`` orders by
        descending support, then length."""
        self._check_fitted()
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

    def _rule_chunks(self, metric: str, min_threshold: float, single_consequent: bool, count_only: bool,
                     min_confidence: float | None, chunk_itemsets: int | None) -> Iterator[tuple]:
        self._check_fitted()
        metric, code, thr, num, den = self._rule_args(metric, min_threshold, min_confidence)
        maxd = self._max_depth()
        if not single_consequent and maxd > 26:
            raise ValueError(f"itemsets of length up to {maxd}: enumerating all antecedent/consequent splits needs "
                             f"2^{maxd} subsets; use single_consequent=True or max_len")
        roots = np.arange(1, 1 + self.t_nchild_[0], dtype=np.int64)
        if chunk_itemsets is None:
            groups = [roots]
        else:
            # subtree sizes of the root's children (nodes are contiguous per frame, not per subtree:
            # count by walking up to depth-1 ancestors)
            top = np.arange(len(self.t_parent_))
            anc = top.copy()
            for _ in range(maxd):
                p = self.t_parent_[anc]
                anc = np.where(p > 0, p, anc)
            sizes = np.bincount(anc[1:], minlength=len(self.t_parent_))[roots]
            groups, cur, acc = [], [], 0
            for r, s in zip(roots.tolist(), sizes.tolist()):
                cur.append(r)
                acc += s
                if acc >= chunk_itemsets:
                    groups.append(np.asarray(cur, dtype=np.int64))
                    cur, acc = [], 0
            if cur:
                groups.append(np.asarray(cur, dtype=np.int64))
        for g in groups:
            yield K.gen_rules(self.t_parent_, self.t_item_, self.t_count_, self.t_first_, self.t_nchild_, g,
                              float(self.n_baskets_), code, thr, num, den, bool(single_consequent), bool(count_only),
                              maxd)

    def count_rules(self, metric: str = "confidence", min_threshold: float = 0.5, *, single_consequent: bool = False,
                    min_confidence: float | None = None) -> int:
        """Number of rules that :meth:`rules` would return, without materialising them."""
        return int(sum(c[3] for c in self._rule_chunks(metric, min_threshold, single_consequent, True, min_confidence, None)))

    def rule_arrays(self, metric: str = "confidence", min_threshold: float = 0.5, *, single_consequent: bool = False,
                    min_confidence: float | None = None) -> RuleArrays:
        """Rules as index arrays into :meth:`itemset_arrays` rows (no Python object per rule)."""
        parts = list(self._rule_chunks(metric, min_threshold, single_consequent, False, min_confidence, None))
        return self._rule_arrays_of(parts)

    def _rule_arrays_of(self, parts: list) -> RuleArrays:
        x = np.concatenate([p[0] for p in parts]) if parts else np.empty(0, np.int64)
        a = np.concatenate([p[1] for p in parts]) if parts else np.empty(0, np.int64)
        c = np.concatenate([p[2] for p in parts]) if parts else np.empty(0, np.int64)
        tc = self.t_count_
        return RuleArrays(a - 1, c - 1, x - 1, tc[x], tc[a], tc[c], self.n_baskets_)

    def _rules_frame(self, ra: RuleArrays, metric: str, top_k: int | None, sort: bool) -> pd.DataFrame:
        n = float(self.n_baskets_)
        cols = rule_metrics(ra.count / n, ra.antecedent_count / n, ra.consequent_count / n, ra.count, ra.antecedent_count)
        order = None
        if top_k is not None:
            k = int(top_k)
            if k < 1:
                raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
            v = cols[metric]
            order = np.lexsort((ra.itemset, -v))[:k]
        elif sort:
            order = np.lexsort((ra.itemset, -cols[metric]))
        if order is not None:
            ra = RuleArrays(*(f[order] for f in ra[:6]), ra.n_baskets)
            cols = {k2: v2[order] for k2, v2 in cols.items()}
        fs = self._frozenset_array()
        data = {"antecedents": fs[ra.antecedent + 1], "consequents": fs[ra.consequent + 1],
                **{m: cols[m] for m in METRICS}}
        return pd.DataFrame(data, copy=False)

    def rules(self, metric: str = "confidence", min_threshold: float = 0.5, *, single_consequent: bool = False,
              top_k: int | None = None, sort: bool = False, min_confidence: float | None = None) -> pd.DataFrame:
        """Association rules A → C with ``metric >= min_threshold`` (mlxtend columns; see
        :mod:`tastebud.models.rules.association` for the measures).

        All splits of every frequent itemset into antecedent and consequent (mlxtend), or only
        one-item consequents with ``single_consequent=True`` (pyfim, Spark, arules). ``top_k``
        keeps the best ``top_k`` rules by ``metric`` while streaming (memory O(top_k + chunk));
        ``sort`` orders by descending ``metric``. ``min_confidence=x`` is shorthand for
        ``metric="confidence", min_threshold=x``. Confidence thresholds with up to 6 decimals are
        compared exactly on counts (count(A∪C)·10^d >= t·10^d·count(A)).
        """
        metric, *_ = self._rule_args(metric, min_threshold, min_confidence)
        if top_k is None:
            ra = self.rule_arrays(metric, min_threshold, single_consequent=single_consequent, min_confidence=min_confidence)
            return self._rules_frame(ra, metric, None, sort)
        # streamed top-k
        best: RuleArrays | None = None
        k = int(top_k)
        n = float(self.n_baskets_)
        for part in self._rule_chunks(metric, min_threshold, single_consequent, False, min_confidence, 200_000):
            ra = self._rule_arrays_of([part] if best is None else [part])
            if best is not None:
                ra = RuleArrays(*(np.concatenate([f1, f2]) for f1, f2 in zip(best[:6], ra[:6])), ra.n_baskets)
            if len(ra.count) > k:
                v = rule_metrics(ra.count / n, ra.antecedent_count / n, ra.consequent_count / n, ra.count, ra.antecedent_count)[metric]
                o = np.lexsort((ra.itemset, -v))[:k]
                ra = RuleArrays(*(f[o] for f in ra[:6]), ra.n_baskets)
            best = ra
        if best is None:
            best = self._rule_arrays_of([])
        return self._rules_frame(best, metric, k, True)

    def iter_rules(self, metric: str = "confidence", min_threshold: float = 0.5, *, single_consequent: bool = False,
                   chunk_itemsets: int = 100_000, min_confidence: float | None = None) -> Iterator[pd.DataFrame]:
        """Yield the rules of :meth:`rules` as a stream of DataFrames, each from the rules of about
        ``chunk_itemsets`` itemsets, so that hundreds of millions of rules never sit in memory."""
        metric, *_ = self._rule_args(metric, min_threshold, min_confidence)
        for part in self._rule_chunks(metric, min_threshold, single_consequent, False, min_confidence, int(chunk_itemsets)):
            if part[3]:
                yield self._rules_frame(self._rule_arrays_of([part]), metric, None, False)

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
