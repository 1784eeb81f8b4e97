"""Entity-vector weightings and the sparse similarity matrix they give (shared by ``ItemKNN``,
``UserKNN`` and ``SAR``).

An *entity* is what gets neighbours (items for ``ItemKNN``, users for ``UserKNN``); its vector
runs over *features* (the users, or the items). ``weight_entities`` turns the entities × features
matrix into the weighted vectors whose dot products the kernel accumulates, plus the per-entity
factors that finish each similarity:

  cosine            xᵢ / ‖xᵢ‖                                     (implicit ``CosineRecommender``)
  tfidf             √x·idf_f, then / ‖·‖, idf_f = log N − log(1 + n_f)  (implicit ``TFIDFRecommender``)
  bm25              x(K1 + 1) / (K1·L_i + x)·idf_f, L_i = 1 − B + B·|xᵢ|₁/avg|x|₁, not normalised
                                                                    (implicit ``BM25Recommender``)
  pearson           (xᵢ − x̄ᵢ) / ‖xᵢ − x̄ᵢ‖ (centred by the entity's mean over its entries)
  adjusted_cosine   (x_f − x̄_f) / ‖·‖  (centred by each feature's mean: Sarwar et al. 2001)
  jaccard           |Uᵢ ∩ Uⱼ| / (|Uᵢ| + |Uⱼ| − |Uᵢ ∩ Uⱼ| + h)   (binary)
  asymmetric        xᵢ·xⱼ / (‖xᵢ‖^{2α} ‖xⱼ‖^{2(1−α)} + h)        (Aiolli 2013; α = 0.5 is cosine)

(N = number of entities, n_f = entities that feature f touches.) Shrinkage h turns a normalised
dot product into xᵢ·xⱼ / (‖xᵢ‖‖xⱼ‖ + h). The weightings follow implicit's arithmetic step by step
(including its float32 steps for BM25 on float32 input), so its similarity values — and hence
its neighbour lists, ties included — come out bit for bit.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import scipy.sparse as sp

from ..._threads import numba_threads
from ...kernels import knn as K

SIMILARITIES = ("cosine", "adjusted_cosine", "pearson", "jaccard", "bm25", "tfidf", "asymmetric")


def check_similarity(similarity: Any, allowed: tuple[str, ...] = SIMILARITIES) -> str:
    if similarity not in allowed:
        raise ValueError(f"similarity must be one of {', '.join(allowed)}; got {similarity!r}")
    return similarity


def _rows(E: sp.csr_matrix) -> np.ndarray:
    return np.repeat(np.arange(E.shape[0]), np.diff(E.indptr))


def _norms(rows: np.ndarray, data: np.ndarray, n: int) -> np.ndarray:
    # implicit: sqrt(bincount(row, data**2)) — squares in the data's precision, summed in float64
    return np.sqrt(np.bincount(rows, data ** 2, minlength=n))


def weight_entities(E: sp.csr_matrix, similarity: str, shrinkage: float = 0.0, bm25_k1: float = 1.2,
                    bm25_b: float = 0.75, asymmetric_alpha: float = 0.5,
                    stats: dict[str, np.ndarray] | None = None) -> tuple[sp.csr_matrix, dict[str, Any], dict[str, np.ndarray]]:
    """Weighted entity vectors (CSR, float64 data, E's structure) and the finishing factors.

    ``stats`` (from an earlier call on the training entities) weights *new* entities the same way
    (idf, feature means and average length of the training set) — the fold-in path. Returns
    ``(W, finish, stats)`` with ``finish = {mode, pa, pb, sa, sb}`` for the kernel."""
    E = sp.csr_matrix(E)
    n, m = E.shape
    rows = _rows(E)
    cols = E.indices
    x = E.data
    fit = stats is None
    stats = {} if fit else stats
    ones = np.ones(n)
    sa = sb = ones
    pa = pb = ones
    mode = K.MODE_DOT
    if similarity in ("cosine", "tfidf", "pearson", "adjusted_cosine"):
        if similarity == "tfidf":
            if fit:
                stats["idf"] = np.log(float(n)) - np.log1p(np.bincount(cols, minlength=m))
            x = np.sqrt(x) * stats["idf"][cols]
        elif similarity == "pearson":
            cnt = np.bincount(rows, minlength=n)
            mean = np.bincount(rows, x.astype(np.float64), minlength=n) / np.maximum(cnt, 1)
            x = x - mean[rows]
        elif similarity == "adjusted_cosine":
            if fit:
                cnt = np.bincount(cols, minlength=m)
                stats["feature_mean"] = np.bincount(cols, x.astype(np.float64), minlength=m) / np.maximum(cnt, 1)
            x = x - stats["feature_mean"][cols]
        norm = _norms(rows, x, n)
        with np.errstate(divide="ignore", invalid="ignore"):
            x = x / norm[rows]
            inv = np.where(norm > 0, 1.0 / norm, 0.0)
        x = np.where(np.isfinite(x), x, 0.0)  # an all-zero (centred) vector has no direction
        sa = sb = inv
    elif similarity == "bm25":
        if fit:
            stats["idf"] = np.log(float(n)) - np.log1p(np.bincount(cols, minlength=m))
            row_sums = np.ravel(E.sum(axis=1))
            stats["avg_length"] = np.asarray(row_sums.mean())
        row_sums = np.ravel(E.sum(axis=1))
        length_norm = (1.0 - bm25_b) + bm25_b * row_sums / stats["avg_length"][()]
        x = x * (bm25_k1 + 1.0) / (bm25_k1 * length_norm[rows] + x) * stats["idf"][cols]
    elif similarity == "jaccard":
        x = np.ones(len(x))
        mode = K.MODE_JACCARD
        pa = pb = np.bincount(rows, minlength=n).astype(np.float64)
    elif similarity == "asymmetric":
        x = x.astype(np.float64)
        sq = np.bincount(rows, x * x, minlength=n)
        with np.errstate(divide="ignore"):
            pa = np.where(sq > 0, sq ** -float(asymmetric_alpha), 0.0)
            pb = np.where(sq > 0, sq ** -(1.0 - float(asymmetric_alpha)), 0.0)
        sa, sb = pa, pb
    else:  # pragma: no cover - checked by callers
        raise ValueError(similarity)
    W = sp.csr_matrix((np.asarray(x, dtype=np.float64), E.indices, E.indptr), shape=E.shape)
    return W, {"mode": mode, "pa": pa, "pb": pb, "sa": sa, "sb": sb}, stats


#: with progress shown, the kernels' row blocks run in about this many calls
PROGRESS_STEPS = 16


def run_blocks(call: Callable[[int, int], None], n_rows: int, verbose: bool, desc: str) -> None:
    """``call(b_lo, b_hi)`` over the kernels' row blocks: in one call, or with ``verbose`` in
    about :data:`PROGRESS_STEPS` calls under a tqdm bar counting rows (same results either way:
    rows are computed independently)."""
    nb = K.n_blocks(n_rows)
    if not verbose:
        call(0, nb)
        return
    from tqdm.auto import tqdm

    step = -(-nb // PROGRESS_STEPS)
    with tqdm(total=n_rows, desc=desc, unit="row", leave=False) as bar:
        for lo in range(0, nb, step):
            hi = min(nb, lo + step)
            call(lo, hi)
            bar.update((hi * n_rows) // nb - (lo * n_rows) // nb)


def similarity_matrix(W: sp.csr_matrix, finish: dict[str, Any], k: int | None, *, shrinkage: float = 0.0,
                      include_self: bool = True, min_count: int = 1, positive_only: bool = False,
                      implicit_ties: bool = True, num_threads: int | None = None, verbose: bool = False,
                      desc: str = "similarities") -> sp.csr_matrix:
    """Entities × entities similarities from weighted vectors ``W`` (entities × features):
    the top ``k`` per row, or every pair passing the filters when ``k`` is None. CSR, float64,
    sorted indices; memory O(kept pairs). ``verbose``: a progress bar (``desc``) over the rows."""
    W = sp.csr_matrix(W)
    n = W.shape[0]
    Ft = W.T.tocsr()
    Ft.sort_indices()
    args = (W.indptr, W.indices, W.data, Ft.indptr, Ft.indices, Ft.data, n, finish["mode"],
            np.asarray(finish["pa"], np.float64), np.asarray(finish["pb"], np.float64),
            np.asarray(finish["sa"], np.float64), np.asarray(finish["sb"], np.float64),
            float(shrinkage), int(min_count), bool(include_self), bool(positive_only))
    row_n = np.zeros(n, dtype=np.int64)
    use_count = bool(min_count > 1 or not (W.data > 0).all())
    with numba_threads(num_threads):
        if k is not None:
            k = int(k)
            row_start = np.arange(n, dtype=np.int64) * k
            out_idx = np.empty(n * k, dtype=np.int64)
            out_val = np.empty(n * k, dtype=np.float64)
            run_blocks(lambda lo, hi: K.pair_similarities(*args, k, bool(implicit_ties), False, use_count, row_start,
                                                          row_n, out_idx, out_val, lo, hi), n, verbose, desc)
            keep = np.arange(k)[None, :] < row_n[:, None]
            out_idx, out_val = out_idx.reshape(n, k)[keep], out_val.reshape(n, k)[keep]
        else:
            bound = _row_bounds(W, Ft, n)
            row_start = np.concatenate([[0], np.cumsum(bound)[:-1]]).astype(np.int64)
            out_idx = np.empty(int(bound.sum()), dtype=np.int64)
            out_val = np.empty(int(bound.sum()), dtype=np.float64)
            run_blocks(lambda lo, hi: K.pair_similarities(*args, 0, False, False, use_count, row_start, row_n, out_idx,
                                                          out_val, lo, hi), n, verbose, desc)
            return _compact(n, row_start, row_n, out_idx, out_val)
    indptr = np.concatenate([[0], np.cumsum(row_n)]).astype(np.int64)
    idx_t = np.int32 if n < 2**31 - 1 else np.int64
    S = sp.csr_matrix((out_val, out_idx.astype(idx_t), indptr), shape=(n, n))
    S.has_sorted_indices = True
    return S


def corated_matrix(E: sp.csr_matrix, mode: int, *, shrinkage: float = 0.0, min_support: int = 1,
                   include_self: bool = True, num_threads: int | None = None, verbose: bool = False,
                   desc: str = "similarities") -> sp.csr_matrix:
    """Surprise-style similarities (or slope-one deviations) between the rows of ``E`` over
    co-rated columns only: every kept pair (positive similarities; every co-rated pair for slope
    one), CSR float64; a symbolic pass sizes the rows, memory O(co-rated pairs). ``verbose``: a
    progress bar (``desc``) over the rows."""
    E = sp.csr_matrix(E)
    E.sort_indices()
    n = E.shape[0]
    Ft = E.T.tocsr()
    Ft.sort_indices()
    args = (E.indptr, E.indices, E.data.astype(np.float64), Ft.indptr, Ft.indices, Ft.data.astype(np.float64), n,
            int(mode), float(shrinkage), int(min_support), bool(include_self))
    row_n = np.zeros(n, dtype=np.int64)
    with numba_threads(num_threads):
        bound = _row_bounds(E, Ft, n)
        row_start = np.concatenate([[0], np.cumsum(bound)[:-1]]).astype(np.int64)
        out_idx = np.empty(int(bound.sum()), dtype=np.int64)
        out_val = np.empty(int(bound.sum()), dtype=np.float64)
        run_blocks(lambda lo, hi: K.corated_similarities(*args, row_start, row_n, out_idx, out_val, lo, hi), n, verbose,
                   desc)
    return _compact(n, row_start, row_n, out_idx, out_val)


#: below this many entity pairs the rows are sized n each (at most 64 MB of index + value scratch)
#: instead of by a symbolic pass over the products
DENSE_BOUND_PAIRS = 4_194_304


def _row_bounds(E: sp.csr_matrix, Ft: sp.csr_matrix, n: int) -> np.ndarray:
    """Room to reserve for each output row: n when n² is small, else its exact co-occurrence count."""
    if n * n <= DENSE_BOUND_PAIRS:
        return np.full(n, n, dtype=np.int64)
    bound = np.zeros(n, dtype=np.int64)
    K.cooccurrence_counts(E.indptr, E.indices, Ft.indptr, Ft.indices, n, bound)
    return bound


def _compact(n: int, row_start: np.ndarray, row_n: np.ndarray, out_idx: np.ndarray, out_val: np.ndarray) -> sp.csr_matrix:
    """CSR from rows written at ``row_start`` with ``row_n`` entries each (sorted by column)."""
    if len(out_idx) != int(row_n.sum()):
        pos = np.repeat(row_start - np.concatenate([[0], np.cumsum(row_n)[:-1]]), row_n) + np.arange(int(row_n.sum()))
        out_idx, out_val = out_idx[pos], out_val[pos]
    indptr = np.concatenate([[0], np.cumsum(row_n)]).astype(np.int64)
    S = sp.csr_matrix((out_val, out_idx.astype(np.int32 if n < 2**31 - 1 else np.int64), indptr), shape=(n, n))
    S.has_sorted_indices = True
    return S


def csr_arrays(prefix: str, S: sp.csr_matrix) -> dict[str, np.ndarray]:
    """``S`` as the saved arrays ``<prefix>_indptr`` / ``_indices`` / ``_data`` (declared by
    :func:`tastebud.array_specs.csr`)."""
    return {f"{prefix}_indptr": S.indptr.astype(np.int64), f"{prefix}_indices": S.indices.astype(np.int64),
            f"{prefix}_data": np.asarray(S.data, dtype=np.float64)}


def load_csr(arrays: dict[str, np.ndarray], prefix: str, n_rows: int, n_cols: int) -> sp.csr_matrix:
    """The matrix :func:`csr_arrays` saved (its arrays already checked on load), float64 data."""
    ind = arrays[f"{prefix}_indices"].astype(np.int32 if n_cols < 2**31 - 1 else np.int64)
    return sp.csr_matrix((np.asarray(arrays[f"{prefix}_data"], dtype=np.float64), ind, arrays[f"{prefix}_indptr"]),
                         shape=(n_rows, n_cols))


def score_rows(Q: sp.csr_matrix, S: sp.csr_matrix, k: int, exclude: sp.csr_matrix | None = None,
               cand: np.ndarray | None = None, num_threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` indices and float64 scores of Q·S per row (items of ``exclude``'s rows left out,
    only ``cand`` items when given), ties to the lower index; −inf marks missing places."""
    n = Q.shape[0]
    n_items = S.shape[1]
    out_idx = np.empty(n * k, dtype=np.int64)
    out_val = np.empty(n * k, dtype=np.float64)
    if exclude is None:  # (scipy's index dtype: one kernel specialisation whether seen items are excluded or not)
        xi, xn = np.empty(0, np.int32), np.empty(0, np.int32)
    else:
        xi, xn = exclude.indptr, exclude.indices
    mask = np.zeros(0, dtype=np.bool_)
    if cand is not None:
        mask = np.zeros(n_items, dtype=np.bool_)
        mask[cand] = True
    q = np.asarray(Q.data, dtype=np.float64)  # queries are small; every model keeps S in float64
    with numba_threads(num_threads):
        K.score_topk(Q.indptr, Q.indices, q, S.indptr, S.indices, np.asarray(S.data, dtype=np.float64), n_items, xi, xn,
                     mask, int(k), out_idx, out_val)
    return out_idx.reshape(n, k), out_val.reshape(n, k)
