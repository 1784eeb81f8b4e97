"""Size guards of the association-rule family: how many itemsets and rules may be built in
memory, what they cost, and which minimum support would fit under a limit.

Dense data makes the number of frequent itemsets and rules explode as the support threshold
falls (Groceries at a count of 2: 790,072 itemsets and 73,028,091 rules; Mushroom at 1%: 90.75M
itemsets). Every step that holds a result in memory checks its size first and raises
:class:`~tastebud.exceptions.ResultTooLargeError` with the count reached, the memory it would take
and a support threshold that fits; the streaming paths (``rules_to_parquet``,
``itemsets_to_parquet``, ``iter_rules``, ``top_k``) are bounded by their chunk instead.

Defaults are fixed numbers (the same answer on every machine), each chosen so that the guarded
step stays near 3 GB or below:

=====================  ===========  =========================================================
limit                  default      what it bounds (measured cost)
=====================  ===========  =========================================================
``max_itemsets``       100,000,000  itemsets mined by ``FPGrowth.fit`` (trie, 32 B each)
``max_rules``          10,000,000   rules held by ``rules()`` / ``rule_arrays()`` (~170 B per
                                    rule in the DataFrame)
``max_rows``           5,000,000    rows of the ``itemsets()`` DataFrame (~470–700 B per row,
                                    mostly the frozenset)
``max_rows`` (arrays)  25,000,000   rows of ``itemset_arrays()`` (16 B + 8 B per item)
=====================  ===========  =========================================================

``None`` (or 0) switches a limit off.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...exceptions import ResultTooLargeError

DEFAULT_MAX_ITEMSETS = 100_000_000
DEFAULT_MAX_RULES = 10_000_000
DEFAULT_MAX_ROWS = 5_000_000
DEFAULT_MAX_ARRAY_ROWS = 25_000_000
#: Apriori (the reference miner) keeps Python objects per itemset
APRIORI_MAX_ITEMSETS = 1_000_000

#: bytes per itemset while mining (trie: parent 8, item 4, count 8, first child 8, children 4)
TRIE_BYTES = 32
#: bytes per row of the ``itemsets()`` DataFrame (frozenset, object pointer, support, count),
#: measured on Groceries (short itemsets; longer ones take more)
ITEMSET_FRAME_BYTES = 470
#: bytes per row of a rules DataFrame (12 float columns, two object pointers, the index arrays
#: behind it), measured on Groceries
RULE_FRAME_BYTES = 170
#: bytes per rule of ``rule_arrays()`` (six int64 arrays)
RULE_ARRAY_BYTES = 48


def check_limit(value: Any, name: str) -> int:
    """A size limit: ``None``/0 → 0 (no limit), else an int >= 1."""
    if value is None:
        return 0
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be None or a non-negative integer, got {value!r}")
    return int(value)


def human_bytes(n: float) -> str:
    for unit, size in (("TB", 2**40), ("GB", 2**30), ("MB", 2**20), ("kB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def support_text(count: int, n_baskets: int) -> str:
    """How a user writes the threshold ``count``: ``min_support=0.0004 (count >= 4)``, with the
    shortest fraction f such that ``ceil(f * n_baskets) == count``."""
    for digits in range(1, 16):
        units = math.floor(count / n_baskets * 10**digits)
        for g in (units / 10**digits, (units - 1) / 10**digits):  # (float rounding may push g·n past count)
            if 0 < g <= 1 and max(1, math.ceil(g * n_baskets)) == count:
                text = f"{g:g}"
                return f"min_support={text if any(ch in text for ch in '.e') else text + '.0'} (count >= {count:,})"
    return f"min_support={count} (count >= {count:,})"


def fitting_count(counts: np.ndarray, weights: np.ndarray | None, limit: int) -> tuple[Any, float]:
    """The smallest threshold ``c`` such that the items with ``counts >= c`` weigh at most
    ``limit`` (weight 1 each when ``weights`` is None), and their total weight.
    ``max(counts) + 1`` (weight 0) when no threshold on these counts fits."""
    counts = np.asarray(counts)
    if len(counts) == 0:
        return 1, 0.0

    def above(v: Any) -> Any:  # the next threshold above value v
        return int(v) + 1 if np.issubdtype(counts.dtype, np.integer) else float(np.nextafter(v, np.inf))

    if weights is None:
        if len(counts) <= limit:
            return counts.min().item(), float(len(counts))
        kth = np.partition(counts, len(counts) - 1 - limit)[len(counts) - 1 - limit]  # (limit+1)-th largest
        c = above(kth)
        return c, float(np.count_nonzero(counts >= c))
    uniq, inv = np.unique(counts, return_inverse=True)
    per = np.bincount(inv, weights=np.asarray(weights, dtype=np.float64), minlength=len(uniq))
    total = np.cumsum(per[::-1])[::-1]  # weight of counts >= uniq[i]
    ok = np.flatnonzero(total <= limit)
    if len(ok) == 0:
        return above(uniq[-1]), 0.0
    return uniq[ok[0]].item(), float(total[ok[0]])


def fitting_threshold(hist: np.ndarray, limit: int) -> tuple[int, float]:
    """``hist[v]``: the weight (itemsets, rules) whose count is v. The smallest count threshold
    c whose weight (of counts >= c) is at most ``limit``, and that weight."""
    total = np.cumsum(np.asarray(hist, dtype=np.float64)[::-1])[::-1]
    ok = np.flatnonzero(total <= limit)
    if len(ok) == 0:
        return len(hist), 0.0
    return int(ok[0]), float(total[ok[0]])


def count_histogram(counts: np.ndarray, n_baskets: int, weights: np.ndarray | None = None,
                    chunk: int = 1 << 22) -> np.ndarray:
    """``hist[v]`` = total weight of the entries of ``counts`` equal to v (``0 <= v <=
    n_baskets``), in slices so that no temporary is larger than ``chunk`` entries."""
    hist = np.zeros(n_baskets + 1, dtype=np.float64)
    for lo in range(0, len(counts), chunk):
        w = None if weights is None else weights(lo, min(lo + chunk, len(counts)))
        hist += np.bincount(counts[lo:lo + chunk], weights=w, minlength=n_baskets + 1)
    return hist


def rule_weights(depth: np.ndarray, single_consequent: bool) -> np.ndarray:
    """Candidate rules per itemset of ``depth`` items: ``2^d - 2`` splits (``d`` with one-item
    consequents); 0 for single items."""
    d = np.asarray(depth, dtype=np.float64)
    w = d.copy() if single_consequent else np.exp2(d) - 2.0
    w[d < 2] = 0.0
    return w


def too_many_itemsets(where: str, limit: int, reached: int, min_count: int, n_baskets: int, max_len: Any,
                      fit: tuple[int, int] | None, lower: int) -> ResultTooLargeError:
    """The error of a mining step that passed ``max_itemsets``. ``fit``: a verified
    ``(count threshold, itemsets)`` that fits, or None; ``lower``: no threshold below it fits."""
    msg = (f"{where}: more than max_itemsets={limit:,} frequent itemsets at {support_text(min_count, n_baskets)} "
           f"of {n_baskets:,} baskets{'' if not max_len else f', max_len={max_len}'}: mining stopped after "
           f"{reached:,} itemsets (about {human_bytes(reached * TRIE_BYTES)} so far, {TRIE_BYTES} bytes each). ")
    if fit is not None and fit[0] <= lower:
        msg += f"{support_text(fit[0], n_baskets)} gives {fit[1]:,} itemsets, the lowest support that fits. "
    elif fit is not None:
        msg += (f"{support_text(fit[0], n_baskets)} gives {fit[1]:,} itemsets, which fits (supports below "
                f"{support_text(lower, n_baskets)} do not). ")
    else:
        msg += f"Supports below {support_text(lower, n_baskets)} do not fit. "
    msg += "Or limit the itemset length with max_len, or raise max_itemsets."
    return ResultTooLargeError(msg)


def too_many_rules(where: str, limit: int, count: int, exact: bool, what: str, n_baskets: int,
                   fit: tuple[int, float, bool], cli: bool = False) -> ResultTooLargeError:
    """The error of a rule step that passed ``max_rules``: ``count`` rules (``exact`` or a lower
    bound); ``fit``: (count threshold, rules at it, whether that number is exact or an upper
    bound); ``cli``: advice in command-line options."""
    n = f"{count:,}" if exact else f"more than {count:,}"
    name = "--max-rules " if cli else "max_rules="
    msg = (f"{where}: {n} rules ({what}) is more than {name}{limit:,}; as a DataFrame they would take "
           f"{'about' if exact else 'more than'} {human_bytes(count * RULE_FRAME_BYTES)} ({RULE_FRAME_BYTES} bytes "
           "per rule). ")
    single = "one-item consequents" in what
    c, r, r_exact = fit
    fits = support_text(c, n_baskets)
    if cli:
        fits = fits.replace("min_support=", "--min-support ")
        msg += (f"{fits} gives {'' if r_exact else 'at most '}{int(r):,} rules, which fits. Or keep the best with "
                f"--top-k, use {'' if single else '--single-consequent or '}--max-len, or write them all to a "
                ".parquet file (streamed, bounded memory) with a larger --max-rules (0: no limit).")
    else:
        msg += (f"{fits} gives {'' if r_exact else 'at most '}{int(r):,} rules, which fits. Or stream them with "
                "rules_to_parquet(path, ...) or iter_rules(...), keep the best with top_k=..., use "
                f"{'' if single else 'single_consequent=True, '}max_len, or raise max_rules.")
    return ResultTooLargeError(msg)


def too_many_rows(where: str, limit: int, rows: int, bytes_per_row: int, stream: str,
                  what: str = "the DataFrame", other: str = ", use itemset_arrays() (no Python object per itemset)"
                  ) -> ResultTooLargeError:
    return ResultTooLargeError(
        f"{where}: {rows:,} rows is more than max_rows={limit:,}; {what} would take about "
        f"{human_bytes(rows * bytes_per_row)} ({bytes_per_row} bytes per row). Write them in chunks with "
        f"{stream}{other}, raise min_support, or pass max_rows=None.")
