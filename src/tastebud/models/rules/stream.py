"""Bounded-memory passes over a mined itemset trie (see :mod:`tastebud.kernels.fpgrowth`):
rules in chunks of at most ``chunk_size`` rules, the items of any trie nodes as CSR lists, and
Parquet files written one chunk (row group) at a time.

The rule stream drives the kernel's resumable rule loop (``_rules_loop``) directly: the loop
stops when its output buffer is full, the chunk is handed out, and the loop resumes where it
stopped. Memory is O(chunk_size) plus 24 bytes × 2^L for itemsets of up to L items (the loop
emits all the rules of an itemset at once), whatever the number of rules.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from ...kernels import fpgrowth as K


def rule_index_stream(t_item: np.ndarray, t_count: np.ndarray, t_first: np.ndarray, t_nchild: np.ndarray,
                      n_baskets: int, max_depth: int, code: int, thr: float, num: int, den: int,
                      single_consequent: bool, chunk_size: int,
                      copy: bool = True) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield ``(itemset, antecedent, consequent)`` trie-node arrays of the rules passing the
    threshold, in the order of :func:`tastebud.kernels.fpgrowth.gen_rules`, in chunks of at most
    ``chunk_size`` rules. The kernel's buffer holds ``max(chunk_size, 2^max_depth - 2)`` rules
    (24 bytes each): all the rules of one itemset at least. With ``copy=False`` the arrays are views
    of buffers that the next chunk overwrites (for callers that use a chunk before asking for
    the next one)."""
    stack, sdepth, off, sub, items, st, need = K.rules_state(int(max_depth), bool(single_consequent))
    roots = np.arange(1, 1 + int(t_nchild[0]), dtype=np.int64)
    per_itemset = max_depth if single_consequent else (1 << max_depth) - 2
    step = max(int(chunk_size), 1)
    cap = max(step, per_itemset)
    rx = np.empty(cap, dtype=np.int64)
    ra = np.empty(cap, dtype=np.int64)
    rc = np.empty(cap, dtype=np.int64)
    n = float(n_baskets)
    while True:
        need[:] = 0
        more = K._rules_loop(st, need, t_item, t_count, t_first, t_nchild, roots, n, int(code), float(thr),
                             int(num), int(den), bool(single_consequent), False, rx, ra, rc, stack, sdepth, off,
                             sub, items)
        if need[0] > stack.shape[0]:
            size = max(int(need[0]), 2 * stack.shape[0])
            stack = np.resize(stack, size)
            sdepth = np.resize(sdepth, size)
        nr = int(st[2])
        if nr and (not more or need[1] > rx.shape[0]):
            # the buffer holds all the rules of whole itemsets (2^L - 2 for one of L items):
            # hand them out in slices of chunk_size
            for lo in range(0, nr, step):
                hi = min(nr, lo + step)
                yield (rx[lo:hi].copy(), ra[lo:hi].copy(), rc[lo:hi].copy()) if copy else (rx[lo:hi], ra[lo:hi], rc[lo:hi])
            st[2] = 0
        if not more:
            return


def node_items(nodes: np.ndarray, t_parent: np.ndarray, t_item: np.ndarray, depth: np.ndarray,
               max_depth: int) -> tuple[np.ndarray, np.ndarray]:
    """Items (ranks) of the trie ``nodes`` as CSR ``(indptr, ranks)``, each row in ascending
    rank, by walking up the parents (one vectorised step per level)."""
    nodes = np.asarray(nodes, dtype=np.int64)
    d = depth[nodes].astype(np.int64)
    indptr = np.zeros(len(nodes) + 1, dtype=np.int64)
    np.cumsum(d, out=indptr[1:])
    out = np.empty(int(indptr[-1]), dtype=np.int32)
    cur = nodes.copy()
    pos = indptr[:-1].copy()
    alive = np.flatnonzero(cur > 0)
    for _ in range(int(max_depth)):
        if len(alive) == 0:
            break
        c = cur[alive]
        out[pos[alive]] = t_item[c]
        pos[alive] += 1
        cur[alive] = t_parent[c]
        alive = alive[cur[alive] > 0]
    return indptr, out


def sorted_lists(indptr: np.ndarray, ranks: np.ndarray, rank_key: np.ndarray) -> np.ndarray:
    """``ranks`` reordered so that every CSR row is sorted by ``rank_key`` (the position of each
    rank's external id in sorted id order)."""
    if len(ranks) == 0:
        return ranks
    rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    return ranks[np.lexsort((rank_key[ranks], rows))]


def arrow_lists(indptr: np.ndarray, ranks: np.ndarray, rank_ids: Any, rank_key: np.ndarray):
    """A pyarrow list array, one list of external ids per row (sorted by id). ``rank_ids``: a
    pyarrow array of the external id of every rank (the values are taken from it, so strings
    are never copied through numpy)."""
    import pyarrow as pa

    values = rank_ids.take(pa.array(sorted_lists(indptr, ranks, rank_key).astype(np.int32)))
    if indptr[-1] >= 2**31:
        return pa.LargeListArray.from_arrays(pa.array(indptr, type=pa.int64()), values)
    return pa.ListArray.from_arrays(pa.array(indptr.astype(np.int32)), values)


def write_parquet(path: str | os.PathLike, tables: Iterator[Any], empty: Callable[[], Any]) -> int:
    """Write the pyarrow tables of ``tables`` to ``path`` as one Parquet file, one row group per
    table, atomically (a temporary file next to ``path``, renamed at the end; removed on error).
    ``empty()`` gives the (empty) table written when ``tables`` yields nothing. Returns the rows."""
    import pyarrow.parquet as pq

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tastebud-tmp-{uuid.uuid4().hex[:8]}")
    writer = None
    rows = 0
    try:
        for t in tables:
            if writer is None:
                writer = pq.ParquetWriter(tmp, t.schema)
            writer.write_table(t)
            rows += t.num_rows
        if writer is None:
            writer = pq.ParquetWriter(tmp, empty().schema)
            writer.write_table(empty())
        writer.close()
        writer = None
        os.replace(tmp, path)
    finally:
        if writer is not None:
            writer.close()
        if tmp.exists():
            tmp.unlink()
    return rows
